#include "geo_db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int geo_db_open(const char *field, const char *path, MMDB_s *db, char *err, size_t errlen)
{
    errno = 0;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, db);
    int saved = errno;
    if (rc == MMDB_SUCCESS)
        return 0;
    if ((rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) && saved != 0)
        snprintf(err, errlen, "%s: cannot open \"%s\": %s (%s)", field, path, MMDB_strerror(rc),
                 strerror(saved));
    else
        snprintf(err, errlen, "%s: cannot open \"%s\": %s", field, path, MMDB_strerror(rc));
    return -1;
}

static bool lookup(const MMDB_s *db, const char *ip, MMDB_lookup_result_s *res)
{
    int gai_error = 0, mmdb_error = MMDB_SUCCESS;
    /* The string form, because it also finds IPv4 addresses in the IPv4
     * subtree of an IPv6 database. */
    *res = MMDB_lookup_string(db, ip, &gai_error, &mmdb_error);
    return gai_error == 0 && mmdb_error == MMDB_SUCCESS && res->found_entry;
}

/* Copies a short code such as "DE" or "EU". Strings in the database are not
 * NUL-terminated (only data_size counts), and they go into upstream headers,
 * so anything but a few letters or digits is treated as unknown. */
static void copy_code(MMDB_entry_s *entry, char *out, size_t cap, const char *const *path)
{
    MMDB_entry_data_s data;
    out[0] = '\0';
    if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data ||
        data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size == 0 || data.data_size >= cap)
        return;
    for (uint32_t i = 0; i < data.data_size; i++) {
        char c = data.utf8_string[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return;
    }
    memcpy(out, data.utf8_string, data.data_size);
    out[data.data_size] = '\0';
}

void geo_db_country(const MMDB_s *db, const char *ip, geo_info_t *info)
{
    MMDB_lookup_result_s res;
    info->found = lookup(db, ip, &res);
    if (!info->found)
        return;
    static const char *const country[] = {"country", "iso_code", NULL};
    /* Some networks (satellite, anycast) only carry the registration. */
    static const char *const registered[] = {"registered_country", "iso_code", NULL};
    static const char *const continent[] = {"continent", "code", NULL};
    copy_code(&res.entry, info->country, sizeof info->country, country);
    if (!info->country[0])
        copy_code(&res.entry, info->country, sizeof info->country, registered);
    copy_code(&res.entry, info->continent, sizeof info->continent, continent);
}

static uint32_t read_asn(MMDB_entry_s *entry)
{
    static const char *const path[] = {"autonomous_system_number", NULL};
    MMDB_entry_data_s data;
    if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data)
        return 0;
    switch (data.type) {
    case MMDB_DATA_TYPE_UINT16:
        return data.uint16;
    case MMDB_DATA_TYPE_UINT32:
        return data.uint32;
    case MMDB_DATA_TYPE_UINT64:
        return data.uint64 <= UINT32_MAX ? (uint32_t)data.uint64 : 0;
    case MMDB_DATA_TYPE_INT32:
        return data.int32 > 0 ? (uint32_t)data.int32 : 0;
    default:
        return 0;
    }
}

void geo_db_asn(const MMDB_s *db, const char *ip, geo_info_t *info)
{
    MMDB_lookup_result_s res;
    if (!lookup(db, ip, &res))
        return;
    uint32_t asn = read_asn(&res.entry);
    if (asn == 0)
        return;
    info->asn = asn;
    info->asn_org[0] = '\0';
    static const char *const org[] = {"autonomous_system_organization", NULL};
    MMDB_entry_data_s data;
    if (MMDB_aget_value(&res.entry, &data, org) != MMDB_SUCCESS || !data.has_data ||
        data.type != MMDB_DATA_TYPE_UTF8_STRING)
        return;
    size_t n = data.data_size;
    if (n >= sizeof info->asn_org) {
        n = sizeof info->asn_org - 1;
        /* Cut before a character, not inside one: ctx values are UTF-8. */
        while (n > 0 && ((unsigned char)data.utf8_string[n] & 0xc0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data.utf8_string[i];
        info->asn_org[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    info->asn_org[n] = '\0';
}
