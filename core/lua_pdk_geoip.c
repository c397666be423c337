/* sluice.geoip: country, continent and AS of an address. */
#include <lauxlib.h>
#include <string.h>

#include "lua_host.h"

static void set_str(lua_State *L, const char *field, const char *value, size_t cap)
{
    size_t len = strnlen(value, cap);
    if (len == 0)
        return;
    lua_pushlstring(L, value, len);
    lua_setfield(L, -2, field);
}

static int lookup(lua_State *L)
{
    const char *ip = sl_lua_check_cstring(L, 1, "sluice.geoip.lookup", "the address");
    sl_geo_t g;
    memset(&g, 0, sizeof g);
    if (sl_lua_host()->geoip_lookup(ip, &g) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_newtable(L);
    set_str(L, "country", g.country, sizeof g.country);
    set_str(L, "continent", g.continent, sizeof g.continent);
    if (g.asn) {
        lua_pushnumber(L, g.asn);
        lua_setfield(L, -2, "asn");
    }
    set_str(L, "asn_org", g.asn_org, sizeof g.asn_org);
    return 1;
}

void sl_lua_open_geoip(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = { { "lookup", lookup }, { NULL, NULL } };
    lua_newtable(L);
    sl_lua_setfuncs(L, st, fns);
}
