/* Unit tests of ai-prompt-template's parts: placeholder filling, the
 * config check, the simple output and the per-request table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "response_shape.h"
#include "template_conf.h"
#include "template_render.h"

static int passed, failed;

static void check_str(int line, const char *expected, const char *actual)
{
    if (actual && strcmp(expected, actual) == 0) {
        passed++;
        return;
    }
    failed++;
    printf("%s:%d: expected \"%s\"\n    got \"%s\"\n", __FILE__, line, expected, actual ? actual : "(null)");
}

static void check_int(int line, long long expected, long long actual)
{
    if (expected == actual) {
        passed++;
        return;
    }
    failed++;
    printf("%s:%d: expected %lld, got %lld\n", __FILE__, line, expected, actual);
}

#define CHECK_STR(e, a) check_str(__LINE__, (e), (a))
#define CHECK_INT(e, a) check_int(__LINE__, (e), (a))

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v) {
        printf("bad test JSON: %s\n", text);
        exit(2);
    }
    return v;
}

/* "ok:<text>", "missing:<name>", "invalid:<name>" */
static char rendered[1024];
static const char *render(const char *tpl, const char *given, const char *defaults)
{
    json_t *g = parse(given), *d = parse(defaults);
    char *out = NULL, name[TEMPLATE_NAME_MAX + 1] = "";
    size_t len = 0;
    render_status_t rs = template_render(tpl, g, d, &out, &len, name);
    if (rs == RENDER_OK)
        snprintf(rendered, sizeof rendered, "ok:%s%s", out, strlen(out) == len ? "" : " (bad length)");
    else
        snprintf(rendered, sizeof rendered, "%s:%s", rs == RENDER_MISSING ? "missing" : "invalid", name);
    free(out);
    json_decref(g);
    json_decref(d);
    return rendered;
}

static void test_render(void)
{
    CHECK_STR("ok:Describe Acme in 3 words.",
              render("Describe {{product}} in {{ n }} words.", "{\"product\":\"Acme\",\"n\":3}", "{}"));
    CHECK_STR("ok:a, b, 1, 2.5, true", render("{{list}}", "{\"list\":[\"a\",\"b\",1,2.5,true]}", "{}"));
    CHECK_STR("ok:", render("{{empty}}", "{\"empty\":[]}", "{}"));
    CHECK_STR("ok:0.1 -7 false 1e+300", render("{{a}} {{b}} {{c}} {{d}}",
                                               "{\"a\":0.1,\"b\":-7,\"c\":false,\"d\":1e300}", "{}"));
    /* defaults fill what the request leaves out or sets to null */
    CHECK_STR("ok:fr en", render("{{lang}} {{to}}", "{\"to\":null,\"lang\":\"fr\"}", "{\"lang\":\"de\",\"to\":\"en\"}"));
    CHECK_STR("missing:tone", render("{{topic}} {{tone}}", "{\"topic\":\"x\"}", "{\"tone\":null}"));
    CHECK_STR("invalid:obj", render("{{obj}}", "{\"obj\":{\"a\":1}}", "{}"));
    CHECK_STR("invalid:nested", render("{{nested}}", "{\"nested\":[[1]]}", "{}"));
    CHECK_STR("invalid:n", render("{{n}}", "{\"n\":[null]}", "{}"));
    /* values go in literally, never expanded again */
    CHECK_STR("ok:{{b}} and {{b}}", render("{{a}} and {{b}}", "{\"a\":\"{{b}}\",\"b\":\"{{b}}\"}", "{}"));
    /* what is not a placeholder stays text */
    CHECK_STR("ok:{x} {{ }} {{1a}} {{a b}} {{a} {X}", render("{x} {{ }} {{1a}} {{a b}} {{a} {{{x}}}",
                                                            "{\"x\":\"X\"}", "{}"));
    CHECK_STR("ok:", render("", "{}", "{}"));
    CHECK_STR("ok:no placeholders {", render("no placeholders {", "{}", "{}"));
    CHECK_STR("ok:héllo ✓", render("h{{e}}llo {{c}}", "{\"e\":\"é\",\"c\":\"✓\"}", "{}"));
    /* names: letters, digits, underscore; at most 64 characters */
    /* 64 characters */
    CHECK_STR("ok:long", render("{{a123456789012345678901234567890123456789012345678901234567890123}}",
                                "{\"a123456789012345678901234567890123456789012345678901234567890123\":\"long\"}",
                                "{}"));
    /* 65: not a placeholder */
    CHECK_STR("ok:{{a1234567890123456789012345678901234567890123456789012345678901234}}",
              render("{{a1234567890123456789012345678901234567890123456789012345678901234}}", "{}", "{}"));
    CHECK_STR("ok:_x_", render("{{_}}", "{\"_\":\"_x_\"}", "{}"));

    json_t *v = parse("[1, \"a\"]");
    CHECK_INT(1, var_value_fits(v, VAR_ARRAY));
    CHECK_INT(0, var_value_fits(v, VAR_STRING));
    json_decref(v);
    v = parse("2.0");
    CHECK_INT(1, var_value_fits(v, VAR_NUMBER));
    CHECK_INT(0, var_value_fits(v, VAR_INTEGER));
    json_decref(v);
    v = parse("null");
    CHECK_INT(0, var_value_fits(v, VAR_ANY));
    json_decref(v);
    CHECK_INT(VAR_BOOLEAN, var_type_from_name("boolean"));
    CHECK_INT(VAR_ANY, var_type_from_name("object"));
    CHECK_STR("an integer", var_type_expectation(VAR_INTEGER));
}

