/* sluice.json: jansson <-> Lua conversion and the Lua module around it.
 * The semantics are documented in lua_json.h. */
#include "lua_json.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

/* Doubles represent every integer up to here exactly; past it, integers
 * need a box to survive. */
#define EXACT_INT_LIMIT 9007199254740992LL /* 2^53 */

/* Stack slots one nesting level uses at most while converting (table, key,
 * value), reserved once up front so the conversion itself never grows the
 * stack, which could raise. */
#define SLOTS_PER_LEVEL 3
#define STACK_RESERVE (SLOTS_PER_LEVEL * SL_LUA_JSON_MAX_DEPTH + 16)

/* Addresses used as identities: the null sentinel and registry keys. Their
 * contents are never read. */
static const char null_sentinel;
static const char key_array_mt;
static const char key_empty_mt;
static const char key_int64_mt;
static const char key_guard_mt;
static const char key_empty_array;

#define JSON_NULL_UD ((void *)&null_sentinel)

/* ------------------------------------------------------------ registry */

static int empty_array_newindex(lua_State *L)
{
    return luaL_error(L, "json.empty_array is read-only; use json.array() for a new empty array");
}

/* Releases what a json.encode/json.decode call holds when Lua raises (out
 * of memory) between allocating and handing the result over. */
typedef struct guard {
    json_t *j;
    char *s;
} guard_t;

static int guard_gc(lua_State *L)
{
    guard_t *g = lua_touserdata(L, 1);
    if (g != NULL) {
        json_decref(g->j);
        free(g->s);
        g->j = NULL;
        g->s = NULL;
    }
    return 0;
}

static int int64_tostring(lua_State *L);
static int int64_eq(lua_State *L);
static int int64_lt(lua_State *L);
static int int64_le(lua_State *L);

static void push_registry(lua_State *L, const void *key);

static void build_registry_entry(lua_State *L, const void *key)
{
    if (key == &key_array_mt) {
        lua_newtable(L);
    } else if (key == &key_empty_mt) {
        lua_newtable(L);
        lua_pushcfunction(L, empty_array_newindex);
        lua_setfield(L, -2, "__newindex");
        /* Hides the metatable from setmetatable() so Lua code cannot strip
         * the marker off the shared constant. */
        lua_pushliteral(L, "json.empty_array");
        lua_setfield(L, -2, "__metatable");
    } else if (key == &key_int64_mt) {
        lua_newtable(L);
        lua_pushcfunction(L, int64_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, int64_eq);
        lua_setfield(L, -2, "__eq");
        lua_pushcfunction(L, int64_lt);
        lua_setfield(L, -2, "__lt");
        lua_pushcfunction(L, int64_le);
        lua_setfield(L, -2, "__le");
        lua_pushliteral(L, "json.int64");
        lua_setfield(L, -2, "__metatable");
    } else if (key == &key_guard_mt) {
        lua_newtable(L);
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__gc");
    } else { /* key_empty_array: needs its metatable first */
        lua_newtable(L);
        push_registry(L, &key_empty_mt);
        lua_setmetatable(L, -2);
    }
}

/* Pushes the registry entry for key, creating it on first use so the C
 * entry points work whether or not sl_lua_json_open ran first. */
