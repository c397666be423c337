/* The shared dictionary: get/set/add/incr/delete, TTLs with injected time,
 * LRU eviction and byte accounting under small budgets, sweeping, bad
 * arguments, exact totals under concurrent increments, and the registry. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shdict.h"

/* The value stored under key is exactly `expected`. */
#define CHECK_VALUE(d, key, expected, now)                                                \
    do {                                                                                  \
        char b_[256];                                                                     \
        size_t l_ = 0;                                                                    \
        const char *e_ = (expected);                                                      \
        int rc_ = sl_shdict_get((d), (key), strlen(key), b_, sizeof b_, &l_, NULL, (now)); \
        bool ok_ = rc_ == 1 && l_ == strlen(e_) && memcmp(b_, e_, l_) == 0;               \
        check_report(__FILE__, __LINE__, ok_, "%s: expected \"%s\", got rc %d \"%.*s\"",  \
                     (key), e_, rc_, rc_ == 1 ? (int)l_ : 0, b_);                         \
    } while (0)

#define CHECK_MISSING(d, key, now)                                                        \
    CHECK_INT(0, sl_shdict_get((d), (key), strlen(key), NULL, 0, NULL, NULL, (now)))

static int set_s(sl_shdict_t *d, const char *key, const char *val, int64_t ttl, int64_t now)
{
    return sl_shdict_set(d, key, strlen(key), val, strlen(val), ttl, now);
}

static int add_s(sl_shdict_t *d, const char *key, const char *val, int64_t ttl, int64_t now)
{
    return sl_shdict_add(d, key, strlen(key), val, strlen(val), ttl, now);
}

static int incr_s(sl_shdict_t *d, const char *key, int64_t delta, int64_t init, int64_t ttl,
                  int64_t now, int64_t *out)
{
    return sl_shdict_incr(d, key, strlen(key), delta, init, ttl, now, out);
}

static int64_t ttl_of(sl_shdict_t *d, const char *key, int64_t now)
{
    char buf[64];
    size_t len;
    int64_t ttl = -7;
    if (sl_shdict_get(d, key, strlen(key), buf, sizeof buf, &len, &ttl, now) != 1)
        return -99;
    return ttl;
}

/* Dicts under 64 KiB have one stripe, so their bytes and LRU are exact. */
#define SMALL 1024
#define TABLE8 (8 * sizeof(void *))

static void test_new_and_bad_sizes(void)
{
    CHECK_PTR(NULL, sl_shdict_new(NULL, 4096));
    CHECK_PTR(NULL, sl_shdict_new("", 4096));
    CHECK_PTR(NULL, sl_shdict_new("x", 0));
    CHECK_PTR(NULL, sl_shdict_new("x", SL_SHDICT_MIN_BYTES - 1));
    sl_shdict_t *d = sl_shdict_new("limits", SL_SHDICT_MIN_BYTES);
    CHECK_TRUE(d != NULL);
    CHECK_INT(0, strcmp("limits", sl_shdict_name(d)));
    CHECK_INT(SL_SHDICT_MIN_BYTES, sl_shdict_max_bytes(d));
    CHECK_INT(TABLE8, sl_shdict_bytes_used(d));
    sl_shdict_free(d);
    sl_shdict_free(NULL);
    CHECK_PTR(NULL, sl_shdict_name(NULL));
    CHECK_INT(0, sl_shdict_max_bytes(NULL));
    CHECK_INT(0, sl_shdict_bytes_used(NULL));
    CHECK_INT(SIZE_MAX, sl_shdict_entry_size(SIZE_MAX, 1));
    CHECK_INT(SIZE_MAX, sl_shdict_entry_size(1, SIZE_MAX));
    CHECK_INT(sl_shdict_entry_size(0, 0) + 7, sl_shdict_entry_size(3, 4));

    /* 64 stripes of 8 slots each from 2 MiB up; 2 stripes at 64 KiB. */
    d = sl_shdict_new("big", 2 * 1024 * 1024);
    CHECK_INT(64 * TABLE8, sl_shdict_bytes_used(d));
    sl_shdict_free(d);
    d = sl_shdict_new("mid", 64 * 1024);
    CHECK_INT(2 * TABLE8, sl_shdict_bytes_used(d));
    sl_shdict_free(d);
}

