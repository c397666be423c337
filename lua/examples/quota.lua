-- quota: at most `limit` requests per API key in each `window` seconds,
-- counted in Redis so that every gateway instance shares the count.
--
--   plugins:
--     - quota: {header: X-Api-Key, limit: 100, window: 60}
--
-- Over the limit the client gets 429 in the gateway's JSON error shape with
-- Retry-After; every answer carries X-Quota-Remaining. If Redis cannot be
-- reached, fail_open (the default) counts on this gateway alone instead of
-- refusing traffic.
local request = require("sluice.request")
local response = require("sluice.response")
local upstream = require("sluice.upstream")
local redis = require("sluice.redis")
local shared = require("sluice.shared")
local log = require("sluice.log")

return {
  name = "quota",
  version = "1.0.0",
  schema = {
    fields = {
      header = { type = "string", default = "X-Api-Key" },
      limit = { type = "integer", min = 1, default = 100 },
      window = { type = "integer", min = 1, max = 86400, default = 60 },
      fail_open = { type = "boolean", default = true },
    },
  },
  provides = { "quota" },

  access = function(conf, ctx)
    local key = request.get_header(conf.header)
    if not key then
      return response.error(401, "missing_api_key", "send an API key in " .. conf.header)
    end
    local counter = "quota:" .. key

    -- Each redis call suspends this request until Redis answers; the
    -- worker serves other requests meanwhile.
    local used, err = redis.call("INCR", counter)
    if used == nil then
      if not conf.fail_open then
        return response.error(503, "quota_unavailable", "the quota cannot be checked now")
      end
      log.warn("redis: %s; counting on this gateway only", tostring(err))
      used = shared.incr("quota", counter, 1, 0, conf.window) or 0
    elseif used == 1 then
      redis.call("EXPIRE", counter, conf.window)   -- the first request opens the window
    end

    ctx.quota_remaining = math.max(conf.limit - used, 0)
    if used > conf.limit then
      local ttl = redis.call("TTL", counter)
      return response.error(429, "quota_exceeded",
        string.format("at most %d requests per %d seconds", conf.limit, conf.window),
        { ["Retry-After"] = (ttl and ttl > 0) and ttl or conf.window })
    end
    upstream.set_header("X-Quota-Remaining", ctx.quota_remaining)
  end,

  -- ctx is shared by every phase (and every Lua plugin) of one request.
  header_filter = function(conf, ctx)
    if ctx.quota_remaining then
      response.set_header("X-Quota-Remaining", ctx.quota_remaining)
    end
  end,

  log = function(conf, ctx)
    if ctx.quota_remaining == 0 then
      log.info("%s reached its quota", request.get_header(conf.header))
    end
  end,
}
