/* The configure trampolines of Lua plugin descriptors.
 *
 * configure() receives no descriptor, yet each Lua plugin's configure must
 * know its plugin. So there is a fixed set of configure functions, each
 * bound to a slot that a live descriptor occupies. */
#include <pthread.h>
#include <stdio.h>

#include "lua_host.h"

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static sl_lua_plugin_t *slots[SL_LUA_MAX_PLUGINS];

static void *configure_slot(int slot, const sl_json_t *conf, char *err, size_t errlen)
{
    pthread_mutex_lock(&slots_lock);
    sl_lua_plugin_t *p = slots[slot];
    pthread_mutex_unlock(&slots_lock);
    if (!p) {
        snprintf(err, errlen, "Lua plugin descriptor already freed");
        return NULL;
    }
    return sl_lua_configure(p, (const json_t *)conf, err, errlen);
}

/* cfg_xABCD serves slot ((A*4+B)*4+C)*4+D. */
#define DEF1(p, i) \
    static void *cfg_##p(const sl_json_t *c, char *e, size_t l) { return configure_slot((i), c, e, l); }
#define DEF4(p, i) DEF1(p##0, (i)*4) DEF1(p##1, (i)*4 + 1) DEF1(p##2, (i)*4 + 2) DEF1(p##3, (i)*4 + 3)
#define DEF16(p, i) DEF4(p##0, (i)*4) DEF4(p##1, (i)*4 + 1) DEF4(p##2, (i)*4 + 2) DEF4(p##3, (i)*4 + 3)
#define DEF64(p, i) \
    DEF16(p##0, (i)*4) DEF16(p##1, (i)*4 + 1) DEF16(p##2, (i)*4 + 2) DEF16(p##3, (i)*4 + 3)
#define DEF256(p) DEF64(p##0, 0) DEF64(p##1, 1) DEF64(p##2, 2) DEF64(p##3, 3)
DEF256(x)

#define TAB1(p) cfg_##p,
#define TAB4(p) TAB1(p##0) TAB1(p##1) TAB1(p##2) TAB1(p##3)
#define TAB16(p) TAB4(p##0) TAB4(p##1) TAB4(p##2) TAB4(p##3)
#define TAB64(p) TAB16(p##0) TAB16(p##1) TAB16(p##2) TAB16(p##3)
#define TAB256(p) TAB64(p##0) TAB64(p##1) TAB64(p##2) TAB64(p##3)
static void *(*const configure_fns[])(const sl_json_t *, char *, size_t) = { TAB256(x) };
_Static_assert(sizeof configure_fns / sizeof configure_fns[0] == SL_LUA_MAX_PLUGINS,
               "one configure trampoline per slot");

int sl_lua_slot_take(sl_lua_plugin_t *p)
{
    pthread_mutex_lock(&slots_lock);
    int slot = -1;
    for (int i = 0; i < SL_LUA_MAX_PLUGINS && slot < 0; i++)
        if (!slots[i])
            slot = i;
    if (slot >= 0)
        slots[slot] = p;
    pthread_mutex_unlock(&slots_lock);
    return slot;
}

void sl_lua_slot_release(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&slots_lock);
    slots[slot] = NULL;
    pthread_mutex_unlock(&slots_lock);
}

void *(*sl_lua_slot_configure(int slot))(const sl_json_t *conf, char *err, size_t errlen)
{
    return configure_fns[slot];
}