static void test_basic(void)
{
    sl_shdict_t *d = sl_shdict_new("basic", 64 * 1024);
    CHECK_MISSING(d, "a", 0);
    CHECK_INT(0, set_s(d, "a", "hello", 0, 0));
    CHECK_VALUE(d, "a", "hello", 0);
    CHECK_INT(-1, ttl_of(d, "a", 0));
    CHECK_INT(0, set_s(d, "a", "bye", 0, 0));
    CHECK_VALUE(d, "a", "bye", 0);

    /* An empty value exists; a NULL buf with cap 0 reads it. */
    CHECK_INT(0, sl_shdict_set(d, "e", 1, NULL, 0, 0, 0));
    size_t len = 99;
    CHECK_INT(1, sl_shdict_get(d, "e", 1, NULL, 0, &len, NULL, 0));
    CHECK_INT(0, len);

    /* Keys and values are bytes, NULs included; a prefix is another key. */
    const char bkey[] = {'k', '\0', 'x'};
    const char bval[] = {'\0', '\1', '\0'};
    CHECK_INT(0, sl_shdict_set(d, bkey, 3, bval, 3, 0, 0));
    char buf[8] = "zzzzzzz";
    CHECK_INT(1, sl_shdict_get(d, bkey, 3, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(3, len);
    CHECK_INT(0, memcmp(buf, bval, 3));
    CHECK_INT(0, sl_shdict_get(d, bkey, 1, buf, sizeof buf, &len, NULL, 0));

    /* Too small a buffer: -1, the full length, nothing copied. */
    memcpy(buf, "zzzzzzz", 8);
    len = 0;
    CHECK_INT(-1, sl_shdict_get(d, "a", 1, buf, 2, &len, NULL, 0));
    CHECK_INT(3, len);
    CHECK_INT(0, memcmp(buf, "zzzzzzz", 8));
    CHECK_INT(1, sl_shdict_get(d, "a", 1, buf, 3, &len, NULL, 0));
    CHECK_INT(0, memcmp(buf, "bye", 3));

    CHECK_INT(1, sl_shdict_delete(d, "a", 1));
    CHECK_INT(0, sl_shdict_delete(d, "a", 1));
    CHECK_MISSING(d, "a", 0);
    CHECK_INT(1, sl_shdict_delete(d, "e", 1));
    CHECK_INT(1, sl_shdict_delete(d, bkey, 3));
    CHECK_INT(2 * TABLE8, sl_shdict_bytes_used(d));
    sl_shdict_free(d);
}

static void test_bad_arguments(void)
{
    sl_shdict_t *d = sl_shdict_new("bad", SMALL);
    char buf[8];
    size_t len = 5;
    int64_t out = 77;
    CHECK_INT(0, set_s(d, "k", "v", 0, 0));

    CHECK_INT(-1, sl_shdict_get(NULL, "k", 1, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(-1, sl_shdict_get(d, NULL, 1, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(-1, sl_shdict_get(d, "k", 0, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(-1, sl_shdict_get(d, "k", 1, NULL, 4, &len, NULL, 0));
    CHECK_INT(5, len);

    CHECK_INT(-1, sl_shdict_set(NULL, "k", 1, "v", 1, 0, 0));
    CHECK_INT(-1, sl_shdict_set(d, NULL, 1, "v", 1, 0, 0));
    CHECK_INT(-1, sl_shdict_set(d, "k", 0, "v", 1, 0, 0));
    CHECK_INT(-1, sl_shdict_set(d, "k", 1, NULL, 1, 0, 0));
    CHECK_INT(-1, sl_shdict_set(d, "k", 1, "w", 1, -1, 0));
    CHECK_INT(-1, sl_shdict_add(d, "n", 1, "w", 1, -5, 0));
    CHECK_INT(-1, sl_shdict_add(d, "n", 1, NULL, 3, 0, 0));

    static char huge_key[SL_SHDICT_MAX_KEY + 1];
    memset(huge_key, 'h', sizeof huge_key);
    CHECK_INT(-1, sl_shdict_set(d, huge_key, sizeof huge_key, "v", 1, 0, 0));
    CHECK_INT(-1, sl_shdict_get(d, huge_key, sizeof huge_key, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(-1, sl_shdict_delete(d, huge_key, sizeof huge_key));

    CHECK_INT(-1, sl_shdict_incr(NULL, "c", 1, 1, 0, 0, 0, &out));
    CHECK_INT(-1, sl_shdict_incr(d, NULL, 1, 1, 0, 0, 0, &out));
    CHECK_INT(-1, sl_shdict_incr(d, "c", 0, 1, 0, 0, 0, &out));
    CHECK_INT(-1, sl_shdict_incr(d, "c", 1, 1, 0, -1, 0, &out));
    CHECK_INT(77, out);

    CHECK_INT(-1, sl_shdict_delete(NULL, "k", 1));
    CHECK_INT(-1, sl_shdict_delete(d, NULL, 1));
    CHECK_INT(-1, sl_shdict_delete(d, "k", 0));
    CHECK_INT(0, sl_shdict_sweep(NULL, 10, 0));
    CHECK_INT(0, sl_shdict_sweep(d, 0, 0));
    CHECK_INT(0, sl_shdict_sweep(d, -3, 0));

    /* None of that changed anything. */
    CHECK_VALUE(d, "k", "v", 0);
    CHECK_MISSING(d, "n", 0);
    CHECK_MISSING(d, "c", 0);
    CHECK_INT(TABLE8 + sl_shdict_entry_size(1, 1), sl_shdict_bytes_used(d));
    sl_shdict_free(d);
}

static void test_ttl(void)
{
    sl_shdict_t *d = sl_shdict_new("ttl", SMALL);
    CHECK_INT(0, set_s(d, "t", "v", 1000, 5000));
    CHECK_INT(1000, ttl_of(d, "t", 5000));
    CHECK_INT(1, ttl_of(d, "t", 5999));
    CHECK_VALUE(d, "t", "v", 5999);
    CHECK_MISSING(d, "t", 6000);
    /* The miss removed it. */
    CHECK_INT(TABLE8, sl_shdict_bytes_used(d));
    CHECK_MISSING(d, "t", 5000);

    /* set replaces the TTL too, both ways. */
    CHECK_INT(0, set_s(d, "t", "v", 1000, 0));
    CHECK_INT(0, set_s(d, "t", "w", 0, 10));
    CHECK_INT(-1, ttl_of(d, "t", 999999));
    CHECK_INT(0, set_s(d, "t", "x", 50, 10));
    CHECK_INT(40, ttl_of(d, "t", 20));

    /* A TTL past the end of time saturates instead of wrapping. */
    CHECK_INT(0, set_s(d, "far", "v", INT64_MAX, 10));
    CHECK_INT(INT64_MAX - 10, ttl_of(d, "far", 10));
    CHECK_INT(INT64_MAX - 1, ttl_of(d, "far", 1));

    /* Expired entries are replaced by set, and deleting one reports it. */
    CHECK_INT(0, set_s(d, "t", "y", 0, 100));
    CHECK_VALUE(d, "t", "y", 100);
    CHECK_INT(0, set_s(d, "gone", "v", 5, 0));
    CHECK_INT(1, sl_shdict_delete(d, "gone", 4));
    sl_shdict_free(d);
}

static void test_add(void)
{
    sl_shdict_t *d = sl_shdict_new("add", SMALL);
    CHECK_INT(1, add_s(d, "k", "first", 100, 0));
    CHECK_INT(0, add_s(d, "k", "second", 0, 50));
    CHECK_VALUE(d, "k", "first", 50);
    CHECK_INT(50, ttl_of(d, "k", 50));
    /* Expired counts as absent, and the new TTL applies. */
    CHECK_INT(1, add_s(d, "k", "third", 0, 100));
    CHECK_VALUE(d, "k", "third", 100);
    CHECK_INT(-1, ttl_of(d, "k", 100));
    CHECK_INT(TABLE8 + sl_shdict_entry_size(1, 5), sl_shdict_bytes_used(d));
    /* Too big to ever fit. */
    static char big[SMALL];
    CHECK_INT(-1, sl_shdict_add(d, "b", 1, big, sizeof big, 0, 0));
    CHECK_MISSING(d, "b", 0);
    sl_shdict_free(d);
}

static void test_incr(void)
{
    sl_shdict_t *d = sl_shdict_new("incr", 64 * 1024);
    int64_t out = 0;

    /* Missing: init + delta, with the TTL; later increments keep it. */
    CHECK_INT(0, incr_s(d, "c", 5, 10, 1000, 0, &out));
    CHECK_INT(15, out);
    CHECK_VALUE(d, "c", "15", 0);
    CHECK_INT(0, incr_s(d, "c", -20, 10, 99999, 400, &out));
    CHECK_INT(-5, out);
    CHECK_VALUE(d, "c", "-5", 400);
    CHECK_INT(600, ttl_of(d, "c", 400));
    /* The window ends; the next increment starts a new one. */
    CHECK_INT(0, incr_s(d, "c", 1, 0, 300, 1000, &out));
    CHECK_INT(1, out);
    CHECK_INT(300, ttl_of(d, "c", 1000));
    CHECK_INT(0, incr_s(d, "c", 1, 0, 300, 1299, NULL));
    CHECK_VALUE(d, "c", "2", 1299);
    CHECK_INT(0, incr_s(d, "nottl", 1, 0, 0, 0, &out));
    CHECK_INT(-1, ttl_of(d, "nottl", 123456));

    /* A counter reserves room for any int64, and so never reallocates. */
    CHECK_INT(2 * TABLE8 + sl_shdict_entry_size(1, 20) + sl_shdict_entry_size(5, 20),
              sl_shdict_bytes_used(d));

    /* Values set as text count; growing past their length replaces them. */
    CHECK_INT(0, set_s(d, "s", "9", 0, 0));
    CHECK_INT(0, incr_s(d, "s", 1, 0, 0, 0, &out));
    CHECK_INT(10, out);
    CHECK_VALUE(d, "s", "10", 0);
    CHECK_INT(0, set_s(d, "s", "0042", 70, 0));
    CHECK_INT(0, incr_s(d, "s", -50, 0, 5, 10, &out));
    CHECK_INT(-8, out);
    CHECK_VALUE(d, "s", "-8", 10);
    CHECK_INT(60, ttl_of(d, "s", 10));
    /* Replacing keeps the expiry too. */
    CHECK_INT(0, set_s(d, "s", "9", 100, 0));
    CHECK_INT(0, incr_s(d, "s", 991, 0, 5, 20, &out));
    CHECK_VALUE(d, "s", "1000", 20);
    CHECK_INT(80, ttl_of(d, "s", 20));
    CHECK_INT(0, set_s(d, "s", "-0", 0, 0));
    CHECK_INT(0, incr_s(d, "s", 0, 7, 0, 0, &out));
    CHECK_INT(0, out);

    /* Not an integer: -1 and untouched. */
    const char *bad[] = {"abc", "", "-", "+5", " 5", "5 ", "1.5", "0x10", "--1", "1-",
                         "9223372036854775808", "-9223372036854775809",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(0, set_s(d, "n", bad[i], 0, 0));
        out = 1234;
        CHECK_INT(-1, incr_s(d, "n", 1, 0, 0, 0, &out));
        CHECK_INT(1234, out);
        CHECK_VALUE(d, "n", bad[i], 0);
    }
    const char nul_in_value[] = {'1', '\0', '2'};
    CHECK_INT(0, sl_shdict_set(d, "n", 1, nul_in_value, 3, 0, 0));
    CHECK_INT(-1, incr_s(d, "n", 1, 0, 0, 0, &out));

    /* The limits themselves are fine; one past them overflows. */
    CHECK_INT(0, set_s(d, "max", "9223372036854775807", 0, 0));
    CHECK_INT(0, incr_s(d, "max", 0, 0, 0, 0, &out));
    CHECK_INT(INT64_MAX, out);
    CHECK_INT(-1, incr_s(d, "max", 1, 0, 0, 0, &out));
    CHECK_VALUE(d, "max", "9223372036854775807", 0);
    CHECK_INT(0, set_s(d, "min", "-9223372036854775808", 0, 0));
    CHECK_INT(0, incr_s(d, "min", 0, 0, 0, 0, &out));
    CHECK_INT(INT64_MIN, out);
    CHECK_INT(-1, incr_s(d, "min", -1, 0, 0, 0, &out));
    CHECK_VALUE(d, "min", "-9223372036854775808", 0);
    CHECK_INT(0, incr_s(d, "min", INT64_MAX, 0, 0, 0, &out));
    CHECK_INT(-1, out);

    /* A counter swings between the extremes in place. */
    size_t before = sl_shdict_bytes_used(d);
    CHECK_INT(0, incr_s(d, "wide", INT64_MIN, 0, 0, 0, &out));
    CHECK_VALUE(d, "wide", "-9223372036854775808", 0);
    CHECK_INT(0, incr_s(d, "wide", INT64_MAX, 0, 0, 0, &out));
    CHECK_INT(-1, out);
    CHECK_INT(0, incr_s(d, "wide", INT64_MAX, 0, 0, 0, &out));
    CHECK_VALUE(d, "wide", "9223372036854775806", 0);
    CHECK_INT(before + sl_shdict_entry_size(4, 20), sl_shdict_bytes_used(d));

    /* Overflow on creation creates nothing. */
    CHECK_INT(-1, incr_s(d, "fresh", 1, INT64_MAX, 0, 0, &out));
    CHECK_MISSING(d, "fresh", 0);
    CHECK_INT(-1, incr_s(d, "fresh", -2, INT64_MIN + 1, 0, 0, &out));
    CHECK_MISSING(d, "fresh", 0);
    sl_shdict_free(d);
}

static void test_lru_eviction(void)
{
    sl_shdict_t *d = sl_shdict_new("lru", SMALL);
    char val[100];
    memset(val, 'v', sizeof val);
    size_t esz = sl_shdict_entry_size(2, sizeof val);
    size_t fit = (SMALL - TABLE8) / esz;
    CHECK_TRUE(fit >= 3 && fit <= 8);
    char key[8];
    for (size_t i = 0; i < fit; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        CHECK_INT(0, sl_shdict_set(d, key, 2, val, sizeof val, 0, 0));
    }
    CHECK_INT(TABLE8 + fit * esz, sl_shdict_bytes_used(d));

    /* Reading k0 makes k1 the least recently used. */
    char buf[128];
    size_t len;
    CHECK_INT(1, sl_shdict_get(d, "k0", 2, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(0, sl_shdict_set(d, "kx", 2, val, sizeof val, 0, 0));
    CHECK_MISSING(d, "k1", 0);
    CHECK_INT(1, sl_shdict_get(d, "k0", 2, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(1, sl_shdict_get(d, "kx", 2, buf, sizeof buf, &len, NULL, 0));
    CHECK_INT(TABLE8 + fit * esz, sl_shdict_bytes_used(d));

    /* Rewriting k2 makes it recent too, so a new entry evicts k3. */
    CHECK_INT(0, sl_shdict_set(d, "k2", 2, val, sizeof val, 0, 0));
    CHECK_INT(0, sl_shdict_set(d, "kb", 2, val, sizeof val - 1, 0, 0));
    CHECK_MISSING(d, "k3", 0);
    CHECK_INT(0, sl_shdict_set(d, "kb", 2, "x", 1, 0, 0));
    CHECK_INT(TABLE8 + (fit - 1) * esz + sl_shdict_entry_size(2, 1), sl_shdict_bytes_used(d));
    char big[SMALL];
    memset(big, 'B', sizeof big);
    size_t biggest = SMALL - TABLE8 - sl_shdict_entry_size(2, 0);
    CHECK_INT(0, sl_shdict_set(d, "kb", 2, big, biggest, 0, 0));
    CHECK_INT(SMALL, sl_shdict_bytes_used(d));
    CHECK_MISSING(d, "k0", 0);
    CHECK_MISSING(d, "k2", 0);
    CHECK_MISSING(d, "kx", 0);

    /* One byte more never fits, and the old value stays. */
    CHECK_INT(0, sl_shdict_set(d, "k9", 2, "nine", 4, 0, 0));
    CHECK_INT(-1, sl_shdict_set(d, "k9", 2, big, biggest + 1, 0, 0));
    CHECK_VALUE(d, "k9", "nine", 0);
    CHECK_INT(-1, sl_shdict_incr(d, big, SMALL - TABLE8 - sl_shdict_entry_size(0, 20) + 1, 1, 0,
                                 0, 0, NULL));
    CHECK_VALUE(d, "k9", "nine", 0);
    sl_shdict_free(d);
}

/* Small entries: the table doubles (and is charged) as entries arrive, then
 * LRU keeps the newest that fit. */
static void test_table_growth(void)
{
    const size_t max = 4096;
    sl_shdict_t *d = sl_shdict_new("grow", max);
    CHECK_TRUE(sl_shdict_entry_size(4, 0) < 64);
    size_t vlen = 64 - sl_shdict_entry_size(4, 0);
    char val[64];
    memset(val, 'g', sizeof val);
    char key[8];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "%04d", i);
        CHECK_INT(0, sl_shdict_set(d, key, 4, val, vlen, 0, 0));
    }
    /* 40 entries made the table 8 -> 16 -> 32 -> 64 slots. */
    CHECK_INT(40 * 64 + 64 * sizeof(void *), sl_shdict_bytes_used(d));
    for (int i = 40; i < 100; i++) {
        snprintf(key, sizeof key, "%04d", i);
        CHECK_INT(0, sl_shdict_set(d, key, 4, val, vlen, 0, 0));
    }
    /* 56 entries and the 64-slot table fill 4096 exactly. */
    CHECK_INT(max, sl_shdict_bytes_used(d));
    int present = 0, first_present = -1;
    char buf[64];
    size_t len;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "%04d", i);
        if (sl_shdict_get(d, key, 4, buf, sizeof buf, &len, NULL, 0) == 1) {
            present++;
            if (first_present < 0)
                first_present = i;
        }
    }
    CHECK_INT(56, present);
    CHECK_INT(44, first_present);

    /* The 33rd entry fills the stripe and needs the table doubled: the
     * table's 256 more bytes evict the three oldest. */
    sl_shdict_t *f = sl_shdict_new("full", max);
    vlen = 116 - sl_shdict_entry_size(4, 0);
    for (int i = 0; i < 33; i++) {
        snprintf(key, sizeof key, "%04d", i);
        CHECK_INT(0, sl_shdict_set(f, key, 4, val, vlen, 0, 0));
    }
    CHECK_INT(64 * sizeof(void *) + 30 * 116, sl_shdict_bytes_used(f));
    for (int i = 0; i < 33; i++) {
        snprintf(key, sizeof key, "%04d", i);
        CHECK_INT(i < 3 ? 0 : 1, sl_shdict_get(f, key, 4, buf, sizeof buf, &len, NULL, 0) == 1);
    }
    sl_shdict_free(f);

    /* Many tiny entries in a dict full of big ones: growing the table evicts
     * what it must and the budget still holds. */
    sl_shdict_t *g = sl_shdict_new("regrow", max);
    memset(val, 'b', sizeof val);
    static char bigval[1000];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "B%03d", i);
        CHECK_INT(0, sl_shdict_set(g, key, 4, bigval, sizeof bigval, 0, 0));
    }
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "%04d", i);
        CHECK_INT(0, sl_shdict_set(g, key, 4, "", 0, 0, 0));
        CHECK_TRUE(sl_shdict_bytes_used(g) <= max);
    }
    CHECK_INT(1, sl_shdict_get(g, "0299", 4, NULL, 0, NULL, NULL, 0));
    sl_shdict_free(g);
    sl_shdict_free(d);
}

static void test_sweep(void)
{
    sl_shdict_t *d = sl_shdict_new("sweep", SMALL);
    char key[8];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "e%d", i);
        CHECK_INT(0, set_s(d, key, "v", 100, 0));
    }
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "p%d", i);
        CHECK_INT(0, set_s(d, key, "v", 0, 0));
    }
    CHECK_INT(0, sl_shdict_sweep(d, 100, 99));
    CHECK_INT(4, sl_shdict_sweep(d, 4, 100));
    CHECK_INT(6, sl_shdict_sweep(d, 100, 100));
    CHECK_INT(0, sl_shdict_sweep(d, 100, 100));
    size_t table = 16 * sizeof(void *);   /* 13 entries made it 16 slots */
    CHECK_INT(table + 3 * sl_shdict_entry_size(2, 1), sl_shdict_bytes_used(d));
    CHECK_VALUE(d, "p0", "v", 1000000);
    sl_shdict_free(d);

    /* Across 64 stripes, in bounded steps, to the last one. */
    d = sl_shdict_new("sweep-big", 8 * 1024 * 1024);
    size_t empty = sl_shdict_bytes_used(d);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "%d", i);
        CHECK_INT(0, set_s(d, key, "v", 10 + i % 2, 0));
    }
    CHECK_INT(2500, sl_shdict_sweep(d, 100000, 10));
    for (int i = 0; i < 2; i++)
        CHECK_INT(1000, sl_shdict_sweep(d, 1000, 11));
    CHECK_INT(500, sl_shdict_sweep(d, 1000, 11));
    CHECK_INT(0, sl_shdict_sweep(d, 1000, 11));
    CHECK_TRUE(sl_shdict_bytes_used(d) > empty);   /* tables grew and stay */
    int left = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "%d", i);
        left += sl_shdict_get(d, key, strlen(key), NULL, 0, NULL, NULL, 0) != 0;
    }
    CHECK_INT(0, left);
    sl_shdict_free(d);
}

