/* geoip: classifies the client address with MaxMind databases (country,
 * continent, autonomous system), answers 403 by allow/deny lists, and tells
 * the upstream and later plugins what it found.
 *
 * The databases are opened in configure(), so every config load (a SIGHUP
 * reload too) reads the files as they are then; requests still running on
 * the previous config keep the previous mapping until they end. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_addr.h"
#include "geo_db.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct code_list {
    char (*codes)[4];
    size_t n;
} code_list_t;

typedef struct asn_list {
    uint32_t *asns;
    size_t n;
} asn_list_t;

typedef struct geoip {
    MMDB_s db;
    MMDB_s asn_db;
    bool db_open;
    bool asn_db_open;
    code_list_t allow_countries, deny_countries, allow_continents, deny_continents;
    asn_list_t allow_asns, deny_asns;
    ip_cidr_list_t trusted;
    bool headers;
    bool unknown_deny;
} geoip_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void unconfigure(void *instance)
{
    geoip_t *g = instance;
    if (g->db_open)
        MMDB_close(&g->db);
    if (g->asn_db_open)
        MMDB_close(&g->asn_db);
    free(g->allow_countries.codes);
    free(g->deny_countries.codes);
    free(g->allow_continents.codes);
    free(g->deny_continents.codes);
    free(g->allow_asns.asns);
    free(g->deny_asns.asns);
    cidr_list_free(&g->trusted);
    free(g);
}

/* The schema already checked each item's shape; codes are kept upper case
 * because the databases write them so. */
static int read_codes(const sl_json_t *conf, const char *field, code_list_t *out)
{
    const sl_json_t *arr = host->json_get(conf, field);
    size_t n = arr ? host->json_len(arr) : 0;
    if (n == 0)
        return 0;
    if (!(out->codes = calloc(n, sizeof *out->codes)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *s = host->json_string(host->json_at(arr, i), NULL);
        for (size_t j = 0; s && s[j] && j < 3; j++)
            out->codes[i][j] = (char)(s[j] >= 'a' && s[j] <= 'z' ? s[j] - 32 : s[j]);
    }
    out->n = n;
    return 0;
}

static int read_asns(const sl_json_t *conf, const char *field, asn_list_t *out)
{
    const sl_json_t *arr = host->json_get(conf, field);
    size_t n = arr ? host->json_len(arr) : 0;
    if (n == 0)
        return 0;
    if (!(out->asns = calloc(n, sizeof *out->asns)))
        return -1;
    for (size_t i = 0; i < n; i++)
        out->asns[i] = (uint32_t)host->json_integer(host->json_at(arr, i));
    out->n = n;
    return 0;
}

static const char *string_field(const sl_json_t *conf, const char *field)
{
    return host->json_string(host->json_get(conf, field), NULL);
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    geoip_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    const char *unknown = string_field(conf, "unknown");
    g->unknown_deny = unknown && strcmp(unknown, "deny") == 0;
    g->headers = host->json_bool(host->json_get(conf, "headers"));
    if (read_codes(conf, "allow_countries", &g->allow_countries) != 0 ||
        read_codes(conf, "deny_countries", &g->deny_countries) != 0 ||
        read_codes(conf, "allow_continents", &g->allow_continents) != 0 ||
        read_codes(conf, "deny_continents", &g->deny_continents) != 0 ||
        read_asns(conf, "allow_asns", &g->allow_asns) != 0 ||
        read_asns(conf, "deny_asns", &g->deny_asns) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cidr_list_from_json(host, host->json_get(conf, "trusted_proxies"), "trusted_proxies",
                            &g->trusted, err, errlen) != 0)
        goto fail;
    if (geo_db_open("database", string_field(conf, "database"), &g->db, err, errlen) != 0)
        goto fail;
    g->db_open = true;
    const char *asn_path = string_field(conf, "asn_database");
    if (asn_path) {
        if (geo_db_open("asn_database", asn_path, &g->asn_db, err, errlen) != 0)
            goto fail;
        g->asn_db_open = true;
    }
    return g;
fail:
    unconfigure(g);
    return NULL;
}

static bool has_code(const code_list_t *l, const char *code)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->codes[i], code) == 0)
            return true;
    return false;
}

static bool has_asn(const asn_list_t *l, uint32_t asn)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->asns[i] == asn)
            return true;
    return false;
}

/* One dimension (country, continent or ASN) against its two lists: deny
 * first; an allow list admits only its members, and a value the databases
 * do not know passes it only with `unknown: allow`. */
static bool code_refused(const geoip_t *g, const code_list_t *allow, const code_list_t *deny,
                         const char *value)
{
    if (!value[0])
        return allow->n > 0 && g->unknown_deny;
    return has_code(deny, value) || (allow->n > 0 && !has_code(allow, value));
}

