-- business-hours: serve each tenant only inside its opening hours.
--
-- The tenant is read from a request header (X-Tenant by default, or whatever
-- an earlier auth plugin sets); requests outside the tenant's hours get 403
-- with the gateway's JSON error body, code "outside_business_hours".
local request = require("sluice.request")
local response = require("sluice.response")

local DAY_NAMES = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" }

local function minutes(hhmm)
  local h, m = hhmm:match("^(%d%d):(%d%d)$")
  return tonumber(h) * 60 + tonumber(m)
end

-- Monday = 1 ... Sunday = 7, for a UTC timestamp shifted by the tenant's offset.
local function local_day_and_minute(offset_minutes)
  local t = os.date("!*t", os.time() + offset_minutes * 60)
  local day = (t.wday + 5) % 7 + 1
  return day, t.hour * 60 + t.min
end

local function is_open(hours)
  local day, minute = local_day_and_minute(hours.utc_offset_minutes)
  local open_day = false
  for _, d in ipairs(hours.days) do
    if d == day then open_day = true end
  end
  return open_day and minute >= minutes(hours.open) and minute < minutes(hours.close)
end

local function describe(tenant, hours)
  local days = {}
  for _, d in ipairs(hours.days) do days[#days + 1] = DAY_NAMES[d] end
  return string.format("tenant %s is served %s %s-%s (UTC%+d min)", tenant,
    #days > 0 and table.concat(days, ",") or "on no day", hours.open, hours.close,
    hours.utc_offset_minutes)
end

return {
  name = "business-hours",
  version = "1.0.0",
  schema = {
    fields = {
      tenant_header = { type = "string", default = "X-Tenant" },
      unknown_tenant = { type = "string", enum = { "allow", "deny" }, default = "deny" },
      tenants = {
        type = "object",
        required = true,
        values = {
          type = "object",
          fields = {
            open = { type = "string", required = true, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
            close = { type = "string", required = true, pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$" },
            utc_offset_minutes = { type = "integer", default = 0, min = -720, max = 840 },
            days = { type = "array", items = { type = "integer", min = 1, max = 7 },
                     default = { 1, 2, 3, 4, 5 } },
          },
        },
      },
    },
  },

  access = function(conf, ctx)
    local tenant = request.get_header(conf.tenant_header)
    local hours = tenant and conf.tenants[tenant]
    if not hours then
      if conf.unknown_tenant == "allow" then return end
      return response.error(403, "unknown_tenant",
        "no business hours are configured for this tenant")
    end
    if not is_open(hours) then
      return response.error(403, "outside_business_hours", describe(tenant, hours))
    end
    ctx.tenant = tenant
  end,
}
