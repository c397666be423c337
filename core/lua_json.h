/* sluice.json: JSON for Lua plugins that survives a decode/encode round trip.
 *
 * LLM request bodies cross the gateway through plugins; a plugin that
 * decodes a body and encodes it again must not turn "tools": [] into {},
 * drop keys whose value is null, round 64-bit ids or shorten reals.
 * Parsing and the value tree are jansson's; this module maps them onto Lua.
 *
 *   local json = require("sluice.json")
 *   local body, err = json.decode(raw)     -- never raises
 *   local out, err = json.encode(body)     -- never raises
 *
 * json.decode(s) -> value | nil, message
 *   s must be a Lua string. Any JSON value is accepted at the top level
 *   ("5" decodes to 5). On invalid JSON the message comes from jansson and
 *   says where: "line 1, column 4: ']' expected near end of file".
 *   Input containing \u0000 decodes to a Lua string with a NUL byte; a
 *   NUL inside an object key is an error (jansson cannot hold one).
 *   Integers that do not fit in int64 are an error ("too big integer").
 *   Duplicate keys in one object: the last one wins.
 *
 * json.encode(v [, {pretty = true}]) -> string | nil, message
 *   Compact by default (no spaces); pretty = true indents by 2 spaces.
 *   Object keys are always sorted (bytewise), because a Lua table does not
 *   remember insertion order and output must be deterministic; so a
 *   decode/encode round trip preserves every value but may reorder keys.
 *   json.encode(nil) is "null"; json.encode() is an error. Strings are
 *   escaped per RFC 8259 only: '/' and non-ASCII UTF-8 are written as they
 *   are; control characters, '"' and '\' are escaped. Metatables other than
 *   the array marker are ignored, as are __index/__pairs: tables are read
 *   raw. Errors (returned,
 *   with the path of the offending value, e.g. "... at $.tools[2].fn",
 *   indexes are Lua's, from 1):
 *     functions, coroutines, cdata, userdata other than json.int64 boxes,
 *     lightuserdata other than json.null; NaN and +-infinity; strings or
 *     keys that are not valid UTF-8, keys with a NUL byte; keys that are
 *     neither strings nor positive integers; tables mixing string and
 *     integer keys ("cannot encode a table with mixed keys"); sparse
 *     arrays; a table that contains itself; nesting deeper than 128.
 *
 * json.null
 *   A unique lightuserdata. Decode turns JSON null into it, so keys with a
 *   null value stay in their table and arrays keep their length; encode
 *   turns it back into null. It is truthy: test with `v == json.null`.
 *
 * Arrays and objects
 *   Decoded arrays carry a shared marker metatable; decoded objects have no
 *   metatable. A marked table always encodes as an array (empty: "[]") and
 *   must hold only the keys 1..n. An unmarked table encodes as an array when
 *   its keys are exactly 1..n (n >= 1), as an object when all keys are
 *   strings, and as "{}" when empty.
 *   json.array([t])  marks t (a new empty table when t is nil) and returns
 *                    it; raises if t has some other metatable.
 *   json.object(t)   removes the marker and returns t (keys 1..n still
 *                    make an array; an emptied table makes "{}").
 *   json.empty_array a marked empty table to use as a constant; it refuses
 *                    assignments (best effort: rawset and table.insert get
 *                    around that, so never modify it). json.object() on it
 *                    raises.
 *   json.is_array(v) true when v is a table that encode writes as an array
 *                    (marked, or unmarked with keys exactly 1..n, n >= 1).
 *
 * Numbers
 *   JSON integers within +-2^53 decode to Lua numbers. Integers beyond that
 *   (up to the int64 range) decode to an int64 box: a userdata that encodes
 *   back digit for digit, with tostring(), and ==, <, <= against other
 *   boxes (Lua 5.1 rules: comparing a box with a number raises, and
 *   box == number is always false). json.int64(v) makes a box from a
 *   decimal string ("-?[0-9]+"), an integral number, or a box; it returns
 *   nil, message for anything else or out of range, like tonumber().
 *   Lua numbers that are integral and within +-2^53 encode without a
 *   fraction ("3", not "3.0"); so "3.0" comes back as "3". Other numbers
 *   encode as reals with 15, 16 or 17 significant digits: the fewest that
 *   reproduce every real in the document exactly, so 0.1 stays "0.1"
 *   unless the same document has a real that needs 17 digits. -0.0 stays
 *   "-0.0".
 *
 * Nesting deeper than 128 arrays/objects is an error both ways.
 *
 * Threads: no global mutable state; each lua_State has its own registry
 * entries, so one module per worker's Lua state is fine.
 */
#ifndef SLUICE_LUA_JSON_H
#define SLUICE_LUA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <lua.h>

#define SL_LUA_JSON_MAX_DEPTH 128

/* Pushes the module table { encode, decode, null, array, object,
 * empty_array, is_array, int64 }; returns 1. Usable as a lua_CFunction, e.g.
 * in package.preload["sluice.json"]. Tables it creates live in the
 * registry, so calling it again in the same state shares them. */
int sl_lua_json_open(lua_State *L);

/* Pushes j converted to Lua (arrays marked, null -> json.null, big integers
 * boxed) and returns 1. Returns 0 with the stack unchanged when j nests
 * deeper than SL_LUA_JSON_MAX_DEPTH or the Lua stack cannot grow. The
 * caller keeps its reference to j. Raises only when Lua runs out of
 * memory, so a caller holding j in a local should anchor it or accept the
 * leak in that case. */
int sl_lua_push_json(lua_State *L, const json_t *j);

/* Converts the Lua value at idx to a new jansson value (reference owned by
 * the caller). On failure returns NULL and writes a message to err (when
 * err is non-NULL and errlen > 0; truncated to fit). Leaves the Lua stack
 * as it found it and does not raise. */
json_t *sl_lua_to_json(lua_State *L, int idx, char *err, size_t errlen);

/* Serialises j exactly as json.encode does (sorted keys, shortest exact
 * reals, compact or 2-space indent). Returns a malloc'd string to free(),
 * or NULL on allocation failure. */
char *sl_lua_json_dumps(const json_t *j, bool pretty);

#endif