static void push_registry(lua_State *L, const void *key)
{
    lua_pushlightuserdata(L, (void *)key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    build_registry_entry(L, key);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

static int abs_index(lua_State *L, int idx)
{
    return (idx < 0 && idx > LUA_REGISTRYINDEX) ? lua_gettop(L) + idx + 1 : idx;
}

/* Does the value at idx have the metatable at mt_idx? */
static bool has_metatable(lua_State *L, int idx, int mt_idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    bool same = lua_rawequal(L, -1, mt_idx);
    lua_pop(L, 1);
    return same;
}

/* --------------------------------------------------------------- int64 */

static void push_int64(lua_State *L, int64_t v, int int64_mt_idx)
{
    int64_t *box = lua_newuserdata(L, sizeof *box);
    *box = v;
    lua_pushvalue(L, int64_mt_idx);
    lua_setmetatable(L, -2);
}

/* The int64 in the box at idx, or false when idx holds no box. */
static bool get_int64(lua_State *L, int idx, int64_t *out)
{
    if (lua_type(L, idx) != LUA_TUSERDATA)
        return false;
    idx = abs_index(L, idx);
    push_registry(L, &key_int64_mt);
    bool is_box = has_metatable(L, idx, lua_gettop(L));
    lua_pop(L, 1);
    if (is_box)
        memcpy(out, lua_touserdata(L, idx), sizeof *out);
    return is_box;
}

static int int64_tostring(lua_State *L)
{
    int64_t v;
    if (!get_int64(L, 1, &v))
        return luaL_error(L, "json.int64 expected");
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    lua_pushstring(L, buf);
    return 1;
}

static void check_two_boxes(lua_State *L, int64_t *a, int64_t *b)
{
    if (!get_int64(L, 1, a) || !get_int64(L, 2, b))
        luaL_error(L, "attempt to compare json.int64 with %s",
                   luaL_typename(L, get_int64(L, 1, a) ? 2 : 1));
}

static int int64_eq(lua_State *L)
{
    int64_t a, b;
    lua_pushboolean(L, get_int64(L, 1, &a) && get_int64(L, 2, &b) && a == b);
    return 1;
}

static int int64_lt(lua_State *L)
{
    int64_t a, b;
    check_two_boxes(L, &a, &b);
    lua_pushboolean(L, a < b);
    return 1;
}

static int int64_le(lua_State *L)
{
    int64_t a, b;
    check_two_boxes(L, &a, &b);
    lua_pushboolean(L, a <= b);
    return 1;
}

/* Strict decimal: optional '-', then digits, nothing else (no spaces, no
 * '+', no hex), so what a plugin passes is what it gets. */
static bool parse_int64(const char *s, size_t len, int64_t *out)
{
    size_t i = (len > 0 && s[0] == '-') ? 1 : 0;
    if (i == len)
        return false;
    for (size_t k = i; k < len; k++)
        if (s[k] < '0' || s[k] > '9')
            return false;
    if (len > 32)
        return false;
    char buf[33];
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return false;
    *out = (int64_t)v;
    return true;
}

static int l_int64(lua_State *L)
{
    lua_settop(L, 1);
    int64_t v;
    switch (lua_type(L, 1)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        if (!parse_int64(s, len, &v)) {
            lua_pushnil(L);
            lua_pushstring(L, "json.int64: expected a decimal integer within the int64 range");
            return 2;
        }
        break;
    }
    case LUA_TNUMBER: {
        lua_Number d = lua_tonumber(L, 1);
        /* 2^63 is exact as a double; the int64 range is [-2^63, 2^63). */
        if (!(d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
            lua_pushnil(L);
            lua_pushstring(L, "json.int64: expected an integral number within the int64 range");
            return 2;
        }
        v = (int64_t)d;
        break;
    }
    case LUA_TUSERDATA:
        if (get_int64(L, 1, &v))
            return 1; /* boxes are immutable, so the same one will do */
        /* fall through */
    default:
        lua_pushnil(L);
        lua_pushfstring(L, "json.int64: expected a string or number, got %s", luaL_typename(L, 1));
        return 2;
    }
    push_registry(L, &key_int64_mt);
    push_int64(L, v, 2);
    return 1;
}

/* -------------------------------------------------------- jansson -> Lua */

typedef struct pusher {
    lua_State *L;
    int array_mt;   /* stack index */
    int int64_mt;   /* stack index */
} pusher_t;

static bool push_value(pusher_t *p, const json_t *j, int depth)
{
    lua_State *L = p->L;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (depth >= SL_LUA_JSON_MAX_DEPTH)
            return false;
        size_t n = json_object_size(j);
        lua_createtable(L, 0, n > INT_MAX ? INT_MAX : (int)n);
        const char *key;
        size_t keylen;
        json_t *child;
        json_object_keylen_foreach((json_t *)j, key, keylen, child) {
            lua_pushlstring(L, key, keylen);
            if (!push_value(p, child, depth + 1))
                return false;
            lua_rawset(L, -3);
        }
        return true;
    }
    case JSON_ARRAY: {
        if (depth >= SL_LUA_JSON_MAX_DEPTH)
            return false;
        size_t n = json_array_size(j);
        if (n > INT_MAX)
            return false;
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            if (!push_value(p, json_array_get(j, i), depth + 1))
                return false;
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_pushvalue(L, p->array_mt);
        lua_setmetatable(L, -2);
        return true;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        return true;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        if (v >= -EXACT_INT_LIMIT && v <= EXACT_INT_LIMIT)
            lua_pushnumber(L, (lua_Number)v);
        else
            push_int64(L, (int64_t)v, p->int64_mt);
        return true;
    }
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        return true;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return true;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return true;
    case JSON_NULL:
        lua_pushlightuserdata(L, JSON_NULL_UD);
        return true;
    }
    return false;
}

