/* What the geoip plugin reads from a MaxMind DB: country and continent codes
 * (GeoIP2/GeoLite2 Country or City layout) and the autonomous system (ASN
 * layout). A database is opened read-only with MMDB_MODE_MMAP and shared by
 * every worker: libmaxminddb lookups do not modify it. */
#ifndef SLUICE_PLUGIN_GEO_DB_H
#define SLUICE_PLUGIN_GEO_DB_H

#include <maxminddb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct geo_info {
    bool found;            /* the address has a record in the country database */
    char country[8];       /* ISO 3166-1 alpha-2, "" when unknown */
    char continent[8];     /* two-letter continent code, "" when unknown */
    uint32_t asn;          /* 0 when unknown */
    char asn_org[128];     /* "" when unknown; control characters replaced */
} geo_info_t;

/* 0, or -1 with "FIELD: cannot open \"PATH\": <reason>" in err. */
int geo_db_open(const char *field, const char *path, MMDB_s *db, char *err, size_t errlen);

/* Fills country, continent and found from db. */
void geo_db_country(const MMDB_s *db, const char *ip, geo_info_t *info);

/* Fills asn and asn_org from db, when it has them for ip. */
void geo_db_asn(const MMDB_s *db, const char *ip, geo_info_t *info);

#endif
