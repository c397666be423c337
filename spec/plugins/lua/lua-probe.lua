-- A test plugin whose behaviour is chosen by its config (see test_plugins_lua.py).
local request = require("sluice.request")
local response = require("sluice.response")
local upstream = require("sluice.upstream")
local log = require("sluice.log")
local shared = require("sluice.shared")
local redis = require("sluice.redis")
local http = require("sluice.http")
local json = require("sluice.json")
local sleep = require("sluice.sleep")

return {
  name = "lua-probe",
  version = "0.0.1",
  schema = {
    fields = {
      tag = { type = "string", required = true },
      exit_in = { type = "string", enum = { "rewrite", "access" } },
      fail_in = { type = "string", enum = { "rewrite", "access" } },
      sleep_ms = { type = "integer", min = 0, default = 0 },
      redis_incr = { type = "string" },
      http_get = { type = "string" },
      json_roundtrip = { type = "boolean", default = false },
      upper_body = { type = "boolean", default = false },
      count_shared = { type = "boolean", default = false },
      copy_header = { type = "string" },
    },
  },

  rewrite = function(conf, ctx)
    ctx.order = (ctx.order and ctx.order .. "," or "") .. conf.tag
    upstream.set_header("X-Lua-Order", ctx.order)
    if conf.copy_header then
      upstream.set_header("X-Copied", request.get_header(conf.copy_header) or "(none)")
    end
    if conf.fail_in == "rewrite" then error("probe failure in rewrite") end
    if conf.exit_in == "rewrite" then
      return response.exit(418, { tag = conf.tag, phase = "rewrite" }, { ["X-Exit"] = conf.tag })
    end
  end,

  access = function(conf, ctx)
    if conf.sleep_ms > 0 then
      sleep(conf.sleep_ms / 1000)
      upstream.set_header("X-Slept", conf.tag)
    end
    if conf.redis_incr then
      local n, err = redis.call("INCR", conf.redis_incr)
      upstream.set_header("X-Redis", n and tostring(n) or ("error: " .. tostring(err)))
    end
    if conf.http_get then
      local res, err = http.request({ method = "GET", url = conf.http_get, timeout = 2 })
      upstream.set_header("X-Http", res and (res.status .. " " .. #res.body) or ("error: " .. tostring(err)))
    end
    if conf.json_roundtrip then
      local v, err = json.decode(request.get_body())
      if not v then return response.exit(400, "bad json: " .. err) end
      upstream.set_body(json.encode(v))
    end
    if conf.count_shared then
      local n = shared.incr("lua-probe", "hits", 1, 0, 60)
      upstream.set_header("X-Hits", tostring(n))
    end
    if conf.fail_in == "access" then error("probe failure in access") end
    if conf.exit_in == "access" then
      return response.exit(418, "exit from " .. conf.tag, { ["X-Exit"] = conf.tag })
    end
    log.info("probe %s passed access", conf.tag)
  end,

  body_filter = function(conf, ctx, chunk, last)
    if conf.upper_body then return chunk:upper() end
  end,
}