static char conf_result[1024];
static const char *conf(const char *text)
{
    json_t *c = parse(text);
    char err[512] = "";
    tpl_conf_t *tc = tpl_conf_new(c, err, sizeof err);
    if (tc) {
        int n = snprintf(conf_result, sizeof conf_result, "ok");
        for (size_t i = 0; i < tc->n_served; i++)
            n += snprintf(conf_result + n, sizeof conf_result - (size_t)n, " %s/%s/%u", tc->served[i].name,
                          tc->served[i].model, tc->served[i].weight);
    } else {
        snprintf(conf_result, sizeof conf_result, "%s", err);
    }
    tpl_conf_free(tc);
    json_decref(c);
    return conf_result;
}

#define TEMPLATES                                                                                  \
    "\"templates\":{\"t\":{\"versions\":{\"v1\":{\"user\":\"u1\",\"model\":\"m1\"},"                 \
    "\"v2\":{\"user\":\"u2\",\"system\":\"s\",\"defaults\":{\"xs\":[1,2],\"n\":1}}}}},"              \
    "\"upstream_path\":\"/v1/chat/completions\",\"output\":\"simple\""

static void test_conf(void)
{
    CHECK_STR("ok v1/m1/1", conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v1\"}"));
    CHECK_STR("ok v1/alias/1", conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v1\",\"model\":\"alias\"}"));
    CHECK_STR("ok v2/a/80 v1/a/20", conf("{" TEMPLATES ",\"template\":\"t\",\"model\":\"a\","
                                         "\"split\":[{\"version\":\"v2\",\"weight\":80},{\"version\":\"v1\",\"weight\":20}]}"));
    CHECK_STR("template: no template \"x\" in templates", conf("{" TEMPLATES ",\"template\":\"x\"}"));
    CHECK_STR("version: template \"t\" has no version \"v3\"",
              conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v3\"}"));
    CHECK_STR("version: template \"t\" has 2 versions: set version or split", conf("{" TEMPLATES ",\"template\":\"t\"}"));
    CHECK_STR("set either version or split, not both",
              conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v1\",\"split\":[{\"version\":\"v1\",\"weight\":1}]}"));
    CHECK_STR("split[1].version: template \"t\" has no version \"v9\"",
              conf("{" TEMPLATES ",\"template\":\"t\",\"split\":[{\"version\":\"v1\",\"weight\":1},"
                   "{\"version\":\"v9\",\"weight\":1}]}"));
    CHECK_STR("split[1].version: version \"v1\" is listed twice",
              conf("{" TEMPLATES ",\"template\":\"t\",\"split\":[{\"version\":\"v1\",\"weight\":1},"
                   "{\"version\":\"v1\",\"weight\":1}]}"));
    CHECK_STR("split: the weights add up to 0",
              conf("{" TEMPLATES ",\"template\":\"t\",\"split\":[{\"version\":\"v1\",\"weight\":0}]}"));
    CHECK_STR("templates.t.versions.v2: no model: set model in the version or in the plugin's config",
              conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v2\"}"));
    CHECK_STR("templates.t.versions.v2.defaults.xs: must be a string (declared in variables)",
              conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v2\",\"model\":\"m\","
                   "\"variables\":{\"xs\":{\"type\":\"string\"}}}"));
    CHECK_STR("ok v2/m/1", conf("{" TEMPLATES ",\"template\":\"t\",\"version\":\"v2\",\"model\":\"m\","
                                "\"variables\":{\"xs\":{\"type\":\"array\"},\"n\":{\"type\":\"integer\"}}}"));
    CHECK_STR("templates.one.versions.only.defaults.o: must be a string, number, boolean or array of those",
              conf("{\"templates\":{\"one\":{\"versions\":{\"only\":{\"user\":\"u\",\"model\":\"m\","
                   "\"defaults\":{\"o\":{}}}}}},\"template\":\"one\",\"upstream_path\":\"/x\"}"));
    /* one version: served without naming it */
    CHECK_STR("ok only/m/1", conf("{\"templates\":{\"one\":{\"versions\":{\"only\":{\"user\":\"u\",\"model\":\"m\"}}}},"
                                  "\"template\":\"one\",\"upstream_path\":\"/x\"}"));
    CHECK_STR("version: template \"none\" has 0 versions: set version or split",
              conf("{\"templates\":{\"none\":{\"versions\":{}}},\"template\":\"none\",\"upstream_path\":\"/x\"}"));

    json_t *c = parse("{" TEMPLATES ",\"template\":\"t\",\"model\":\"a\","
                      "\"split\":[{\"version\":\"v2\",\"weight\":3},{\"version\":\"v1\",\"weight\":0},"
                      "{\"version\":\"v1x\",\"weight\":1}]}");
    json_object_set_new(json_object_get(json_object_get(json_object_get(c, "templates"), "t"), "versions"),
                        "v1x", json_pack("{s:s}", "user", "u"));
    char err[256];
    tpl_conf_t *tc = tpl_conf_new(c, err, sizeof err);
    CHECK_INT(4, tc ? tc->total_weight : 0);
    if (tc) {
        CHECK_STR("v2", tpl_conf_pick(tc, 0)->name);
        CHECK_STR("v2", tpl_conf_pick(tc, 2)->name);
        CHECK_STR("v1x", tpl_conf_pick(tc, 3)->name);
        CHECK_INT(1, tc->simple);
        CHECK_STR("s", tc->served[0].system);
        CHECK_INT(1, tc->served[1].system == NULL);
    }
    tpl_conf_free(tc);
    json_decref(c);
}

