-- Benchmark: read one request header, set one upstream header.
local request = require("sluice.request")
local upstream = require("sluice.upstream")
return {
  name = "header-lua",
  version = "1.0.0",
  access = function(conf, ctx)
    upstream.set_header("X-Out", request.get_header("X-In") or "none")
  end,
}
