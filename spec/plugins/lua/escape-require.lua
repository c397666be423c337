return { name = "escape-require", version = "0", access = function() require("os") end }
