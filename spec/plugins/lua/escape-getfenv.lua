return { name = "escape-getfenv", version = "0", access = function() getfenv(0).io = nil end }