static bool asn_refused(const geoip_t *g, uint32_t asn)
{
    if (asn == 0)
        return g->allow_asns.n > 0 && g->unknown_deny;
    return has_asn(&g->deny_asns, asn) || (g->allow_asns.n > 0 && !has_asn(&g->allow_asns, asn));
}

/* NULL when the request may pass, else the 403 message (in buf). */
static const char *refusal(const geoip_t *g, const geo_info_t *info, char *buf, size_t cap)
{
    if (!info->found && g->unknown_deny)
        return "the location of your IP address is unknown";
    if (code_refused(g, &g->allow_countries, &g->deny_countries, info->country)) {
        if (!info->country[0])
            return "the country of your IP address is unknown";
        snprintf(buf, cap, "requests from country %s are not allowed", info->country);
        return buf;
    }
    if (code_refused(g, &g->allow_continents, &g->deny_continents, info->continent)) {
        if (!info->continent[0])
            return "the continent of your IP address is unknown";
        snprintf(buf, cap, "requests from continent %s are not allowed", info->continent);
        return buf;
    }
    if (asn_refused(g, info->asn)) {
        if (info->asn == 0)
            return "the network of your IP address is unknown";
        snprintf(buf, cap, "requests from AS%u are not allowed", (unsigned)info->asn);
        return buf;
    }
    return NULL;
}

static void publish(const geoip_t *g, sl_req_t *r, const geo_info_t *info)
{
    char asn[16] = "";
    if (info->asn)
        snprintf(asn, sizeof asn, "%u", (unsigned)info->asn);
    if (info->country[0])
        host->ctx_set(r, "geo.country", info->country, strlen(info->country));
    if (info->continent[0])
        host->ctx_set(r, "geo.continent", info->continent, strlen(info->continent));
    if (asn[0])
        host->ctx_set(r, "geo.asn", asn, strlen(asn));
    if (info->asn_org[0])
        host->ctx_set(r, "geo.asn_org", info->asn_org, strlen(info->asn_org));
    if (!g->headers)
        return;
    /* The upstream must be able to trust these: a client's own copies go. */
    static const char *const names[] = {"X-Geo-Country", "X-Geo-Continent", "X-Geo-ASN"};
    const char *values[] = {info->country, info->continent, asn};
    for (int i = 0; i < 3; i++) {
        if (values[i][0])
            host->upstream_set_header(r, names[i], values[i], strlen(values[i]));
        else
            host->upstream_remove_header(r, names[i]);
    }
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    geoip_t *g = instance;
    geo_info_t info;
    memset(&info, 0, sizeof info);
    ip_addr_t a;
    if (client_addr(host, r, &g->trusted, &a) == 0) {
        char ip[IP_ADDR_TEXT_MAX];
        ip_addr_format(&a, ip);
        geo_db_country(&g->db, ip, &info);
        geo_db_asn(g->asn_db_open ? &g->asn_db : &g->db, ip, &info);
    }
    char buf[96];
    const char *why = refusal(g, &info, buf, sizeof buf);
    if (why) {
        host->respond_error(r, 403, "geo_forbidden", why);
        return SL_DONE;
    }
    publish(g, r, &info);
    return SL_OK;
}

#define STRING_LIST(item) "{\"type\": \"array\", \"min\": 1, \"items\": " item "}"
#define COUNTRY "{\"type\": \"string\", \"pattern\": \"^[A-Za-z]{2}$\"}"
#define CONTINENT "{\"type\": \"string\", \"enum\": [\"AF\", \"AN\", \"AS\", \"EU\", \"NA\", \"OC\", \"SA\"]}"
#define ASN "{\"type\": \"integer\", \"min\": 1, \"max\": 4294967295}"

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "geoip",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"database\": {\"type\": \"string\", \"required\": true, \"min\": 1},"
              "\"asn_database\": {\"type\": \"string\", \"min\": 1},"
              "\"allow_countries\": " STRING_LIST(COUNTRY) ","
              "\"deny_countries\": " STRING_LIST(COUNTRY) ","
              "\"allow_continents\": " STRING_LIST(CONTINENT) ","
              "\"deny_continents\": " STRING_LIST(CONTINENT) ","
              "\"allow_asns\": " STRING_LIST(ASN) ","
              "\"deny_asns\": " STRING_LIST(ASN) ","
              "\"trusted_proxies\": {\"type\": \"array\", \"items\": {\"type\": \"string\"},"
              " \"default\": []},"
              "\"headers\": {\"type\": \"boolean\", \"default\": true},"
              "\"unknown\": {\"type\": \"string\", \"enum\": [\"allow\", \"deny\"], \"default\": \"allow\"}}}",
    .provides = "geo",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
