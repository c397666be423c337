/* Unit tests for plugin config schemas (core/plugin_schema.c).
 *
 * Schemas, configs and expected results are written with ' for " so they
 * stay readable; q() turns them back into JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "plugin_schema.h"

/* ------------------------------------------------------------- helpers */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        perror("strdup");
        exit(2);
    }
    return d;
}

/* A copy of text with every ' turned into ". */
static char *q(const char *text)
{
    char *s = xstrdup(text);
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    return s;
}

static json_t *load(const char *text)
{
    char *json = q(text);
    json_error_t je;
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v) {
        fprintf(stderr, "test fixture is not JSON: %s: %s\n", json, je.text);
        exit(2);
    }
    free(json);
    return v;
}

static char *dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        exit(2);
    return s;
}

static char *join_errors(const sl_errors_t *errs)
{
    size_t len = 1;
    for (int i = 0; i < errs->n; i++)
        len += strlen(errs->items[i]) + 1;
    char *out = calloc(len, 1);
    if (!out)
        exit(2);
    for (int i = 0; i < errs->n; i++) {
        if (i)
            strcat(out, "\n");
        strcat(out, errs->items[i]);
    }
    return out;
}

/* The compact JSON result of applying schema to conf (NULL = no config), or
 * the errors one per line. Also checks that conf came through untouched. */
static char *apply_where(const char *schema_text, const char *conf_text, const char *where)
{
    json_t *schema = schema_text ? load(schema_text) : NULL;
    json_t *conf = conf_text ? load(conf_text) : NULL;
    char *before = conf ? dump(conf) : NULL;
    sl_errors_t errs = {0};
    json_t *out = sl_schema_apply(schema, conf, where, &errs);
    char *result;
    if (out) {
        CHECK_INT(0, errs.n);
        result = dump(out);
    } else {
        result = join_errors(&errs);
    }
    if (conf) {
        char *after = dump(conf);
        CHECK_STR(before, after);
        free(after);
    }
    free(before);
    json_decref(out);
    json_decref(conf);
    json_decref(schema);
    sl_errors_free(&errs);
    return result;
}

static char *apply(const char *schema_text, const char *conf_text)
{
    return apply_where(schema_text, conf_text, "w");
}

#define CHECK_APPLY(expected, schema, conf)                                                \
    do {                                                                                   \
        char *want_ = q(expected), *got_ = apply((schema), (conf));                        \
        CHECK_STR(want_, got_);                                                            \
        free(want_);                                                                       \
        free(got_);                                                                        \
    } while (0)

/* "ok" or the check's message. */
static char *check(const char *schema_text)
{
    json_t *schema = load(schema_text);
    char err[512] = "untouched";
    int rc = sl_schema_check(schema, err, sizeof err);
    json_decref(schema);
    if (rc == 0)
        return xstrdup(err[0] == '\0' ? "ok" : "rc 0 but err set");
    return xstrdup(rc == -1 ? err : "bad rc");
}

#define CHECK_SCHEMA(expected, schema)                                                     \
    do {                                                                                   \
        char *want_ = q(expected), *got_ = check(schema);                                  \
        CHECK_STR(want_, got_);                                                            \
        free(want_);                                                                       \
        free(got_);                                                                        \
    } while (0)

/* ------------------------------------------------------------- types */

static void test_string(void)
{
    const char *s = "{'fields': {'a': {'type': 'string'}}}";
    CHECK_APPLY("{'a':'x'}", s, "{'a': 'x'}");
    CHECK_APPLY("{'a':''}", s, "{'a': ''}");
    CHECK_APPLY("w.a: expected string, got integer", s, "{'a': 1}");
    CHECK_APPLY("w.a: expected string, got number", s, "{'a': 1.5}");
    CHECK_APPLY("w.a: expected string, got boolean", s, "{'a': true}");
    CHECK_APPLY("w.a: expected string, got array", s, "{'a': ['x']}");
    CHECK_APPLY("w.a: expected string, got object", s, "{'a': {}}");
    CHECK_APPLY("w.a: must not contain NUL characters", s, "{'a': 'x\\u0000y'}");
}

static void test_integer(void)
{
    const char *s = "{'fields': {'a': {'type': 'integer'}}}";
    CHECK_APPLY("{'a':5}", s, "{'a': 5}");
    CHECK_APPLY("{'a':-7}", s, "{'a': -7}");
    CHECK_APPLY("{'a':2}", s, "{'a': 2.0}");
    CHECK_APPLY("{'a':9223372036854775807}", s, "{'a': 9223372036854775807}");
    CHECK_APPLY("w.a: expected integer, got number", s, "{'a': 1.5}");
    CHECK_APPLY("w.a: expected integer, got number", s, "{'a': 1e300}");
    CHECK_APPLY("w.a: expected integer, got string", s, "{'a': '5'}");
    CHECK_APPLY("w.a: expected integer, got boolean", s, "{'a': false}");
}

static void test_number(void)
{
    const char *s = "{'fields': {'a': {'type': 'number'}}}";
    CHECK_APPLY("{'a':1.5}", s, "{'a': 1.5}");
    CHECK_APPLY("{'a':2}", s, "{'a': 2}");
    CHECK_APPLY("{'a':-0.25}", s, "{'a': -0.25}");
    CHECK_APPLY("w.a: expected number, got string", s, "{'a': '1.5'}");
    CHECK_APPLY("w.a: expected number, got array", s, "{'a': []}");
}

