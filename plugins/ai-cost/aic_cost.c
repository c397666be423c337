/* Estimates, costs and periods; see aic_cost.h. */
#include "aic_cost.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aic_host.h"

/* Characters, not bytes: the 4-per-token rule of thumb is about text. */
static int64_t utf8_chars(const char *s, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static int64_t text_chars(const sl_json_t *v)
{
    size_t len = 0;
    const char *s = v ? aic_host->json_string(v, &len) : NULL;
    return s ? utf8_chars(s, len) : 0;
}

/* A message's content is a string or a list of parts ({"type":"text","text":...}). */
static int64_t content_chars(const sl_json_t *content)
{
    if (!content)
        return 0;
    if (aic_host->json_type(content) == SL_JSON_STRING)
        return text_chars(content);
    int64_t n = 0;
    if (aic_host->json_type(content) == SL_JSON_ARRAY)
        for (size_t i = 0; i < aic_host->json_len(content); i++) {
            const sl_json_t *part = aic_host->json_at(content, i);
            if (aic_host->json_type(part) == SL_JSON_STRING)
                n += text_chars(part);
            else if (aic_host->json_type(part) == SL_JSON_OBJECT)
                n += text_chars(aic_host->json_get(part, "text"));
        }
    return n;
}

static int64_t prompt_chars(const sl_json_t *doc)
{
    int64_t n = 0;
    const sl_json_t *messages = aic_host->json_get(doc, "messages");
    if (messages && aic_host->json_type(messages) == SL_JSON_ARRAY)
        for (size_t i = 0; i < aic_host->json_len(messages); i++) {
            const sl_json_t *m = aic_host->json_at(messages, i);
            if (aic_host->json_type(m) == SL_JSON_OBJECT)
                n += content_chars(aic_host->json_get(m, "content"));
        }
    n += content_chars(aic_host->json_get(doc, "input"));
    return n;
}

static int64_t max_tokens(const sl_json_t *doc, int64_t fallback)
{
    static const char *const names[] = {"max_tokens", "max_completion_tokens"};
    for (size_t i = 0; i < 2; i++) {
        const sl_json_t *v = aic_host->json_get(doc, names[i]);
        if (v && aic_host->json_type(v) == SL_JSON_INTEGER && aic_host->json_integer(v) >= 0)
            return aic_host->json_integer(v);
    }
    return fallback;
}

int64_t aic_estimate(const aic_conf_t *c, const aic_price_t *price, const char *body, size_t len)
{
    double in = price ? price->input : c->max_input;
    double out = price ? price->output : c->max_output;
    sl_json_t *doc = len ? aic_host->json_parse(body, len, NULL, 0) : NULL;
    int64_t chars = 0, completion = c->estimate_max_tokens_default;
    if (doc && aic_host->json_type(doc) == SL_JSON_OBJECT) {
        chars = prompt_chars(doc);
        completion = max_tokens(doc, completion);
    }
    if (doc)
        aic_host->json_free(doc);
    int64_t prompt = (chars + 3) / 4;
    return (int64_t)ceil((double)prompt * in + (double)completion * out);
}

int64_t aic_cost(const aic_price_t *price, const aic_usage_t *u)
{
    int64_t cached = u->cached < u->prompt ? u->cached : u->prompt;
    double cost = (double)(u->prompt - cached) * price->input + (double)cached * price->cached_input +
                  (double)u->completion * price->output;
    return llround(cost);
}

void aic_period_id(aic_period_t p, time_t now, char out[16])
{
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 16, p == AIC_PERIOD_DAY ? "%Y-%m-%d" : "%Y-%m", &tm);
}

int64_t aic_seconds_left(aic_period_t p, time_t now)
{
    struct tm tm;
    gmtime_r(&now, &tm);
    int64_t into_day = (int64_t)tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    int64_t left = 86400 - into_day;
    if (p == AIC_PERIOD_MONTH) {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y = tm.tm_year + 1900;
        int in_month = days[tm.tm_mon] + (tm.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
        left += (int64_t)(in_month - tm.tm_mday) * 86400;
    }
    return left < 1 ? 1 : left;
}

void aic_format_usd(int64_t micro, char *out, size_t cap)
{
    const char *sign = micro < 0 ? "-" : "";
    uint64_t m = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
    char frac[8];
    snprintf(frac, sizeof frac, "%06llu", (unsigned long long)(m % 1000000));
    size_t n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    if (n == 0)
        snprintf(out, cap, "%s%llu", sign, (unsigned long long)(m / 1000000));
    else
        snprintf(out, cap, "%s%llu.%s", sign, (unsigned long long)(m / 1000000), frac);
}