/* ---- threads ---- */

#define THREADS 8
#define INCRS 100000

struct worker {
    sl_shdict_t *d;
    int id;
    int errors;
};

static void *incr_same(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < INCRS; i++)
        if (sl_shdict_incr(w->d, "shared", 6, 1, 0, 0, 0, NULL) != 0)
            w->errors++;
    return NULL;
}

static void *incr_own(void *arg)
{
    struct worker *w = arg;
    char key[16];
    int n = snprintf(key, sizeof key, "own-%d", w->id);
    for (int i = 0; i < INCRS; i++)
        if (sl_shdict_incr(w->d, key, (size_t)n, 1, 0, 0, 0, NULL) != 0)
            w->errors++;
    return NULL;
}

static void run_threads(void *(*fn)(void *), struct worker *w)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, fn, &w[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void test_threads_incr(void)
{
    sl_shdict_t *d = sl_shdict_new("threads", 4 * 1024 * 1024);
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++)
        w[i] = (struct worker){.d = d, .id = i};
    run_threads(incr_same, w);
    run_threads(incr_own, w);
    int errors = 0;
    for (int i = 0; i < THREADS; i++)
        errors += w[i].errors;
    CHECK_INT(0, errors);
    CHECK_VALUE(d, "shared", "800000", 0);
    char key[16];
    for (int i = 0; i < THREADS; i++) {
        snprintf(key, sizeof key, "own-%d", i);
        CHECK_VALUE(d, key, "100000", 0);
    }
    sl_shdict_free(d);
}