static void test_boolean(void)
{
    const char *s = "{'fields': {'a': {'type': 'boolean'}}}";
    CHECK_APPLY("{'a':true}", s, "{'a': true}");
    CHECK_APPLY("{'a':false}", s, "{'a': false}");
    CHECK_APPLY("w.a: expected boolean, got string", s, "{'a': 'true'}");
    CHECK_APPLY("w.a: expected boolean, got integer", s, "{'a': 1}");
}

static void test_array_object_any(void)
{
    const char *arr = "{'fields': {'a': {'type': 'array'}}}";
    CHECK_APPLY("{'a':[1,'x',null,{'k':[]}]}", arr, "{'a': [1, 'x', null, {'k': []}]}");
    CHECK_APPLY("{'a':[]}", arr, "{'a': []}");
    CHECK_APPLY("w.a: expected array, got object", arr, "{'a': {}}");
    CHECK_APPLY("w.a: expected array, got string", arr, "{'a': 'x'}");

    const char *obj = "{'fields': {'a': {'type': 'object'}}}";
    CHECK_APPLY("{'a':{'x':1,'y':{'z':null}}}", obj, "{'a': {'x': 1, 'y': {'z': null}}}");
    CHECK_APPLY("w.a: expected object, got array", obj, "{'a': []}");
    CHECK_APPLY("w.a: expected object, got integer", obj, "{'a': 3}");

    const char *any = "{'fields': {'a': {'type': 'any'}}}";
    CHECK_APPLY("{'a':'s'}", any, "{'a': 's'}");
    CHECK_APPLY("{'a':1.5}", any, "{'a': 1.5}");
    CHECK_APPLY("{'a':false}", any, "{'a': false}");
    CHECK_APPLY("{'a':[1,{'b':null}]}", any, "{'a': [1, {'b': null}]}");
    CHECK_APPLY("{'a':{}}", any, "{'a': {}}");
}

static void test_duration(void)
{
    const char *s = "{'fields': {'a': {'type': 'duration'}}}";
    CHECK_APPLY("{'a':250}", s, "{'a': '250ms'}");
    CHECK_APPLY("{'a':5000}", s, "{'a': '5s'}");
    CHECK_APPLY("{'a':1500}", s, "{'a': '1.5s'}");
    CHECK_APPLY("{'a':120000}", s, "{'a': '2m'}");
    CHECK_APPLY("{'a':3600000}", s, "{'a': '1h'}");
    CHECK_APPLY("{'a':300}", s, "{'a': '300'}");
    CHECK_APPLY("{'a':300}", s, "{'a': 300}");
    CHECK_APPLY("{'a':0}", s, "{'a': 0}");
    CHECK_APPLY("{'a':2}", s, "{'a': 2.0}");
    CHECK_APPLY("w.a: invalid duration '5 s'", s, "{'a': '5 s'}");
    CHECK_APPLY("w.a: invalid duration ''", s, "{'a': ''}");
    CHECK_APPLY("w.a: invalid duration '-5s'", s, "{'a': '-5s'}");
    CHECK_APPLY("w.a: invalid duration '1.5ms'", s, "{'a': '1.5ms'}");
    CHECK_APPLY("w.a: invalid duration -5", s, "{'a': -5}");
    CHECK_APPLY("w.a: invalid duration 1.5", s, "{'a': 1.5}");
    CHECK_APPLY("w.a: invalid duration '5s'", s, "{'a': '5s\\u0000x'}");
    CHECK_APPLY("w.a: expected duration, got boolean", s, "{'a': true}");
    CHECK_APPLY("w.a: expected duration, got object", s, "{'a': {}}");
}

static void test_size(void)
{
    const char *s = "{'fields': {'a': {'type': 'size'}}}";
    CHECK_APPLY("{'a':8388608}", s, "{'a': '8mb'}");
    CHECK_APPLY("{'a':16384}", s, "{'a': '16kb'}");
    CHECK_APPLY("{'a':1073741824}", s, "{'a': '1gb'}");
    CHECK_APPLY("{'a':512}", s, "{'a': '512'}");
    CHECK_APPLY("{'a':100}", s, "{'a': 100}");
    CHECK_APPLY("w.a: invalid size '8 mb'", s, "{'a': '8 mb'}");
    CHECK_APPLY("w.a: invalid size '1tb'", s, "{'a': '1tb'}");
    CHECK_APPLY("w.a: invalid size -1", s, "{'a': -1}");
    CHECK_APPLY("w.a: invalid size 0.5", s, "{'a': 0.5}");
    CHECK_APPLY("w.a: expected size, got array", s, "{'a': []}");
}

/* ------------------------------------------------------------- keys */

static void test_required(void)
{
    const char *s = "{'fields': {'a': {'type': 'string', 'required': true},"
                    " 'b': {'type': 'string', 'required': false}}}";
    CHECK_APPLY("{'a':'x'}", s, "{'a': 'x'}");
    CHECK_APPLY("{'a':'x','b':'y'}", s, "{'a': 'x', 'b': 'y'}");
    CHECK_APPLY("w.a: missing required field", s, "{}");
    CHECK_APPLY("w.a: missing required field", s, NULL);
    CHECK_APPLY("w.a: missing required field", s, "{'a': null}");
    /* A wrong value is reported as wrong, not also as missing. */
    CHECK_APPLY("w.a: expected string, got integer", s, "{'a': 1}");
}

