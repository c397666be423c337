return { name = "escape-os", version = "0", access = function() os.execute("true") end }
