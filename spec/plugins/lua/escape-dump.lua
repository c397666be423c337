return { name = "escape-dump", version = "0", access = function() string.dump(function() end) end }