static void test_defaults(void)
{
    const char *s = "{'fields': {'limit': {'type': 'integer', 'min': 1, 'default': 10},"
                    " 'window': {'type': 'duration', 'default': '1s'},"
                    " 'name': {'type': 'string'}}}";
    CHECK_APPLY("{'limit':10,'window':1000}", s, NULL);
    CHECK_APPLY("{'limit':10,'window':1000}", s, "{}");
    CHECK_APPLY("{'limit':3,'window':1000}", s, "{'limit': 3}");
    CHECK_APPLY("{'window':20,'limit':10}", s, "{'window': 20}");
    CHECK_APPLY("{'name':'n','limit':10,'window':1000}", s, "{'name': 'n'}");
    /* null means not set, so the default applies; a null without a default is dropped */
    CHECK_APPLY("{'limit':10,'window':1000}", s, "{'limit': null, 'name': null}");
}

/* The rule: an absent object gets its nested defaults only when it has a
 * default itself; a given object always gets them. */
static void test_nested_defaults(void)
{
    const char *s = "{'fields': {"
                    " 'plain': {'type': 'object', 'fields': {'x': {'type': 'integer', 'default': 1}}},"
                    " 'dflt': {'type': 'object', 'default': {},"
                    "          'fields': {'y': {'type': 'size', 'default': '1kb'},"
                    "                     'z': {'type': 'string'}}},"
                    " 'partial': {'type': 'object', 'default': {'z': 'given'},"
                    "             'fields': {'y': {'type': 'integer', 'default': 2},"
                    "                        'z': {'type': 'string'}}}}}";
    CHECK_APPLY("{'dflt':{'y':1024},'partial':{'z':'given','y':2}}", s, "{}");
    CHECK_APPLY("{'plain':{'x':1},'dflt':{'y':1024},'partial':{'z':'given','y':2}}", s, "{'plain': {}}");
    CHECK_APPLY("{'plain':{'x':5},'dflt':{'z':'q','y':1024},'partial':{'z':'given','y':2}}", s,
                "{'plain': {'x': 5}, 'dflt': {'z': 'q'}}");
    /* a given object replaces the default object, and gets the field defaults */
    CHECK_APPLY("{'partial':{'y':7},'dflt':{'y':1024}}", s, "{'partial': {'y': 7}}");

    const char *req = "{'fields': {'o': {'type': 'object', 'required': true,"
                      " 'fields': {'x': {'type': 'integer', 'default': 1}}}}}";
    CHECK_APPLY("w.o: missing required field", req, "{}");
    CHECK_APPLY("{'o':{'x':1}}", req, "{'o': {}}");

    /* objects inside arrays get their defaults, one by one */
    const char *arr = "{'fields': {'limits': {'type': 'array', 'items': {'type': 'object',"
                      " 'fields': {'count': {'type': 'integer', 'required': true},"
                      "            'window': {'type': 'string', 'enum': ['second', 'minute'], 'default': 'second'}}}}}}";
    CHECK_APPLY("{'limits':[{'count':1,'window':'second'},{'count':2,'window':'minute'}]}", arr,
                "{'limits': [{'count': 1}, {'count': 2, 'window': 'minute'}]}");
    /* and an array default is itself converted */
    const char *ad = "{'fields': {'t': {'type': 'array', 'items': {'type': 'duration'}, 'default': ['1s', 20]}}}";
    CHECK_APPLY("{'t':[1000,20]}", ad, "{}");
}

static void test_enum(void)
{
    const char *s = "{'fields': {'a': {'type': 'string', 'enum': ['second', 'minute']}}}";
    CHECK_APPLY("{'a':'minute'}", s, "{'a': 'minute'}");
    CHECK_APPLY("w.a: must be one of 'second', 'minute'", s, "{'a': 'hour'}");
    CHECK_APPLY("w.a: expected string, got integer", s, "{'a': 1}");

    const char *num = "{'fields': {'a': {'type': 'number', 'enum': [1, 2.5]}}}";
    CHECK_APPLY("{'a':1.0}", num, "{'a': 1.0}");
    CHECK_APPLY("{'a':2.5}", num, "{'a': 2.5}");
    CHECK_APPLY("w.a: must be one of 1, 2.5", num, "{'a': 3}");

    const char *dur = "{'fields': {'a': {'type': 'duration', 'enum': ['1s', 5000]}}}";
    CHECK_APPLY("{'a':1000}", dur, "{'a': 1000}");
    CHECK_APPLY("{'a':5000}", dur, "{'a': '5s'}");
    CHECK_APPLY("w.a: must be one of '1s', 5000", dur, "{'a': '2s'}");

    const char *quoted = "{'fields': {'a': {'type': 'string', 'enum': ['say \\'hi\\'']}}}";
    CHECK_APPLY("w.a: must be one of 'say \\'hi\\''", quoted, "{'a': 'x'}");

    const char *arr = "{'fields': {'a': {'type': 'array', 'enum': [[1, 2], []]}}}";
    CHECK_APPLY("{'a':[]}", arr, "{'a': []}");
    CHECK_APPLY("w.a: must be one of [1,2], []", arr, "{'a': [2, 1]}");

    const char *b = "{'fields': {'a': {'type': 'boolean', 'enum': [true]}}}";
    CHECK_APPLY("w.a: must be one of true", b, "{'a': false}");
}

