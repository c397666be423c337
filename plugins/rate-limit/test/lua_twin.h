/* Runs the token bucket's Redis script (rl_redis_script) in LuaJIT against
 * an in-memory stand-in for the three Redis commands it uses (TIME, GET,
 * SET), with a clock the test sets, so the script can be compared with the
 * C arithmetic. */
#ifndef RL_LUA_TWIN_H
#define RL_LUA_TWIN_H

#include <stdint.h>

#include "rl_algo.h"
#include "rl_conf.h"

typedef struct lua_twin lua_twin_t;

lua_twin_t *lua_twin_new(void);
void lua_twin_free(lua_twin_t *t);
/* Runs the script once at now_us for token-bucket config c; returns 1/0
 * like rl_local_check, -1 on a script error (a command the stand-in does
 * not know included) or a reply rl_redis_parse refuses (message on
 * stderr). */
int lua_twin_check(lua_twin_t *t, const rl_conf_t *c, const char *prefix, int64_t now_us,
                   rl_verdict_t *out);

#endif