/* Every operation at once on a dict small enough to evict and regrow its
 * tables all the time: a value read is always one that was written whole. */
#define MIXED_OPS 20000
#define MIXED_KEYS 512

static void *mixed(void *arg)
{
    struct worker *w = arg;
    uint64_t s = (uint64_t)w->id * 7919 + 1;
    char key[16], val[200], buf[256];
    for (int i = 0; i < MIXED_OPS; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned k = (unsigned)(s >> 33) % MIXED_KEYS;
        int klen = snprintf(key, sizeof key, "m%u", k);
        /* A key's value is its own letter repeated, of any length. */
        size_t vlen = (size_t)(s >> 20) % sizeof val;
        memset(val, 'a' + (char)(k % 26), vlen);
        int64_t now = i / 100;
        size_t len;
        int rc;
        switch ((s >> 45) % 6) {
        case 0:
        case 1:
            if (sl_shdict_set(w->d, key, (size_t)klen, val, vlen, (int64_t)(s >> 50) % 5, now) != 0)
                w->errors++;
            break;
        case 2:
            rc = sl_shdict_get(w->d, key, (size_t)klen, buf, sizeof buf, &len, NULL, now);
            if (rc == 1) {
                for (size_t j = 0; j < len; j++)
                    if (buf[j] != 'a' + (char)(k % 26) && !(buf[j] >= '0' && buf[j] <= '9') &&
                        buf[j] != '-')
                        w->errors++;
            } else if (rc != 0) {
                w->errors++;
            }
            break;
        case 3:
            if (sl_shdict_delete(w->d, key, (size_t)klen) < 0)
                w->errors++;
            break;
        case 4:
            /* Counters share the key space with text, so -1 is expected. */
            rc = sl_shdict_incr(w->d, key, (size_t)klen, 1, 0, 3, now, NULL);
            if (rc != 0 && rc != -1)
                w->errors++;
            break;
        default:
            if (sl_shdict_sweep(w->d, 50, now) < 0)
                w->errors++;
            if (sl_shdict_bytes_used(w->d) > sl_shdict_max_bytes(w->d))
                w->errors++;
            break;
        }
    }
    return NULL;
}