static void test_bounds(void)
{
    const char *i = "{'fields': {'a': {'type': 'integer', 'min': 1, 'max': 10}}}";
    CHECK_APPLY("{'a':1}", i, "{'a': 1}");
    CHECK_APPLY("{'a':10}", i, "{'a': 10}");
    CHECK_APPLY("w.a: must be >= 1", i, "{'a': 0}");
    CHECK_APPLY("w.a: must be <= 10", i, "{'a': 11}");

    const char *n = "{'fields': {'a': {'type': 'number', 'min': 0.75, 'max': 2}}}";
    CHECK_APPLY("{'a':0.75}", n, "{'a': 0.75}");
    CHECK_APPLY("{'a':2}", n, "{'a': 2}");
    CHECK_APPLY("w.a: must be >= 0.75", n, "{'a': 0.5}");
    CHECK_APPLY("w.a: must be <= 2", n, "{'a': 2.0001}");

    const char *s = "{'fields': {'a': {'type': 'string', 'min': 3, 'max': 10}}}";
    CHECK_APPLY("{'a':'abc'}", s, "{'a': 'abc'}");
    CHECK_APPLY("w.a: must be at least 3 characters", s, "{'a': 'ab'}");
    CHECK_APPLY("w.a: must be at most 10 characters", s, "{'a': 'abcdefghijk'}");
    /* characters, not bytes: ten two-byte letters fit */
    CHECK_APPLY("{'a':'\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9'}", s,
                "{'a': '\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9'}");
    const char *one = "{'fields': {'a': {'type': 'string', 'min': 1, 'max': 1}}}";
    CHECK_APPLY("w.a: must be at least 1 character", one, "{'a': ''}");
    CHECK_APPLY("w.a: must be at most 1 character", one, "{'a': 'ab'}");

    const char *a = "{'fields': {'a': {'type': 'array', 'min': 1, 'max': 2}}}";
    CHECK_APPLY("{'a':[1,2]}", a, "{'a': [1, 2]}");
    CHECK_APPLY("w.a: must have at least 1 item", a, "{'a': []}");
    CHECK_APPLY("w.a: must have at most 2 items", a, "{'a': [1, 2, 3]}");

    const char *d = "{'fields': {'a': {'type': 'duration', 'min': '1s', 'max': 60000}}}";
    CHECK_APPLY("{'a':1000}", d, "{'a': '1s'}");
    CHECK_APPLY("{'a':60000}", d, "{'a': '1m'}");
    CHECK_APPLY("w.a: must be >= 1s", d, "{'a': '500ms'}");
    CHECK_APPLY("w.a: must be <= 60000ms", d, "{'a': '2m'}");

    const char *z = "{'fields': {'a': {'type': 'size', 'min': 1, 'max': '1kb'}}}";
    CHECK_APPLY("{'a':1024}", z, "{'a': '1kb'}");
    CHECK_APPLY("w.a: must be <= 1kb", z, "{'a': '2kb'}");
    CHECK_APPLY("w.a: must be >= 1", z, "{'a': 0}");
}

static void test_pattern(void)
{
    const char *s = "{'fields': {'a': {'type': 'string', 'pattern': '^x-'}}}";
    CHECK_APPLY("{'a':'x-foo'}", s, "{'a': 'x-foo'}");
    CHECK_APPLY("w.a: must match ^x-", s, "{'a': 'foo'}");
    CHECK_APPLY("w.a: must match ^x-", s, "{'a': 'a-x-b'}");
    /* searched, not anchored, unless the pattern anchors itself */
    const char *u = "{'fields': {'a': {'type': 'string', 'pattern': 'x-'}}}";
    CHECK_APPLY("{'a':'a-x-b'}", u, "{'a': 'a-x-b'}");
    const char *ere = "{'fields': {'a': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[a-z]+(-[a-z]+)*$'}}}}";
    CHECK_APPLY("{'a':['rate-limit','cors']}", ere, "{'a': ['rate-limit', 'cors']}");
    CHECK_APPLY("w.a[1]: must match ^[a-z]+(-[a-z]+)*$", ere, "{'a': ['ok', 'Bad-', 'x']}");
}

static void test_items(void)
{
    const char *s = "{'fields': {'list': {'type': 'array', 'items': {'type': 'string'}}}}";
    CHECK_APPLY("{'list':['a','b']}", s, "{'list': ['a', 'b']}");
    CHECK_APPLY("w.list[1]: expected string, got integer\nw.list[2]: expected string, got null", s,
                "{'list': ['a', 1, null]}");
    const char *nested = "{'fields': {'m': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'size'}}}}}";
    CHECK_APPLY("{'m':[[1024],[]]}", nested, "{'m': [['1kb'], []]}");
    CHECK_APPLY("w.m[0][1]: invalid size 'big'", nested, "{'m': [['1kb', 'big']]}");
}

static void test_fields(void)
{
    const char *s = "{'fields': {'nested': {'type': 'object', 'fields': {"
                    " 'a': {'type': 'integer', 'required': true}, 'b': {'type': 'boolean'}}}}}";
    CHECK_APPLY("{'nested':{'a':1,'b':true}}", s, "{'nested': {'a': 1, 'b': true}}");
    CHECK_APPLY("w.nested.c: unknown field\nw.nested.a: missing required field", s, "{'nested': {'c': 1}}");
    CHECK_APPLY("w.other: unknown field", s, "{'other': 1}");
    CHECK_APPLY("w.nested: expected object, got array", s, "{'nested': []}");
}

