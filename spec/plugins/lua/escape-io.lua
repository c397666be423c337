return { name = "escape-io", version = "0", access = function() io.open("/etc/passwd") end }
