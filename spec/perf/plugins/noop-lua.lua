-- Benchmark: the cost of entering the Lua runtime once per request.
return {
  name = "noop-lua",
  version = "1.0.0",
  access = function(conf, ctx) end,
}