static void test_values(void)
{
    const char *s = "{'fields': {'headers': {'type': 'object', 'values': {'type': 'string', 'max': 3}}}}";
    CHECK_APPLY("{'headers':{'X-Foo':'a','X-Bar':'b'}}", s, "{'headers': {'X-Foo': 'a', 'X-Bar': 'b'}}");
    CHECK_APPLY("{'headers':{}}", s, "{'headers': {}}");
    CHECK_APPLY("w.headers.X-Foo: expected string, got integer\nw.headers.X-Bar: must be at most 3 characters", s,
                "{'headers': {'X-Foo': 1, 'X-Bar': 'long'}}");
    CHECK_APPLY("w.headers.X-Foo: expected string, got null", s, "{'headers': {'X-Foo': null}}");

    /* named fields take their own rules; every other key the values rule */
    const char *both = "{'fields': {'m': {'type': 'object', 'fields': {'default': {'type': 'integer', 'default': 1}},"
                       " 'values': {'type': 'duration'}}}}";
    CHECK_APPLY("{'m':{'a':1000,'default':1}}", both, "{'m': {'a': '1s'}}");
    CHECK_APPLY("w.m.default: expected integer, got string", both, "{'m': {'default': '1s'}}");

    /* JSON text cannot carry a NUL in a key, but a json_t built in code can */
    json_t *schema = load("{'fields': {'m': {'type': 'object', 'values': {'type': 'any'}},"
                          " 'f': {'type': 'object', 'fields': {'a': {'type': 'any'}}}}}");
    json_t *conf = load("{'m': {}, 'f': {}}");
    json_object_setn_new(json_object_get(conf, "m"), "a\0b", 3, json_integer(1));
    json_object_setn_new(json_object_get(conf, "f"), "a\0b", 3, json_integer(1));
    sl_errors_t errs = {0};
    CHECK_INT(1, sl_schema_apply(schema, conf, "w", &errs) == NULL);
    CHECK_INT(2, errs.n);
    CHECK_STR("w.m.a: must not contain NUL characters", errs.n > 0 ? errs.items[0] : NULL);
    CHECK_STR("w.f.a: unknown field", errs.n > 1 ? errs.items[1] : NULL);
    sl_errors_free(&errs);
    json_decref(conf);
    json_decref(schema);
}

static void test_one_of_required(void)
{
    const char *top = "{'fields': {'key': {'type': 'string'}, 'token': {'type': 'string'},"
                      " 'realm': {'type': 'string', 'default': 'r'}}, 'one_of_required': ['key', 'token']}";
    CHECK_APPLY("{'key':'k','realm':'r'}", top, "{'key': 'k'}");
    CHECK_APPLY("{'token':'t','realm':'r'}", top, "{'token': 't'}");
    CHECK_APPLY("w: must set at least one of 'key', 'token'", top, "{}");
    CHECK_APPLY("w: must set at least one of 'key', 'token'", top, "{'key': null, 'realm': 'x'}");
    /* a default does not count as set */
    const char *dflt = "{'fields': {'key': {'type': 'string', 'default': 'k'}}, 'one_of_required': ['key']}";
    CHECK_APPLY("w: must set at least one of 'key'", dflt, "{}");

    const char *nested = "{'fields': {'auth': {'type': 'object', 'one_of_required': ['user', 'group'],"
                         " 'fields': {'user': {'type': 'string'}, 'group': {'type': 'string'}}}}}";
    CHECK_APPLY("{'auth':{'group':'g'}}", nested, "{'auth': {'group': 'g'}}");
    CHECK_APPLY("w.auth: must set at least one of 'user', 'group'", nested, "{'auth': {}}");
    CHECK_APPLY("{}", nested, "{}");
}

static void test_description_ignored(void)
{
    const char *s = "{'description': 'top', 'fields': {'a': {'type': 'integer', 'description': 'the a',"
                    " 'default': 1}, 'b': {'type': 'string', 'description': {'anything': [1]}}}}";
    CHECK_SCHEMA("ok", s);
    CHECK_APPLY("{'a':1}", s, "{}");
}

/* ------------------------------------------------------------- errors, whole configs */

static void test_multiple_errors(void)
{
    const char *s = "{'fields': {"
                    " 'header': {'type': 'string', 'required': true, 'pattern': '^x-'},"
                    " 'limit': {'type': 'integer', 'min': 1},"
                    " 'mode': {'type': 'string', 'enum': ['a', 'b']},"
                    " 'names': {'type': 'array', 'items': {'type': 'string'}},"
                    " 'ttl': {'type': 'duration'}}}";
    CHECK_APPLY("w.limit: must be >= 1\n"
                "w.mode: must be one of 'a', 'b'\n"
                "w.names[0]: expected string, got integer\n"
                "w.names[2]: expected string, got boolean\n"
                "w.extra: unknown field\n"
                "w.ttl: invalid duration '5 s'\n"
                "w.header: missing required field",
                s, "{'limit': 0, 'mode': 'c', 'names': [1, 'ok', true], 'extra': 1, 'ttl': '5 s'}");
    /* a value breaking several rules gets one line per rule */
    const char *two = "{'fields': {'a': {'type': 'string', 'max': 2, 'pattern': '^x', 'enum': ['xy', 'zzz']}}}";
    CHECK_APPLY("w.a: must be at most 2 characters\nw.a: must match ^x", two, "{'a': 'zzz'}");
    CHECK_APPLY("w.a: must be one of 'xy', 'zzz'\nw.a: must be at most 2 characters\nw.a: must match ^x", two,
                "{'a': 'abc'}");
}

static void test_where(void)
{
    const char *s = "{'fields': {'limits': {'type': 'array', 'items': {'type': 'object', 'fields':"
                    " {'window': {'type': 'string', 'enum': ['second', 'minute']}}}}}}";
    char *got = apply_where(s, "{'limits': [{'window': 'hour'}]}", "conf.yaml:12: routes[0].plugins[1] (rate-limit)");
    CHECK_STR("conf.yaml:12: routes[0].plugins[1] (rate-limit).limits[0].window: must be one of \"second\", \"minute\"",
              got);
    free(got);
    got = apply_where(s, "{'x': 1}", NULL);
    CHECK_STR("x: unknown field", got);
    free(got);
    got = apply_where(s, "{'x': 1}", "");
    CHECK_STR("x: unknown field", got);
    free(got);
    got = apply_where(s, "[]", NULL);
    CHECK_STR("expected object, got array", got);
    free(got);
}