/* NULL on success, else why nothing was pushed. */
static const char *push_json(lua_State *L, const json_t *j)
{
    if (j == NULL)
        return "no value";
    if (!lua_checkstack(L, STACK_RESERVE))
        return "Lua stack overflow";
    int base = lua_gettop(L);
    push_registry(L, &key_array_mt);
    push_registry(L, &key_int64_mt);
    pusher_t p = {L, base + 1, base + 2};
    if (!push_value(&p, j, 0)) {
        lua_settop(L, base);
        return "nesting deeper than 128 levels";
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return NULL;
}

int sl_lua_push_json(lua_State *L, const json_t *j)
{
    return push_json(L, j) == NULL ? 1 : 0;
}

/* -------------------------------------------------------- Lua -> jansson */

typedef struct path_seg {
    const char *key;   /* NULL for an array index */
    size_t keylen;
    lua_Integer index;
} path_seg_t;

typedef struct encoder {
    lua_State *L;
    char *err;
    size_t errlen;
    int array_mt, empty_mt, int64_mt;   /* stack indices */
    int depth;                          /* containers above the current value */
    const void *ancestors[SL_LUA_JSON_MAX_DEPTH];
    path_seg_t path[SL_LUA_JSON_MAX_DEPTH];
} encoder_t;

static size_t append(char *buf, size_t len, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Bounded, truncating append; returns the new length (<= cap - 1). */
static size_t append(char *buf, size_t len, size_t cap, const char *fmt, ...)
{
    if (len + 1 >= cap)
        return len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return len;
    return (size_t)n >= cap - len ? cap - 1 : len + (size_t)n;
}

static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Writes "message at $.a[2]["odd key"]" so a plugin author can find the
 * offending value in a large body. */
static void fail(encoder_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(encoder_t *e, const char *fmt, ...)
{
    if (e->err == NULL || e->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->err, e->errlen, fmt, ap);
    va_end(ap);
    if (n < 0) {
        e->err[0] = '\0';
        return;
    }
    size_t len = (size_t)n >= e->errlen ? e->errlen - 1 : (size_t)n;
    if (e->depth == 0)
        return;
    len = append(e->err, len, e->errlen, " at $");
    for (int i = 0; i < e->depth; i++) {
        const path_seg_t *seg = &e->path[i];
        if (seg->key == NULL) {
            len = append(e->err, len, e->errlen, "[%lld]", (long long)seg->index);
        } else if (is_identifier(seg->key, seg->keylen)) {
            len = append(e->err, len, e->errlen, ".%.*s", (int)seg->keylen, seg->key);
        } else {
            len = append(e->err, len, e->errlen, "[\"");
            size_t shown = seg->keylen > 40 ? 40 : seg->keylen;
            for (size_t k = 0; k < shown; k++) {
                unsigned char c = (unsigned char)seg->key[k];
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                    len = append(e->err, len, e->errlen, "\\x%02x", c);
                else
                    len = append(e->err, len, e->errlen, "%c", c);
            }
            len = append(e->err, len, e->errlen, "%s\"]", shown < seg->keylen ? "..." : "");
        }
    }
}

static json_t *encode_value(encoder_t *e, int idx);

static json_t *encode_number(encoder_t *e, lua_Number d)
{
    if (isnan(d) || isinf(d)) {
        fail(e, "cannot encode %s", isnan(d) ? "NaN" : "infinity");
        return NULL;
    }
    json_t *j;
    /* -0.0 is integral but would come back as 0; keep its sign. */
    if (d == floor(d) && fabs(d) <= (lua_Number)EXACT_INT_LIMIT && !(d == 0 && signbit(d)))
        j = json_integer((json_int_t)d);
    else
        j = json_real(d);
    if (j == NULL)
        fail(e, "out of memory");
    return j;
}

typedef struct key_census {
    size_t strings;
    size_t ints;
    lua_Number max_int;
} key_census_t;

/* Classifies the keys of the table at idx; false (with the error set) on a
 * key JSON cannot express at all. */
static bool census_keys(encoder_t *e, int idx, key_census_t *c)
{
    lua_State *L = e->L;
    memset(c, 0, sizeof *c);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            c->strings++;
        } else if (kt == LUA_TNUMBER) {
            lua_Number k = lua_tonumber(L, -2);
            if (!(k >= 1 && k == floor(k) && k <= (lua_Number)EXACT_INT_LIMIT)) {
                fail(e, "cannot encode a table with the number key %.17g", k);
                lua_pop(L, 2);
                return false;
            }
            c->ints++;
            if (k > c->max_int)
                c->max_int = k;
        } else {
            fail(e, "cannot encode a table with a %s key", luaL_typename(L, -2));
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
    }
    return true;
}

static json_t *encode_array(encoder_t *e, int idx, size_t n)
{
    lua_State *L = e->L;
    json_t *arr = json_array();
    if (arr == NULL) {
        fail(e, "out of memory");
        return NULL;
    }
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        e->path[e->depth] = (path_seg_t){NULL, 0, (lua_Integer)i};
        e->depth++;
        json_t *v = encode_value(e, lua_gettop(L));
        e->depth--;
        lua_pop(L, 1);
        if (v == NULL) {
            json_decref(arr);
            return NULL;
        }
        if (json_array_append_new(arr, v) != 0) {
            fail(e, "out of memory");
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *encode_object(encoder_t *e, int idx)
{
    lua_State *L = e->L;
    json_t *obj = json_object();
    if (obj == NULL) {
        fail(e, "out of memory");
        return NULL;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t keylen;
        /* census_keys saw only string keys, so this converts nothing
         * (converting a key in place would break lua_next). */
        const char *key = lua_tolstring(L, -2, &keylen);
        e->path[e->depth] = (path_seg_t){key, keylen, 0};
        e->depth++;
        if (memchr(key, '\0', keylen) != NULL) {
            fail(e, "cannot encode an object key containing a NUL byte");
            e->depth--;
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        json_t *v = encode_value(e, lua_gettop(L));
        if (v == NULL) {
            e->depth--;
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        /* Takes v even when it fails; a bad key is the only likely cause. */
        if (json_object_setn_new(obj, key, keylen, v) != 0) {
            fail(e, "cannot encode an object key that is not valid UTF-8");
            e->depth--;
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        e->depth--;
        lua_pop(L, 1);
    }
    return obj;
}

static json_t *encode_table(encoder_t *e, int idx)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < e->depth; i++) {
        if (e->ancestors[i] == self) {
            fail(e, "cannot encode a table that contains itself");
            return NULL;
        }
    }
    if (e->depth >= SL_LUA_JSON_MAX_DEPTH) {
        fail(e, "cannot encode nesting deeper than 128 levels");
        return NULL;
    }
    bool marked = has_metatable(L, idx, e->array_mt) || has_metatable(L, idx, e->empty_mt);
    key_census_t c;
    if (!census_keys(e, idx, &c))
        return NULL;
    if (c.strings > 0 && (c.ints > 0 || marked)) {
        fail(e, marked ? "cannot encode an array (json.array) with string keys"
                       : "cannot encode a table with mixed keys");
        return NULL;
    }
    if (c.ints > 0 && c.max_int != (lua_Number)c.ints) {
        fail(e, "cannot encode a sparse array (%zu values, highest index %.0f)", c.ints, c.max_int);
        return NULL;
    }
    e->ancestors[e->depth] = self;
    if (marked || c.ints > 0)
        return encode_array(e, idx, c.ints);
    return encode_object(e, idx);
}

static json_t *encode_value(encoder_t *e, int idx)
{
    lua_State *L = e->L;
    json_t *j = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        j = json_null();
        break;
    case LUA_TBOOLEAN:
        j = json_boolean(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        return encode_number(e, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        j = json_stringn(s, len);
        if (j == NULL) {
            fail(e, "cannot encode a string that is not valid UTF-8");
            return NULL;
        }
        return j;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL_UD)
            return json_null();
        fail(e, "cannot encode a lightuserdata other than json.null");
        return NULL;
    case LUA_TUSERDATA:
        if (has_metatable(L, idx, e->int64_mt)) {
            int64_t v;
            memcpy(&v, lua_touserdata(L, idx), sizeof v);
            j = json_integer((json_int_t)v);
            break;
        }
        fail(e, "cannot encode a userdata");
        return NULL;
    case LUA_TTABLE:
        return encode_table(e, idx);
    default:
        fail(e, "cannot encode a %s", luaL_typename(L, idx));
        return NULL;
    }
    if (j == NULL)
        fail(e, "out of memory");
    return j;
}

json_t *sl_lua_to_json(lua_State *L, int idx, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    idx = abs_index(L, idx);
    encoder_t e = {.L = L, .err = err, .errlen = errlen};
    if (lua_type(L, idx) == LUA_TNONE) {
        fail(&e, "no value to encode");
        return NULL;
    }
    if (!lua_checkstack(L, STACK_RESERVE)) {
        fail(&e, "Lua stack overflow");
        return NULL;
    }
    int base = lua_gettop(L);
    push_registry(L, &key_array_mt);
    push_registry(L, &key_empty_mt);
    push_registry(L, &key_int64_mt);
    e.array_mt = base + 1;
    e.empty_mt = base + 2;
    e.int64_mt = base + 3;
    json_t *j = encode_value(&e, idx);
    lua_settop(L, base);
    return j;
}

/* ------------------------------------------------------------- dumping */

static bool real_round_trips(double d, int precision)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", precision, d);
    return strtod(buf, NULL) == d;
}

/* The fewest significant digits (15..17) that print every real in j back
 * to the same double. 15 digits reproduce any decimal of up to 15 digits
 * and %g drops trailing zeros, so "0.1" stays "0.1"; jansson applies one
 * precision to a whole dump, so the neediest real decides. If p digits
 * round-trip a double, so do more, hence the single pass. */
static int real_precision(const json_t *j, int p, int depth)
{
    if (p >= 17 || depth > JSON_PARSER_MAX_DEPTH)
        return 17;
    switch (json_typeof(j)) {
    case JSON_REAL: {
        double d = json_real_value(j);
        while (p < 17 && !real_round_trips(d, p))
            p++;
        return p;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n && p < 17; i++)
            p = real_precision(json_array_get(j, i), p, depth + 1);
        return p;
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)j, key, child) {
            p = real_precision(child, p, depth + 1);
            if (p >= 17)
                break;
        }
        return p;
    }
    default:
        return p;
    }
}

char *sl_lua_json_dumps(const json_t *j, bool pretty)
{
    if (j == NULL)
        return NULL;
    size_t flags = JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(real_precision(j, 15, 0));
    flags |= pretty ? JSON_INDENT(2) : JSON_COMPACT;
    return json_dumps(j, flags);
}

/* ---------------------------------------------------------- Lua module */

static guard_t *push_guard(lua_State *L)
{
    guard_t *g = lua_newuserdata(L, sizeof *g);
    g->j = NULL;
    g->s = NULL;
    push_registry(L, &key_guard_mt);
    lua_setmetatable(L, -2);
    return g;
}

static int fail_pair(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* Reads json.encode's options table at idx; NULL or the complaint. */
static const char *read_encode_options(lua_State *L, int idx, bool *pretty)
{
    *pretty = false;
    if (lua_isnil(L, idx))
        return NULL;
    if (!lua_istable(L, idx))
        return "json.encode: options must be a table";
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        if (k == NULL || len != 6 || memcmp(k, "pretty", 6) != 0) {
            lua_pop(L, 2);
            return "json.encode: unknown option (only 'pretty' is known)";
        }
        if (!lua_isboolean(L, -1)) {
            lua_pop(L, 2);
            return "json.encode: option 'pretty' must be a boolean";
        }
        *pretty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return NULL;
}

static int l_encode(lua_State *L)
{
    if (lua_gettop(L) == 0)
        return fail_pair(L, "json.encode: expected a value to encode");
    lua_settop(L, 2);
    bool pretty;
    const char *bad = read_encode_options(L, 2, &pretty);
    if (bad != NULL)
        return fail_pair(L, bad);
    guard_t *g = push_guard(L);
    char err[256];
    g->j = sl_lua_to_json(L, 1, err, sizeof err);
    if (g->j == NULL)
        return fail_pair(L, err);
    g->s = sl_lua_json_dumps(g->j, pretty);
    if (g->s == NULL)
        return fail_pair(L, "json.encode: out of memory");
    lua_pushstring(L, g->s);
    json_decref(g->j);
    free(g->s);
    g->j = NULL;
    g->s = NULL;
    return 1;
}

static int l_decode(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "json.decode: expected a string, got %s", luaL_typename(L, 1));
        return 2;
    }
    lua_settop(L, 1);
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    guard_t *g = push_guard(L);
    json_error_t jerr;
    g->j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (g->j == NULL) {
        lua_pushnil(L);
        if (jerr.line > 0)
            lua_pushfstring(L, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        else
            lua_pushstring(L, jerr.text);
        return 2;
    }
    const char *why = push_json(L, g->j);
    json_decref(g->j);
    g->j = NULL;
    if (why != NULL)
        return fail_pair(L, why);
    return 1;
}

static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
        push_registry(L, &key_array_mt);
        push_registry(L, &key_empty_mt);
        if (has_metatable(L, 1, 2) || has_metatable(L, 1, 3)) {
            lua_settop(L, 1);
            return 1;
        }
        if (lua_getmetatable(L, 1))
            return luaL_argerror(L, 1, "table already has a metatable");
        lua_settop(L, 1);
    }
    push_registry(L, &key_array_mt);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_object(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_registry(L, &key_empty_mt);
    if (has_metatable(L, 1, 2))
        return luaL_error(L, "json.empty_array is read-only; use json.object() on a new table");
    lua_pop(L, 1);
    push_registry(L, &key_array_mt);
    if (has_metatable(L, 1, 2)) {
        lua_pushnil(L);
        lua_setmetatable(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

static int l_is_array(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_istable(L, 1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    push_registry(L, &key_array_mt);
    push_registry(L, &key_empty_mt);
    if (has_metatable(L, 1, 2) || has_metatable(L, 1, 3)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    encoder_t e = {.L = L};
    key_census_t c;
    bool ok = census_keys(&e, 1, &c);
    lua_pushboolean(L, ok && c.strings == 0 && c.ints > 0 && c.max_int == (lua_Number)c.ints);
    return 1;
}

int sl_lua_json_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"encode", l_encode}, {"decode", l_decode}, {"array", l_array},
        {"object", l_object}, {"is_array", l_is_array}, {"int64", l_int64},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 8);
    for (const luaL_Reg *f = fns; f->name != NULL; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pushlightuserdata(L, JSON_NULL_UD);
    lua_setfield(L, -2, "null");
    push_registry(L, &key_empty_array);
    lua_setfield(L, -2, "empty_array");
    return 1;
}