static void test_threads_mixed(void)
{
    sl_shdict_t *d = sl_shdict_new("mixed", 64 * 1024);
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++)
        w[i] = (struct worker){.d = d, .id = i};
    run_threads(mixed, w);
    int errors = 0;
    for (int i = 0; i < THREADS; i++)
        errors += w[i].errors;
    CHECK_INT(0, errors);
    CHECK_TRUE(sl_shdict_bytes_used(d) <= 64 * 1024);
    sl_shdict_free(d);
}

/* ---- registry ---- */

static void *named_worker(void *arg)
{
    sl_shdict_t **out = arg;
    *out = sl_shdict_named("race", 8192);
    return NULL;
}

static void test_registry(void)
{
    sl_shdict_t *a = sl_shdict_named("a", 8192);
    CHECK_TRUE(a != NULL);
    CHECK_PTR(a, sl_shdict_named("a", 1 << 20));
    CHECK_INT(8192, sl_shdict_max_bytes(a));
    sl_shdict_t *b = sl_shdict_named("b", 8192);
    CHECK_TRUE(b != NULL && b != a);
    CHECK_PTR(NULL, sl_shdict_named(NULL, 8192));
    CHECK_PTR(NULL, sl_shdict_named("", 8192));
    CHECK_PTR(NULL, sl_shdict_named("tiny", 10));
    sl_shdict_t *tiny = sl_shdict_named("tiny", 2048);
    CHECK_TRUE(tiny != NULL);
    CHECK_INT(2048, sl_shdict_max_bytes(tiny));

    /* The registry owns its dicts: freeing one directly does nothing. */
    CHECK_INT(0, set_s(a, "k", "v", 0, 0));
    sl_shdict_free(a);
    CHECK_VALUE(sl_shdict_named("a", 8192), "k", "v", 0);

    sl_shdict_t *got[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, named_worker, &got[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_TRUE(got[0] != NULL);
    for (int i = 1; i < THREADS; i++)
        CHECK_PTR(got[0], got[i]);

    sl_shdict_registry_free();
    sl_shdict_registry_free();
    a = sl_shdict_named("a", 4096);
    CHECK_INT(4096, sl_shdict_max_bytes(a));
    CHECK_MISSING(a, "k", 0);
    sl_shdict_registry_free();
}

int main(void)
{
    test_new_and_bad_sizes();
    test_basic();
    test_bad_arguments();
    test_ttl();
    test_add();
    test_incr();
    test_lru_eviction();
    test_table_growth();
    test_sweep();
    test_threads_incr();
    test_threads_mixed();
    test_registry();
    return check_summary();
}