static void test_bad_conf_and_schema(void)
{
    const char *s = "{'fields': {'a': {'type': 'integer', 'default': 1}}}";
    CHECK_APPLY("w: expected object, got array", s, "[]");
    CHECK_APPLY("w: expected object, got string", s, "'a'");
    CHECK_APPLY("w: expected object, got null", s, "null");
    CHECK_APPLY("w: invalid schema: fields.a.type: unknown type 'int'", "{'fields': {'a': {'type': 'int'}}}", "{}");
    CHECK_APPLY("w: invalid schema: expected object, got array", "[]", "{}");

    /* no schema: the plugin takes no config */
    CHECK_APPLY("{}", NULL, NULL);
    CHECK_APPLY("{}", NULL, "{}");
    CHECK_APPLY("w.a: unknown field", NULL, "{'a': 1}");
    /* an empty schema is the same */
    CHECK_APPLY("{}", "{}", "{}");
    CHECK_APPLY("w.a: unknown field", "{'fields': {}}", "{'a': 1}");

    /* no error list: only the verdict */
    json_t *schema = load(s), *conf = load("{'a': 'x'}");
    CHECK_INT(1, sl_schema_apply(schema, conf, "w", NULL) == NULL);
    json_decref(conf);
    conf = load("{}");
    json_t *out = sl_schema_apply(schema, conf, "w", NULL);
    CHECK_INT(1, json_integer_value(json_object_get(out, "a")));
    json_decref(out);
    json_decref(conf);
    json_decref(schema);
}

/* The result shares nothing with the config or the schema's defaults. */
static void test_result_is_independent(void)
{
    json_t *schema = load("{'fields': {'o': {'type': 'object'}, 'd': {'type': 'array', 'default': [1]},"
                          " 's': {'type': 'string'}}}");
    json_t *conf = load("{'o': {'k': 'v'}, 's': 'text'}");
    json_t *out = sl_schema_apply(schema, conf, "w", NULL);
    json_object_set_new(json_object_get(out, "o"), "k", json_string("changed"));
    json_array_append_new(json_object_get(out, "d"), json_integer(2));
    json_string_set(json_object_get(out, "s"), "changed");
    char *c = dump(conf), *sc = dump(schema);
    CHECK_STR("{\"o\":{\"k\":\"v\"},\"s\":\"text\"}", c);
    CHECK_STR("{\"fields\":{\"o\":{\"type\":\"object\"},\"d\":{\"type\":\"array\",\"default\":[1]},"
              "\"s\":{\"type\":\"string\"}}}", sc);
    free(c);
    free(sc);
    json_decref(out);
    json_decref(conf);
    json_decref(schema);
}

/* ------------------------------------------------------------- schema check */

static void test_check_shapes(void)
{
    CHECK_SCHEMA("ok", "{}");
    CHECK_SCHEMA("ok", "{'fields': {}}");
    CHECK_SCHEMA("ok", "{'fields': {'header': {'type': 'string', 'required': true},"
                       " 'limit': {'type': 'integer', 'min': 1, 'default': 10},"
                       " 'mode': {'type': 'string', 'enum': ['a', 'b']},"
                       " 'names': {'type': 'array', 'items': {'type': 'string'}},"
                       " 'nested': {'type': 'object', 'fields': {'x': {'type': 'any'}}},"
                       " 'pattern_field': {'type': 'string', 'pattern': '^x-'}}}");
    CHECK_SCHEMA("expected object, got array", "[]");
    CHECK_SCHEMA("expected object, got string", "'x'");
    CHECK_SCHEMA("field: unknown key", "{'field': {}}");
    CHECK_SCHEMA("type: unknown key", "{'type': 'object', 'fields': {}}");
    CHECK_SCHEMA("fields: expected object, got array", "{'fields': []}");
    CHECK_SCHEMA("fields.a: expected object, got string", "{'fields': {'a': 'string'}}");
    CHECK_SCHEMA("fields.a: missing 'type'", "{'fields': {'a': {'required': true}}}");
    CHECK_SCHEMA("fields.a.type: expected string, got integer", "{'fields': {'a': {'type': 1}}}");
    CHECK_SCHEMA("fields.limit.type: unknown type 'int'", "{'fields': {'limit': {'type': 'int'}}}");
    CHECK_SCHEMA("fields.a.minimum: unknown key", "{'fields': {'a': {'type': 'integer', 'minimum': 1}}}");
    CHECK_SCHEMA("fields.a.required: expected boolean, got string",
                 "{'fields': {'a': {'type': 'integer', 'required': 'yes'}}}");

    /* null pointer and small or missing buffers */
    char err[8] = "x";
    CHECK_INT(-1, sl_schema_check(NULL, err, sizeof err));
    CHECK_STR("no sche", err);
    json_t *bad = load("{'fields': []}");
    CHECK_INT(-1, sl_schema_check(bad, NULL, 0));
    CHECK_INT(-1, sl_schema_check(bad, err, 0));
    CHECK_STR("no sche", err);
    json_decref(bad);
}

