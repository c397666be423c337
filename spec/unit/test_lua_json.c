/* Unit tests for sluice.json (core/lua_json.c): round trips through an
 * embedded LuaJIT, decode and encode errors, the depth limit, int64 boxes
 * and the C entry points. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "lua_json.h"

/* ------------------------------------------------------------- helpers */

static lua_State *L;
static char result[65536];

static lua_State *new_state(void)
{
    lua_State *s = luaL_newstate();
    if (s == NULL) {
        fprintf(stderr, "luaL_newstate failed\n");
        exit(2);
    }
    luaL_openlibs(s);
    lua_pushcfunction(s, sl_lua_json_open);
    lua_call(s, 0, 1);
    lua_setglobal(s, "json");
    return s;
}

/* Runs code with the global `input` set to in (when non-NULL) and returns
 * its first result as text: strings as they are, nil as "nil", booleans as
 * "true"/"false", numbers with %.17g, raised errors as "RAISED: msg". */
static const char *run_with(const char *in, size_t inlen, const char *code)
{
    if (in != NULL)
        lua_pushlstring(L, in, inlen);
    else
        lua_pushnil(L);
    lua_setglobal(L, "input");
    int top = lua_gettop(L);
    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        snprintf(result, sizeof result, "RAISED: %s", lua_tostring(L, -1));
    } else {
        switch (lua_type(L, -1)) {
        case LUA_TNIL:
            snprintf(result, sizeof result, "nil");
            break;
        case LUA_TBOOLEAN:
            snprintf(result, sizeof result, "%s", lua_toboolean(L, -1) ? "true" : "false");
            break;
        case LUA_TNUMBER:
            snprintf(result, sizeof result, "%.17g", lua_tonumber(L, -1));
            break;
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            if (len >= sizeof result)
                len = sizeof result - 1;
            memcpy(result, s, len);
            result[len] = '\0';
            break;
        }
        default:
            snprintf(result, sizeof result, "<%s>", luaL_typename(L, -1));
        }
    }
    lua_settop(L, top);
    return result;
}

static const char *run(const char *code)
{
    return run_with(NULL, 0, code);
}

static const char *roundtrip_n(const char *in, size_t len)
{
    return run_with(in, len,
                    "local v, e = json.decode(input)\n"
                    "if v == nil then return 'DECODE: ' .. e end\n"
                    "local s, e2 = json.encode(v)\n"
                    "if s == nil then return 'ENCODE: ' .. e2 end\n"
                    "return s");
}

static const char *roundtrip(const char *in)
{
    return roundtrip_n(in, strlen(in));
}

static const char *decode_error(const char *in)
{
    return run_with(in, strlen(in),
                    "local v, e = json.decode(input)\n"
                    "if v ~= nil then return 'decoded' end\n"
                    "return e");
}

/* "[[[...]]]" with n levels, or {"a":{"a":...1}} when objects is set. */
static char *nested(int n, int objects)
{
    char *s = malloc((size_t)n * 6 + 2);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (objects) {
            memcpy(s + len, "{\"a\":", 5);
            len += 5;
        } else {
            s[len++] = '[';
        }
    }
    if (objects)
        s[len++] = '1';
    for (int i = 0; i < n; i++)
        s[len++] = objects ? '}' : ']';
    s[len] = '\0';
    return s;
}

/* ---------------------------------------------------------- round trips */

typedef struct rt_case {
    const char *in;
    const char *out;
} rt_case_t;

