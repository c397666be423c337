return { name = "escape-ffi", version = "0", access = function() require("ffi") end }