static void test_check_keys_per_type(void)
{
    CHECK_SCHEMA("fields.a.pattern: not allowed for type integer", "{'fields': {'a': {'type': 'integer', 'pattern': 'x'}}}");
    CHECK_SCHEMA("fields.a.min: not allowed for type boolean", "{'fields': {'a': {'type': 'boolean', 'min': 1}}}");
    CHECK_SCHEMA("fields.a.max: not allowed for type object", "{'fields': {'a': {'type': 'object', 'max': 1}}}");
    CHECK_SCHEMA("fields.a.min: not allowed for type any", "{'fields': {'a': {'type': 'any', 'min': 1}}}");
    CHECK_SCHEMA("fields.a.items: not allowed for type string", "{'fields': {'a': {'type': 'string', 'items': {}}}}");
    CHECK_SCHEMA("fields.a.fields: not allowed for type array", "{'fields': {'a': {'type': 'array', 'fields': {}}}}");
    CHECK_SCHEMA("fields.a.values: not allowed for type any", "{'fields': {'a': {'type': 'any', 'values': {}}}}");
    CHECK_SCHEMA("fields.a.one_of_required: not allowed for type string",
                 "{'fields': {'a': {'type': 'string', 'one_of_required': ['x']}}}");
    CHECK_SCHEMA("fields.a.items.required: only allowed on named fields",
                 "{'fields': {'a': {'type': 'array', 'items': {'type': 'string', 'required': true}}}}");
    CHECK_SCHEMA("fields.h.values.default: only allowed on named fields",
                 "{'fields': {'h': {'type': 'object', 'values': {'type': 'string', 'default': 'x'}}}}");
}

static void test_check_defaults(void)
{
    CHECK_SCHEMA("fields.a.default: not allowed with required",
                 "{'fields': {'a': {'type': 'integer', 'required': true, 'default': 1}}}");
    CHECK_SCHEMA("ok", "{'fields': {'a': {'type': 'integer', 'required': false, 'default': 1}}}");
    CHECK_SCHEMA("fields.a.default: expected integer, got string", "{'fields': {'a': {'type': 'integer', 'default': '1'}}}");
    CHECK_SCHEMA("fields.a.default: must be >= 1", "{'fields': {'a': {'type': 'integer', 'min': 1, 'default': 0}}}");
    CHECK_SCHEMA("fields.a.default: must be one of 'x'", "{'fields': {'a': {'type': 'string', 'enum': ['x'], 'default': 'y'}}}");
    CHECK_SCHEMA("fields.a.default: must not be null", "{'fields': {'a': {'type': 'any', 'default': null}}}");
    CHECK_SCHEMA("fields.t.default: invalid duration '5 s'", "{'fields': {'t': {'type': 'duration', 'default': '5 s'}}}");
    CHECK_SCHEMA("fields.o.default.x: expected string, got integer",
                 "{'fields': {'o': {'type': 'object', 'default': {'x': 1}, 'fields': {'x': {'type': 'string'}}}}}");
    CHECK_SCHEMA("fields.o.default.x: missing required field",
                 "{'fields': {'o': {'type': 'object', 'default': {}, 'fields': {'x': {'type': 'string', 'required': true}}}}}");
    CHECK_SCHEMA("fields.o.default.y: unknown field",
                 "{'fields': {'o': {'type': 'object', 'default': {'y': 1}, 'fields': {'x': {'type': 'string'}}}}}");
    CHECK_SCHEMA("fields.l.default[1]: must match ^a",
                 "{'fields': {'l': {'type': 'array', 'items': {'type': 'string', 'pattern': '^a'}, 'default': ['ab', 'b']}}}");
}

static void test_check_enum_bounds_pattern(void)
{
    CHECK_SCHEMA("fields.a.enum: expected a non-empty array", "{'fields': {'a': {'type': 'string', 'enum': 'a'}}}");
    CHECK_SCHEMA("fields.a.enum: expected a non-empty array", "{'fields': {'a': {'type': 'string', 'enum': []}}}");
    CHECK_SCHEMA("fields.a.enum[1]: expected string, got integer", "{'fields': {'a': {'type': 'string', 'enum': ['a', 1]}}}");
    CHECK_SCHEMA("fields.a.enum[0]: invalid duration 'x'", "{'fields': {'a': {'type': 'duration', 'enum': ['x']}}}");
    CHECK_SCHEMA("fields.a.enum[0]: expected array, got integer", "{'fields': {'a': {'type': 'array', 'enum': [1]}}}");
    CHECK_SCHEMA("ok", "{'fields': {'a': {'type': 'any', 'enum': [1, 'x', null, {}]}}}");

    CHECK_SCHEMA("fields.a.min: expected number, got string", "{'fields': {'a': {'type': 'integer', 'min': '1'}}}");
    CHECK_SCHEMA("fields.a.max: expected number, got boolean", "{'fields': {'a': {'type': 'number', 'max': true}}}");
    CHECK_SCHEMA("fields.a.min: must be a non-negative integer", "{'fields': {'a': {'type': 'string', 'min': -1}}}");
    CHECK_SCHEMA("fields.a.max: must be a non-negative integer", "{'fields': {'a': {'type': 'array', 'max': 1.5}}}");
    CHECK_SCHEMA("ok", "{'fields': {'a': {'type': 'array', 'max': 2.0}}}");
    CHECK_SCHEMA("fields.a.min: invalid duration 'abc'", "{'fields': {'a': {'type': 'duration', 'min': 'abc'}}}");
    CHECK_SCHEMA("fields.a.max: expected size, got boolean", "{'fields': {'a': {'type': 'size', 'max': true}}}");
    CHECK_SCHEMA("fields.a.max: must not be less than min", "{'fields': {'a': {'type': 'integer', 'min': 5, 'max': 4}}}");
    CHECK_SCHEMA("fields.a.max: must not be less than min", "{'fields': {'a': {'type': 'number', 'min': 0.5, 'max': 0.25}}}");
    CHECK_SCHEMA("fields.a.max: must not be less than min", "{'fields': {'a': {'type': 'string', 'min': 3, 'max': 2}}}");
    CHECK_SCHEMA("fields.a.max: must not be less than min", "{'fields': {'a': {'type': 'duration', 'min': '2s', 'max': 1999}}}");
    CHECK_SCHEMA("ok", "{'fields': {'a': {'type': 'size', 'min': '1kb', 'max': 1024}}}");

    CHECK_SCHEMA("fields.a.pattern: expected string, got integer", "{'fields': {'a': {'type': 'string', 'pattern': 1}}}");
    CHECK_SCHEMA("fields.a.pattern: invalid regular expression '(': Unmatched ( or \\(",
                 "{'fields': {'a': {'type': 'string', 'pattern': '('}}}");
    CHECK_SCHEMA("fields.a.items.pattern: invalid regular expression 'a{2,1}': Invalid content of \\{\\}",
                 "{'fields': {'a': {'type': 'array', 'items': {'type': 'string', 'pattern': 'a{2,1}'}}}}");
}