static void test_round_trips(void)
{
    static const rt_case_t cases[] = {
        {"[]", "[]"},
        {"{}", "{}"},
        {"[[],{}]", "[[],{}]"},
        {"{\"tools\":[],\"meta\":{}}", "{\"meta\":{},\"tools\":[]}"},
        {"{\"a\":[1,{\"b\":[[]]}],\"c\":{\"d\":\"e\"}}", "{\"a\":[1,{\"b\":[[]]}],\"c\":{\"d\":\"e\"}}"},
        {"{\"a\":null,\"b\":1}", "{\"a\":null,\"b\":1}"},
        {"[null,1,null]", "[null,1,null]"},
        {"[null]", "[null]"},
        {"null", "null"},
        {"true", "true"},
        {"[true,false]", "[true,false]"},
        {"0", "0"},
        {"-1", "-1"},
        {"9007199254740992", "9007199254740992"},
        {"-9007199254740992", "-9007199254740992"},
        {"9007199254740993", "9007199254740993"},
        {"-9007199254740993", "-9007199254740993"},
        {"9223372036854775807", "9223372036854775807"},
        {"-9223372036854775808", "-9223372036854775808"},
        {"{\"id\":1234567890123456789}", "{\"id\":1234567890123456789}"},
        {"1e308", "1e308"},
        {"-1e308", "-1e308"},
        {"1e21", "1e21"},
        {"0.1", "0.1"},
        {"[0.1,0.7,2.5]", "[0.1,0.7,2.5]"},
        {"3.0", "3"},
        {"3.5", "3.5"},
        {"-0.0", "-0.0"},
        {"-0", "0"},
        {"1E2", "100"},
        {"123.456e-5", "0.00123456"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"1.0000000000000002", "1.0000000000000002"},
        /* one precision per document: the neediest real decides */
        {"[0.1,0.30000000000000004]", "[0.10000000000000001,0.30000000000000004]"},
        {"2.2250738585072014e-308", "2.2250738585072014e-308"},
        {"\"\"", "\"\""},
        {"\"h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80\"", "\"h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80\""},
        {"\"\\u00e9\\u2603\\ud83d\\ude00\"", "\"\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80\""},
        {"\"/\"", "\"/\""},
        {"\"a\\/b\"", "\"a/b\""},
        {"\"https://x.test/v1/chat\"", "\"https://x.test/v1/chat\""},
        {"\"q\\\"b\\\\\"", "\"q\\\"b\\\\\""},
        {"\"\\t\\n\\r\\b\\f\\u0001\\u001f\"", "\"\\t\\n\\r\\b\\f\\u0001\\u001F\""},
        {"\"a\\u0000b\"", "\"a\\u0000b\""},
        {"\"\x7f\"", "\"\x7f\""},
        {" [ 1 , 2 ]\n", "[1,2]"},
        {"{\"b\":1,\"a\":2,\"A\":3,\"_\":4}", "{\"A\":3,\"_\":4,\"a\":2,\"b\":1}"},
        {"{\"a\":1,\"a\":2}", "{\"a\":2}"},
        {"{\"\":\"empty key\"}", "{\"\":\"empty key\"}"},
        {"{\"1\":\"a\",\"2\":\"b\"}", "{\"1\":\"a\",\"2\":\"b\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_STR(cases[i].out, roundtrip(cases[i].in));

    /* A large body, as an LLM request: every value comes back. */
    CHECK_STR("{\"max_tokens\":4096,\"messages\":[{\"content\":\"hi /there\",\"name\":null,\"role\":\"user\"}],"
              "\"model\":\"gpt-4o\",\"seed\":18446744073709551,\"stream\":true,\"temperature\":0.2,"
              "\"tool_choice\":\"auto\",\"tools\":[]}",
              roundtrip("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi /there\","
                        "\"name\":null}],\"tools\":[],\"tool_choice\":\"auto\",\"temperature\":0.2,"
                        "\"max_tokens\":4096,\"stream\":true,\"seed\":18446744073709551}"));
}

static void test_pretty(void)
{
    CHECK_STR("{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": []\n}",
              run("return json.encode(json.decode('{\"c\":[],\"b\":{},\"a\":[1,2]}'), {pretty = true})"));
    CHECK_STR("[1,2]", run("return json.encode({1, 2}, {pretty = false})"));
    CHECK_STR("[1,2]", run("return json.encode({1, 2}, {})"));
    CHECK_STR("json.encode: unknown option (only 'pretty' is known)",
              run("local s, e = json.encode({}, {indent = 2}) return e"));
    CHECK_STR("json.encode: unknown option (only 'pretty' is known)",
              run("local s, e = json.encode({}, {true}) return e"));
    CHECK_STR("json.encode: option 'pretty' must be a boolean",
              run("local s, e = json.encode({}, {pretty = 1}) return e"));
    CHECK_STR("json.encode: options must be a table", run("local s, e = json.encode({}, 'pretty') return e"));
    CHECK_STR("nil", run("return (json.encode({}, 'pretty'))"));
}

/* ------------------------------------------------------------ decoding */

static void test_decode_values(void)
{
    CHECK_STR("true", run("return json.decode('{\"x\":null}').x == json.null"));
    CHECK_STR("true", run("local t = json.decode('{\"x\":null}') return next(t) == 'x'"));
    CHECK_STR("3", run("return #json.decode('[null,null,null]')"));
    CHECK_STR("true", run("return json.decode('null') == json.null"));
    CHECK_STR("userdata", run("return type(json.null)"));
    CHECK_STR("true", run("return json.is_array(json.decode('[]'))"));
    CHECK_STR("false", run("return json.is_array(json.decode('{}'))"));
    CHECK_STR("true", run("return getmetatable(json.decode('[1]')) == getmetatable(json.decode('[]'))"));
    CHECK_STR("nil", run("return getmetatable(json.decode('{\"a\":1}'))"));
    CHECK_STR("number", run("return type(json.decode('9007199254740992'))"));
    CHECK_STR("number", run("return type(json.decode('-9007199254740992'))"));
    CHECK_STR("userdata", run("return type(json.decode('9007199254740993'))"));
    CHECK_STR("userdata", run("return type(json.decode('-9007199254740993'))"));
    CHECK_STR("9007199254740993", run("return tostring(json.decode('9007199254740993'))"));
    CHECK_STR("0.10000000000000001", run("return json.decode('0.1')"));
    CHECK_STR("5", run("return json.decode(' 5 ')"));
    CHECK_STR("a/b", run("return json.decode('\"a\\\\/b\"')"));
    CHECK_STR("3", run("return #json.decode('\"a\\\\u0000b\"')"));
    CHECK_STR("2", run("return #json.decode('[\"x\", {\"y\": [1, 2, 3]}]')"));
    CHECK_STR("3", run("return #json.decode('[\"x\", {\"y\": [1, 2, 3]}]')[2].y"));
}

static void test_decode_errors(void)
{
    CHECK_STR("line 1, column 3: ']' expected near end of file", decode_error("[1,"));
    CHECK_STR("line 2, column 2: ']' expected near end of file", decode_error("[1,\n 2"));
    CHECK_STR("line 1, column 6: unexpected token near '}'", decode_error("{\"a\":}"));
    CHECK_STR("line 1, column 5: end of file expected near 'x'", decode_error("[1] x"));
    CHECK_STR("line 1, column 0: unexpected token near end of file", decode_error(""));
    CHECK_STR("line 1, column 3: invalid token near 'nul'", decode_error("nul"));
    CHECK_STR("line 1, column 3: invalid token near 'NaN'", decode_error("NaN"));
    CHECK_STR("line 1, column 21: too big integer",
              decode_error("123456789012345678901"));
    CHECK_STR("line 1, column 5: real number overflow near '1e400'", decode_error("1e400"));
    CHECK_STR("line 1, column 8: invalid Unicode '\\uD800' near '\"\\ud800\"'", decode_error("\"\\ud800\""));
    CHECK_STR("line 1, column 1: unable to decode byte 0xff near '\"'", decode_error("\"\xff\""));
    CHECK_STR("line 1, column 10: NUL byte in object key not supported near '\"a\\u0000\"'",
              decode_error("{\"a\\u0000\":1}"));
    CHECK_STR("line 1, column 1: unexpected newline near '\"'", decode_error("\"\n\""));
    CHECK_STR("line 1, column 2: string or '}' expected near ','", decode_error("{,}"));
    CHECK_STR("json.decode: expected a string, got table", run("local v, e = json.decode({}) return e"));
    CHECK_STR("json.decode: expected a string, got nil", run("local v, e = json.decode() return e"));
    CHECK_STR("json.decode: expected a string, got number", run("local v, e = json.decode(5) return e"));
    CHECK_STR("nil", run("return (json.decode('[') )"));
}

/* ------------------------------------------------------------ encoding */

static void test_encode_values(void)
{
    CHECK_STR("{}", run("return json.encode({})"));
    CHECK_STR("[]", run("return json.encode(json.empty_array)"));
    CHECK_STR("[]", run("return json.encode(json.array({}))"));
    CHECK_STR("[]", run("return json.encode(json.array())"));
    CHECK_STR("{}", run("return json.encode(json.object(json.array({})))"));
    CHECK_STR("{}", run("return json.encode(json.object(json.decode('[]')))"));
    CHECK_STR("{\"a\":1}", run("return json.encode(json.object({a = 1}))"));
    CHECK_STR("[1,2,3]", run("return json.encode({1, 2, 3})"));
    CHECK_STR("[1,2,3]", run("return json.encode(json.array({1, 2, 3}))"));
    CHECK_STR("{\"a\":1,\"b\":\"x\"}", run("return json.encode({b = 'x', a = 1})"));
    CHECK_STR("{\"tools\":[],\"x\":null}", run("return json.encode({tools = json.empty_array, x = json.null})"));
    CHECK_STR("[[],[]]", run("return json.encode({json.empty_array, json.empty_array})"));
    CHECK_STR("null", run("return json.encode(json.null)"));
    CHECK_STR("null", run("return json.encode(nil)"));
    CHECK_STR("\"s\"", run("return json.encode('s')"));
    CHECK_STR("true", run("return json.encode(true)"));
    CHECK_STR("3", run("return json.encode(3)"));
    CHECK_STR("3", run("return json.encode(3.0)"));
    CHECK_STR("-3", run("return json.encode(-3)"));
    CHECK_STR("0.5", run("return json.encode(0.5)"));
    CHECK_STR("0.30000000000000004", run("return json.encode(0.1 + 0.2)"));
    CHECK_STR("9007199254740992", run("return json.encode(2^53)"));
    CHECK_STR("-9007199254740992", run("return json.encode(-2^53)"));
    CHECK_STR("9007199254740994.0", run("return json.encode(2^53 + 2)"));
    CHECK_STR("1e300", run("return json.encode(1e300)"));
    CHECK_STR("-0.0", run("return json.encode(-0.0)"));
    CHECK_STR("\"a/b\\\"c\\\\\\n\"", run("return json.encode('a/b\"c\\\\\\n')"));
    CHECK_STR("\"\\u0000\"", run("return json.encode('\\0')"));
    CHECK_STR("{\"k\":[1,{\"n\":[]}]}", run("local t = {k = {1, {n = json.array()}}} return json.encode(t)"));
    /* A table seen twice but not inside itself is not a cycle. */
    CHECK_STR("[{\"a\":1},{\"a\":1}]", run("local s = {a = 1} return json.encode({s, s})"));
    /* Foreign metatables are ignored and tables read raw. */
    CHECK_STR("{\"a\":1}", run("return json.encode(setmetatable({a = 1}, {__index = {b = 2}}))"));
    CHECK_STR("json.encode: expected a value to encode", run("local s, e = json.encode() return e"));
    /* The array marker survives edits of decoded arrays. */
    CHECK_STR("[1,2,3]", run("local a = json.decode('[1,2]') a[#a + 1] = 3 return json.encode(a)"));
    CHECK_STR("[]", run("local a = json.decode('[1]') a[1] = nil return json.encode(a)"));
}

static void test_encode_errors(void)
{
    static const rt_case_t cases[] = {
        {"return json.encode(print)", "cannot encode a function"},
        {"return json.encode({f = print})", "cannot encode a function at $.f"},
        {"return json.encode(coroutine.create(print))", "cannot encode a thread"},
        {"return json.encode(io.stdout)", "cannot encode a userdata"},
        {"return json.encode({1, a = 2})", "cannot encode a table with mixed keys"},
        {"return json.encode({x = {1, 2, y = 3}})", "cannot encode a table with mixed keys at $.x"},
        {"return json.encode({[1] = 1, [3] = 3})", "cannot encode a sparse array (2 values, highest index 3)"},
        {"return json.encode({1, nil, 3})", "cannot encode a sparse array (2 values, highest index 3)"},
        {"return json.encode({[2] = 'x'})", "cannot encode a sparse array (1 values, highest index 2)"},
        {"return json.encode({[0] = 1})", "cannot encode a table with the number key 0"},
        {"return json.encode({[-1] = 1})", "cannot encode a table with the number key -1"},
        {"return json.encode({[1.5] = 1})", "cannot encode a table with the number key 1.5"},
        {"return json.encode({[2^60] = 1})", "cannot encode a table with the number key 1.152921504606847e+18"},
        {"return json.encode({[true] = 1})", "cannot encode a table with a boolean key"},
        {"return json.encode({[{}] = 1})", "cannot encode a table with a table key"},
        {"return json.encode({[json.null] = 1})", "cannot encode a table with a userdata key"},
        {"return json.encode(0/0)", "cannot encode NaN"},
        {"return json.encode(math.huge)", "cannot encode infinity"},
        {"return json.encode({a = {-math.huge}})", "cannot encode infinity at $.a[1]"},
        {"return json.encode('\\255')", "cannot encode a string that is not valid UTF-8"},
        {"return json.encode({'ok', '\\237\\160\\128'})", "cannot encode a string that is not valid UTF-8 at $[2]"},
        {"return json.encode({['\\255'] = 1})", "cannot encode an object key that is not valid UTF-8 at $[\"\\xff\"]"},
        {"return json.encode({['a\\0b'] = 1})", "cannot encode an object key containing a NUL byte at $[\"a\\x00b\"]"},
        {"return json.encode({['x y'] = {['a\"b'] = print}})", "cannot encode a function at $[\"x y\"][\"a\\x22b\"]"},
        {"return json.encode({[string.rep('k', 50)] = print})",
         "cannot encode a function at $.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"},
        {"return json.encode({[string.rep('k', 50) .. '-'] = print})",
         "cannot encode a function at $[\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\"]"},
        {"local t = {} t.self = t return json.encode(t)", "cannot encode a table that contains itself at $.self"},
        {"local t = {} t[1] = {a = {t}} return json.encode(t)", "cannot encode a table that contains itself at $[1].a[1]"},
        {"local a = json.decode('[1]') a.x = 1 return json.encode(a)", "cannot encode an array (json.array) with string keys"},
        {"return json.encode(json.array({a = 1}))", "cannot encode an array (json.array) with string keys"},
        {"local a = json.array() a[2] = 1 return json.encode(a)", "cannot encode a sparse array (1 values, highest index 2)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char code[512];
        /* encode must return nil, message rather than raise */
        snprintf(code, sizeof code,
                 "local f = function() %s end\n"
                 "local s, e = f()\n"
                 "if s ~= nil then return 'encoded: ' .. s end\n"
                 "return e",
                 cases[i].in);
        CHECK_STR(cases[i].out, run(code));
    }
}

/* ---------------------------------------------------------------- depth */

static void test_depth(void)
{
    char *ok = nested(128, 0);
    CHECK_STR(ok, roundtrip(ok));
    char *deep = nested(129, 0);
    CHECK_STR("DECODE: nesting deeper than 128 levels", roundtrip(deep));
    free(deep);
    free(ok);

    ok = nested(128, 1);
    CHECK_STR(ok, roundtrip(ok));
    deep = nested(129, 1);
    CHECK_STR("DECODE: nesting deeper than 128 levels", roundtrip(deep));
    free(deep);
    free(ok);

    /* Far past jansson's own parser limit: its error, not a crash. */
    deep = nested(5000, 0);
    CHECK_STR("DECODE: line 1, column 2049: maximum parsing depth reached near '['", roundtrip(deep));
    free(deep);

    CHECK_STR("128", run("local t = {} for i = 2, 128 do t = {t} end\n"
                         "local s = json.encode(t) return #s / 2"));
    CHECK_STR("cannot encode nesting deeper than 128 levels at $.a.a.a",
              run("local t = {} for i = 2, 129 do t = {a = t} end\n"
                  "local s, e = json.encode(t) if s then return s end\n"
                  "return (e:gsub('%.a%.a%.a[%.a]*$', '.a.a.a'))"));
    CHECK_STR("cannot encode nesting deeper than 128 levels",
              run("local t = {} for i = 2, 10000 do t = {t} end\n"
                  "local s, e = json.encode(t) return (e:gsub(' at .*', ''))"));
}

/* ---------------------------------------------------------------- int64 */

static void test_int64(void)
{
    CHECK_STR("9223372036854775807", run("return tostring(json.int64('9223372036854775807'))"));
    CHECK_STR("-9223372036854775808", run("return tostring(json.int64('-9223372036854775808'))"));
    CHECK_STR("0", run("return tostring(json.int64('-0'))"));
    CHECK_STR("7", run("return tostring(json.int64('007'))"));
    CHECK_STR("42", run("return tostring(json.int64(42))"));
    CHECK_STR("-9223372036854775808", run("return tostring(json.int64(-2^63))"));
    CHECK_STR("9007199254740994", run("return tostring(json.int64(2^53 + 2))"));
    CHECK_STR("5", run("return json.encode(json.int64('5'))"));
    CHECK_STR("{\"id\":-9223372036854775808}", run("return json.encode({id = json.int64('-9223372036854775808')})"));
    CHECK_STR("true", run("local b = json.int64('12') return json.int64(b) == b"));

    static const rt_case_t bad[] = {
        {"'123456789012345678901'", "json.int64: expected a decimal integer within the int64 range"},
        {"'9223372036854775808'", "json.int64: expected a decimal integer within the int64 range"},
        {"'-9223372036854775809'", "json.int64: expected a decimal integer within the int64 range"},
        {"'12a'", "json.int64: expected a decimal integer within the int64 range"},
        {"''", "json.int64: expected a decimal integer within the int64 range"},
        {"'-'", "json.int64: expected a decimal integer within the int64 range"},
        {"' 1'", "json.int64: expected a decimal integer within the int64 range"},
        {"'+1'", "json.int64: expected a decimal integer within the int64 range"},
        {"'0x10'", "json.int64: expected a decimal integer within the int64 range"},
        {"'1.0'", "json.int64: expected a decimal integer within the int64 range"},
        {"string.rep('1', 40)", "json.int64: expected a decimal integer within the int64 range"},
        {"1.5", "json.int64: expected an integral number within the int64 range"},
        {"2^63", "json.int64: expected an integral number within the int64 range"},
        {"0/0", "json.int64: expected an integral number within the int64 range"},
        {"math.huge", "json.int64: expected an integral number within the int64 range"},
        {"{}", "json.int64: expected a string or number, got table"},
        {"nil", "json.int64: expected a string or number, got nil"},
        {"io.stdout", "json.int64: expected a string or number, got userdata"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char code[256];
        snprintf(code, sizeof code, "local v, e = json.int64(%s) if v ~= nil then return 'boxed' end return e",
                 bad[i].in);
        CHECK_STR(bad[i].out, run(code));
    }

    /* Comparisons between boxes, including boxes from decode. */
    CHECK_STR("true", run("return json.decode('9007199254740993') == json.int64('9007199254740993')"));
    CHECK_STR("false", run("return json.decode('9007199254740993') == json.int64('9007199254740994')"));
    CHECK_STR("true", run("return json.int64('9007199254740993') < json.int64('9007199254740994')"));
    CHECK_STR("false", run("return json.int64('9007199254740994') < json.int64('9007199254740993')"));
    CHECK_STR("true", run("return json.int64('-9223372036854775808') < json.int64('9223372036854775807')"));
    CHECK_STR("true", run("return json.int64('5') <= json.int64('5')"));
    CHECK_STR("false", run("return json.int64('6') <= json.int64('5')"));
    CHECK_STR("true", run("return json.int64('6') > json.int64('5')"));
    CHECK_STR("true", run("return json.int64('5') >= json.int64('5')"));
    CHECK_STR("true", run("return json.int64('5') ~= json.int64('6')"));
    /* Lua 5.1 rules: a box never equals a number, ordering with one raises. */
    CHECK_STR("false", run("return json.int64('5') == 5"));
    CHECK_STR("RAISED: [string \"return json.int64('5') < 6\"]:1: attempt to compare userdata with number",
              run("return json.int64('5') < 6"));
    CHECK_STR("json.int64", run("return getmetatable(json.int64('5'))"));
}

/* ----------------------------------------------------- arrays, helpers */

static void test_markers(void)
{
    CHECK_STR("true", run("return json.is_array(json.empty_array)"));
    CHECK_STR("true", run("return json.is_array({1, 2})"));
    CHECK_STR("true", run("return json.is_array(json.array({}))"));
    CHECK_STR("false", run("return json.is_array({})"));
    CHECK_STR("false", run("return json.is_array({a = 1})"));
    CHECK_STR("false", run("return json.is_array({1, a = 1})"));
    CHECK_STR("false", run("return json.is_array({[2] = 1})"));
    CHECK_STR("false", run("return json.is_array({[true] = 1})"));
    CHECK_STR("false", run("return json.is_array('[]')"));
    CHECK_STR("false", run("return json.is_array(nil)"));
    /* Unmarking does not turn keys 1..n into an object. */
    CHECK_STR("true", run("return json.is_array(json.object(json.decode('[1]')))"));
    CHECK_STR("[1]", run("return json.encode(json.object(json.decode('[1]')))"));
    CHECK_STR("true", run("local t = {} return json.array(t) == t"));
    CHECK_STR("true", run("local t = {} return json.object(t) == t"));
    CHECK_STR("false", run("return json.array() == json.array()"));
    CHECK_STR("true", run("return json.array(json.empty_array) == json.empty_array"));
    CHECK_STR("true", run("local a, b = json.decode('[]'), json.decode('[]') return a ~= b and a ~= json.empty_array"));
    CHECK_STR("RAISED: [string \"json.empty_array[1] = 1\"]:1: json.empty_array is read-only; use json.array() for a new empty array",
              run("json.empty_array[1] = 1"));
    CHECK_STR("RAISED: [string \"json.object(json.empty_array)\"]:1: json.empty_array is read-only; use json.object() on a new table",
              run("json.object(json.empty_array)"));
    CHECK_STR("RAISED: [string \"setmetatable(json.empty_array, nil)\"]:1: cannot change a protected metatable",
              run("setmetatable(json.empty_array, nil)"));
    CHECK_STR("0", run("return #json.empty_array"));
    CHECK_STR("RAISED: bad argument #1 to '?' (table already has a metatable)",
              run("return json.array(setmetatable({}, {}))"));
    CHECK_STR("RAISED: bad argument #1 to '?' (table expected, got string)", run("return json.array('x')"));
    CHECK_STR("RAISED: bad argument #1 to '?' (table expected, got no value)", run("return json.object()"));
    /* A foreign metatable is left alone by json.object. */
    CHECK_STR("true", run("local m = {} local t = setmetatable({}, m) return getmetatable(json.object(t)) == m"));
}

/* ------------------------------------------------------------ C entries */

static void test_c_api(void)
{
    /* sl_lua_push_json: values built in C, stack effect exactly one. */
    json_t *j = json_pack("{s:[], s:n, s:I, s:f, s:s#}", "arr", "nul", "big", (json_int_t)INT64_MAX, "r", 0.25,
                          "s", "a\0b", (size_t)3);
    int top = lua_gettop(L);
    CHECK_INT(1, sl_lua_push_json(L, j));
    CHECK_INT(top + 1, lua_gettop(L));
    lua_setglobal(L, "v");
    CHECK_STR("{\"arr\":[],\"big\":9223372036854775807,\"nul\":null,\"r\":0.25,\"s\":\"a\\u0000b\"}",
              run("return json.encode(v)"));
    CHECK_STR("true", run("return v.nul == json.null"));
    CHECK_INT(1, j->refcount);
    json_decref(j);

    /* Too deep: 0, stack untouched. */
    json_t *deep = json_array();
    for (int i = 1; i < 129; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    top = lua_gettop(L);
    CHECK_INT(0, sl_lua_push_json(L, deep));
    CHECK_INT(top, lua_gettop(L));
    json_t *ok = json_array_get(deep, 0);
    CHECK_INT(1, sl_lua_push_json(L, ok));
    CHECK_INT(top + 1, lua_gettop(L));
    lua_pop(L, 1);
    json_decref(deep);
    CHECK_INT(0, sl_lua_push_json(L, NULL));
    CHECK_INT(top, lua_gettop(L));

    /* sl_lua_to_json: negative index, stack left as found. */
    char err[128];
    run("t = {b = {1, 2}, a = json.null}");
    lua_getglobal(L, "t");
    lua_pushinteger(L, 7);
    top = lua_gettop(L);
    json_t *out = sl_lua_to_json(L, -2, err, sizeof err);
    CHECK_INT(top, lua_gettop(L));
    CHECK_STR("", err);
    char *s = sl_lua_json_dumps(out, false);
    CHECK_STR("{\"a\":null,\"b\":[1,2]}", s);
    free(s);
    s = sl_lua_json_dumps(out, true);
    CHECK_STR("{\n  \"a\": null,\n  \"b\": [\n    1,\n    2\n  ]\n}", s);
    free(s);
    json_decref(out);
    CHECK_INT(7, lua_tointeger(L, -1));
    lua_pop(L, 2);

    /* Errors: message truncated to fit; NULL or empty buffers are fine. */
    lua_getglobal(L, "print");
    top = lua_gettop(L);
    char small[10];
    memset(small, 'x', sizeof small);
    CHECK_INT(1, sl_lua_to_json(L, -1, small, sizeof small) == NULL);
    CHECK_STR("cannot en", small);
    CHECK_INT(1, sl_lua_to_json(L, -1, NULL, 0) == NULL);
    CHECK_INT(1, sl_lua_to_json(L, -1, err, 0) == NULL);
    CHECK_INT(top, lua_gettop(L));
    lua_pop(L, 1);

    run("t = {k = {print}}");
    lua_getglobal(L, "t");
    char tiny[26];
    CHECK_INT(1, sl_lua_to_json(L, -1, tiny, sizeof tiny) == NULL);
    CHECK_STR("cannot encode a function ", tiny);
    char mid[30];
    CHECK_INT(1, sl_lua_to_json(L, -1, mid, sizeof mid) == NULL);
    CHECK_STR("cannot encode a function at $", mid);
    lua_pop(L, 1);

    /* Lightuserdata other than json.null. */
    lua_pushlightuserdata(L, result);
    CHECK_INT(1, sl_lua_to_json(L, -1, err, sizeof err) == NULL);
    CHECK_STR("cannot encode a lightuserdata other than json.null", err);
    lua_pop(L, 1);
    CHECK_INT(1, sl_lua_to_json(L, lua_gettop(L) + 1, err, sizeof err) == NULL);
    CHECK_STR("no value to encode", err);

    CHECK_INT(1, sl_lua_json_dumps(NULL, false) == NULL);

    /* A fresh state where only the C entries ran: the marker tables are
     * created on demand and match what the module uses later. */
    lua_State *fresh = luaL_newstate();
    luaL_openlibs(fresh);
    json_t *arr = json_loads("[[],{\"x\":9007199254740993}]", 0, NULL);
    CHECK_INT(1, sl_lua_push_json(fresh, arr));
    json_decref(arr);
    json_t *back = sl_lua_to_json(fresh, -1, err, sizeof err);
    s = sl_lua_json_dumps(back, false);
    CHECK_STR("[[],{\"x\":9007199254740993}]", s);
    free(s);
    json_decref(back);
    lua_setglobal(fresh, "v");
    lua_pushcfunction(fresh, sl_lua_json_open);
    lua_call(fresh, 0, 1);
    lua_setglobal(fresh, "json");
    CHECK_INT(0, luaL_dostring(fresh, "return json.is_array(v[1]) and tostring(v[2].x)"));
    CHECK_STR("9007199254740993", lua_tostring(fresh, -1));
    lua_close(fresh);
}

static void test_second_open(void)
{
    lua_pushcfunction(L, sl_lua_json_open);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "empty_array");
    lua_remove(L, -2);
    int top = lua_gettop(L);
    const char *code = "return json.empty_array == (...)";
    if (luaL_loadstring(L, code) != 0) {
        CHECK_FAIL("cannot load \"%s\": %s", code, lua_tostring(L, -1));
        return;
    }
    lua_pushvalue(L, top);
    lua_call(L, 1, 1);
    CHECK_INT(1, lua_toboolean(L, -1));
    lua_settop(L, top - 1);
}

int main(void)
{
    L = new_state();
    test_round_trips();
    test_pretty();
    test_decode_values();
    test_decode_errors();
    test_encode_values();
    test_encode_errors();
    test_depth();
    test_int64();
    test_markers();
    test_c_api();
    test_second_open();
    lua_close(L);
    return check_summary();
}
