return { name = "escape-load", version = "0", access = function() loadstring("return 1")() end }