static void test_check_nesting(void)
{
    CHECK_SCHEMA("fields.a.items: expected object, got string", "{'fields': {'a': {'type': 'array', 'items': 'string'}}}");
    CHECK_SCHEMA("fields.a.items.type: unknown type 'strin'", "{'fields': {'a': {'type': 'array', 'items': {'type': 'strin'}}}}");
    CHECK_SCHEMA("fields.o.fields: expected object, got array", "{'fields': {'o': {'type': 'object', 'fields': []}}}");
    CHECK_SCHEMA("fields.o.fields.x.type: unknown type 'list'",
                 "{'fields': {'o': {'type': 'object', 'fields': {'x': {'type': 'list'}}}}}");
    CHECK_SCHEMA("fields.h.values: missing 'type'", "{'fields': {'h': {'type': 'object', 'values': {}}}}");

    /* 31 levels of items below the field are fine, 32 are not */
    char schema[4096] = "{'fields': {'a': ", path[1024] = "fields.a";
    for (int i = 0; i < 32; i++) {
        strcat(schema, "{'type': 'array', 'items': ");
        if (i < 31)
            strcat(path, ".items");
    }
    strcat(schema, "{'type': 'string'}");
    for (int i = 0; i < 32; i++)
        strcat(schema, "}");
    strcat(schema, "}}");
    char want[1100];
    snprintf(want, sizeof want, "%s.items: nested too deeply", path);
    CHECK_SCHEMA(want, schema);
}

static void test_check_one_of_required(void)
{
    CHECK_SCHEMA("ok", "{'fields': {'a': {'type': 'string'}}, 'one_of_required': ['a']}");
    CHECK_SCHEMA("one_of_required: expected a non-empty array of field names",
                 "{'fields': {'a': {'type': 'string'}}, 'one_of_required': 'a'}");
    CHECK_SCHEMA("one_of_required: expected a non-empty array of field names",
                 "{'fields': {'a': {'type': 'string'}}, 'one_of_required': []}");
    CHECK_SCHEMA("one_of_required[0]: expected string, got integer",
                 "{'fields': {'a': {'type': 'string'}}, 'one_of_required': [1]}");
    CHECK_SCHEMA("one_of_required[1]: 'c' is not a field",
                 "{'fields': {'a': {'type': 'string'}}, 'one_of_required': ['a', 'c']}");
    CHECK_SCHEMA("one_of_required[0]: 'a' is not a field", "{'one_of_required': ['a']}");
    CHECK_SCHEMA("fields.o.one_of_required[0]: 'z' is not a field",
                 "{'fields': {'o': {'type': 'object', 'fields': {'y': {'type': 'any'}}, 'one_of_required': ['z']}}}");
}

static void test_parse(void)
{
    char err[256] = "x";
    json_t *s = sl_schema_parse("{\"fields\": {\"a\": {\"type\": \"integer\", \"default\": 3}}}", err, sizeof err);
    CHECK_INT(1, s != NULL);
    CHECK_STR("", err);
    json_t *out = sl_schema_apply(s, NULL, "w", NULL);
    char *text = dump(out);
    CHECK_STR("{\"a\":3}", text);
    free(text);
    json_decref(out);
    json_decref(s);

    CHECK_INT(1, sl_schema_parse("{\"fields\": ", err, sizeof err) == NULL);
    CHECK_STR("line 1 column 11: unexpected token near end of file", err);
    CHECK_INT(1, sl_schema_parse("{\"fields\": {}, \"fields\": {}}", err, sizeof err) == NULL);
    CHECK_STR("line 1 column 23: duplicate object key near '\"fields\"'", err);
    CHECK_INT(1, sl_schema_parse("{\"fields\": {\"a\": {\"type\": \"int\"}}}", err, sizeof err) == NULL);
    CHECK_STR("fields.a.type: unknown type \"int\"", err);
    CHECK_INT(1, sl_schema_parse(NULL, err, sizeof err) == NULL);
    CHECK_STR("no schema", err);
    CHECK_INT(1, sl_schema_parse("[", NULL, 0) == NULL);
}

int main(void)
{
    test_string();
    test_integer();
    test_number();
    test_boolean();
    test_array_object_any();
    test_duration();
    test_size();
    test_required();
    test_defaults();
    test_nested_defaults();
    test_enum();
    test_bounds();
    test_pattern();
    test_items();
    test_fields();
    test_values();
    test_one_of_required();
    test_description_ignored();
    test_multiple_errors();
    test_where();
    test_bad_conf_and_schema();
    test_result_is_independent();
    test_check_shapes();
    test_check_keys_per_type();
    test_check_defaults();
    test_check_enum_bounds_pattern();
    test_check_nesting();
    test_check_one_of_required();
    test_parse();
    return check_summary();
}