static char shaped[1024];
static const char *shape(const char *body)
{
    size_t n = 0;
    char *out = shape_simple(body, strlen(body), &n);
    snprintf(shaped, sizeof shaped, "%s", out ? out : "(unchanged)");
    if (out && strlen(out) != n)
        snprintf(shaped, sizeof shaped, "bad length");
    free(out);
    return shaped;
}

static void test_shape(void)
{
    CHECK_STR("{\"text\":\"Hi!\",\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}",
              shape("{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
                    "\"message\":{\"role\":\"assistant\",\"content\":\"Hi!\"},\"finish_reason\":\"stop\"}],"
                    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}"));
    CHECK_STR("{\"text\":null,\"model\":null,\"usage\":null}",
              shape("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]}}]}"));
    CHECK_STR("(unchanged)", shape("{\"choices\":[]}"));
    CHECK_STR("(unchanged)", shape("{\"choices\":[{\"message\":{\"role\":\"assistant\"}}]}"));
    CHECK_STR("(unchanged)", shape("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\"}]}}]}"));
    CHECK_STR("(unchanged)", shape("{\"error\":{\"message\":\"x\"}}"));
    CHECK_STR("(unchanged)", shape("data: {\"x\":1}\n\n"));
    CHECK_STR("(unchanged)", shape(""));

    CHECK_INT(1, shape_content_type_ok(NULL, 0));
    CHECK_INT(1, shape_content_type_ok("application/json", 16));
    CHECK_INT(1, shape_content_type_ok("Application/JSON; charset=utf-8", 31));
    CHECK_INT(1, shape_content_type_ok("application/problem+json", 24));
    CHECK_INT(0, shape_content_type_ok("text/event-stream", 17));
    CHECK_INT(0, shape_content_type_ok("text/json+json", 14));
    CHECK_INT(0, shape_content_type_ok("application/jsonx", 17));
}

int main(void)
{
    test_render();
    test_conf();
    test_shape();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
