#include "shdict.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "numtext.h"
#include "siphash.h"

#define MAX_STRIPES        64
/* Below this share of the budget a stripe could not hold a useful cached
 * response, so small dicts trade lock striping for room per entry. */
#define MIN_STRIPE_BYTES   (32 * 1024)
#define INITIAL_SLOTS      8
/* Slots a sweep scans per lock hold, so that a sweep of a big dict never
 * keeps workers waiting on a stripe for long. */
#define SWEEP_SLICE        256
/* Every int64 fits in 20 characters ("-9223372036854775808"). */
#define INT_TEXT_MAX       SL_INT_TEXT_MAX

struct entry {
    struct entry *chain;          /* next in the hash slot, or in a garbage list */
    struct entry *newer, *older;  /* LRU links */
    uint64_t hash;
    int64_t expires_ms;
    uint32_t klen, vlen, cap;     /* cap: value bytes allocated, charged even when unused */
    bool expires;
    char data[];                  /* key, then cap bytes for the value */
};

struct stripe {
    /* Its own cache line, so that workers locking neighbouring stripes do
     * not invalidate each other's. */
    _Alignas(64) pthread_mutex_t lock;
    struct entry **slots;
    size_t n_slots;               /* a power of two */
    size_t count;
    size_t used;                  /* entries' charges plus the slot table */
    size_t sweep_slot;
    struct entry *newest, *oldest;
};

struct sl_shdict {
    char *name;
    size_t max_bytes;
    size_t stripe_budget;
    unsigned n_stripes;           /* a power of two */
    uint64_t k0, k1;              /* SipHash key */
    atomic_uint sweep_start;
    bool registered;
    sl_shdict_t *_Atomic next_registered;
    struct stripe *stripes;
};

/* A fresh secret per dict. */
static void seed_key(sl_shdict_t *d)
{
    sl_siphash_seed(&d->k0, &d->k1, d);
}

/* ---- entries ---- */

size_t sl_shdict_entry_size(size_t klen, size_t vlen)
{
    if (klen > SIZE_MAX - sizeof(struct entry) || vlen > SIZE_MAX - sizeof(struct entry) - klen)
        return SIZE_MAX;
    return sizeof(struct entry) + klen + vlen;
}

static size_t charge(const struct entry *e) { return sl_shdict_entry_size(e->klen, e->cap); }

static char *value_of(struct entry *e) { return e->data + e->klen; }

static bool is_expired(const struct entry *e, int64_t now_ms)
{
    return e->expires && now_ms >= e->expires_ms;
}

static void set_expiry(struct entry *e, int64_t ttl_ms, int64_t now_ms)
{
    e->expires = ttl_ms > 0;
    if (!e->expires)
        e->expires_ms = 0;
    else if (__builtin_add_overflow(now_ms, ttl_ms, &e->expires_ms))
        e->expires_ms = INT64_MAX;
}

static struct entry *entry_new(uint64_t hash, const char *key, size_t klen, size_t cap)
{
    struct entry *e = malloc(sl_shdict_entry_size(klen, cap));
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->hash = hash;
    e->klen = (uint32_t)klen;
    e->cap = (uint32_t)cap;
    memcpy(e->data, key, klen);
    return e;
}

static void free_list(struct entry *e)
{
    while (e) {
        struct entry *next = e->chain;
        free(e);
        e = next;
    }
}

/* ---- one stripe; callers hold its lock ---- */

static struct stripe *stripe_of(sl_shdict_t *d, uint64_t hash)
{
    /* Top bits pick the stripe, low bits the slot, so the two stay
     * independent. */
    return &d->stripes[(size_t)(hash >> 58) & (d->n_stripes - 1)];
}

static size_t table_bytes(size_t n_slots) { return n_slots * sizeof(struct entry *); }

static struct entry *find(struct stripe *st, uint64_t hash, const char *key, size_t klen)
{
    for (struct entry *e = st->slots[hash & (st->n_slots - 1)]; e; e = e->chain)
        if (e->hash == hash && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return e;
    return NULL;
}

static void lru_unlink(struct stripe *st, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        st->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        st->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(struct stripe *st, struct entry *e)
{
    e->newer = NULL;
    e->older = st->newest;
    if (st->newest)
        st->newest->newer = e;
    else
        st->oldest = e;
    st->newest = e;
}

static void touch(struct stripe *st, struct entry *e)
{
    if (st->newest != e) {
        lru_unlink(st, e);
        lru_push(st, e);
    }
}

/* Takes e out of the stripe onto *garbage, to be freed after unlocking. */
static void remove_entry(struct stripe *st, struct entry *e, struct entry **garbage)
{
    struct entry **pp = &st->slots[e->hash & (st->n_slots - 1)];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(st, e);
    st->count--;
    st->used -= charge(e);
    e->chain = *garbage;
    *garbage = e;
}

/* Links fresh in place of old (NULL if none), evicting the least recently
 * used entries to stay within budget. -1, touching nothing, when fresh could
 * not fit even in an otherwise empty stripe. *grow says the table is now
 * more than full. */
static int insert(sl_shdict_t *d, struct stripe *st, struct entry *fresh, struct entry *old,
                  struct entry **garbage, bool *grow)
{
    size_t size = charge(fresh);
    if (size > d->stripe_budget - table_bytes(st->n_slots))
        return -1;
    if (old)
        remove_entry(st, old, garbage);
    while (st->used + size > d->stripe_budget)
        remove_entry(st, st->oldest, garbage);
    struct entry **slot = &st->slots[fresh->hash & (st->n_slots - 1)];
    fresh->chain = *slot;
    *slot = fresh;
    lru_push(st, fresh);
    st->count++;
    st->used += size;
    *grow = st->count > st->n_slots;
    return 0;
}

/* Doubles the stripe's table. The new table is allocated unlocked, so by the
 * time the lock is retaken another thread may have grown it already. The
 * table is charged to the budget like entries are, so growing can evict. */
static void grow_table(sl_shdict_t *d, struct stripe *st)
{
    pthread_mutex_lock(&st->lock);
    size_t from = st->n_slots;
    bool wanted = st->count > from;
    pthread_mutex_unlock(&st->lock);
    if (!wanted || from > SIZE_MAX / 2 / sizeof(struct entry *))
        return;
    size_t to = from * 2;
    struct entry **slots = calloc(to, sizeof *slots);
    if (!slots)
        return;

    struct entry *garbage = NULL;
    struct entry **old_slots = NULL;
    pthread_mutex_lock(&st->lock);
    size_t extra = table_bytes(to) - table_bytes(from);
    if (st->n_slots == from && st->count > from && table_bytes(to) <= d->stripe_budget) {
        while (st->used + extra > d->stripe_budget)
            remove_entry(st, st->oldest, &garbage);
        for (size_t i = 0; i < from; i++) {
            struct entry *e = st->slots[i];
            while (e) {
                struct entry *next = e->chain;
                e->chain = slots[e->hash & (to - 1)];
                slots[e->hash & (to - 1)] = e;
                e = next;
            }
        }
        old_slots = st->slots;
        st->slots = slots;
        st->n_slots = to;
        st->used += extra;
        slots = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    free(slots);
    free(old_slots);
    free_list(garbage);
}

/* ---- lifecycle ---- */

static void destroy(sl_shdict_t *d);

sl_shdict_t *sl_shdict_new(const char *name, size_t max_bytes)
{
    if (!name || !*name || max_bytes < SL_SHDICT_MIN_BYTES)
        return NULL;
    sl_shdict_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->name = strdup(name);
    d->max_bytes = max_bytes;
    d->n_stripes = MAX_STRIPES;
    while (d->n_stripes > 1 && max_bytes / d->n_stripes < MIN_STRIPE_BYTES)
        d->n_stripes /= 2;
    d->stripe_budget = max_bytes / d->n_stripes;
    d->stripes = aligned_alloc(_Alignof(struct stripe), d->n_stripes * sizeof(struct stripe));
    if (!d->name || !d->stripes) {
        free(d->stripes);
        free(d->name);
        free(d);
        return NULL;
    }
    atomic_init(&d->sweep_start, 0);
    seed_key(d);
    unsigned ready = 0;
    for (; ready < d->n_stripes; ready++) {
        struct stripe *st = &d->stripes[ready];
        memset(st, 0, sizeof *st);
        st->slots = calloc(INITIAL_SLOTS, sizeof *st->slots);
        if (!st->slots || pthread_mutex_init(&st->lock, NULL) != 0) {
            free(st->slots);
            break;
        }
        st->n_slots = INITIAL_SLOTS;
        st->used = table_bytes(INITIAL_SLOTS);
    }
    if (ready < d->n_stripes) {
        d->n_stripes = ready;
        destroy(d);
        return NULL;
    }
    return d;
}

static void destroy(sl_shdict_t *d)
{
    for (unsigned i = 0; i < d->n_stripes; i++) {
        struct stripe *st = &d->stripes[i];
        struct entry *e = st->newest;
        while (e) {
            struct entry *older = e->older;
            free(e);
            e = older;
        }
        free(st->slots);
        pthread_mutex_destroy(&st->lock);
    }
    free(d->stripes);
    free(d->name);
    free(d);
}

void sl_shdict_free(sl_shdict_t *d)
{
    if (d && !d->registered)
        destroy(d);
}

size_t sl_shdict_max_bytes(const sl_shdict_t *d) { return d ? d->max_bytes : 0; }

const char *sl_shdict_name(const sl_shdict_t *d) { return d ? d->name : NULL; }

/* ---- registry ---- */

/* Plugins look their dict up by name on every call, from every worker, so
 * finding an existing dict takes no lock: dicts are only ever pushed on the
 * front of the list (published with release order, after they are fully
 * built) and none is removed before sl_shdict_registry_free, at exit. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sl_shdict_t *_Atomic registry;

static sl_shdict_t *registry_find(sl_shdict_t *from, const char *name)
{
    sl_shdict_t *d = from;
    while (d && strcmp(d->name, name) != 0)
        d = atomic_load_explicit(&d->next_registered, memory_order_acquire);
    return d;
}

sl_shdict_t *sl_shdict_named(const char *name, size_t max_bytes_if_new)
{
    if (!name || !*name)
        return NULL;
    sl_shdict_t *d = registry_find(atomic_load_explicit(&registry, memory_order_acquire), name);
    if (d)
        return d;
    /* Creating under the lock keeps two plugins asking for the same new name
     * from each making one; this happens at startup and reload, not per
     * request. */
    pthread_mutex_lock(&registry_lock);
    sl_shdict_t *head = atomic_load_explicit(&registry, memory_order_acquire);
    d = registry_find(head, name);
    if (!d) {
        d = sl_shdict_new(name, max_bytes_if_new);
        if (d) {
            d->registered = true;
            atomic_store_explicit(&d->next_registered, head, memory_order_relaxed);
            atomic_store_explicit(&registry, d, memory_order_release);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return d;
}

void sl_shdict_registry_free(void)
{
    pthread_mutex_lock(&registry_lock);
    sl_shdict_t *d = atomic_exchange_explicit(&registry, NULL, memory_order_acq_rel);
    pthread_mutex_unlock(&registry_lock);
    while (d) {
        sl_shdict_t *next = atomic_load_explicit(&d->next_registered, memory_order_relaxed);
        destroy(d);
        d = next;
    }
}

/* ---- operations ---- */

static bool key_ok(const sl_shdict_t *d, const char *key, size_t klen)
{
    return d && key && klen > 0 && klen <= SL_SHDICT_MAX_KEY;
}

static uint64_t hash_key(const sl_shdict_t *d, const char *key, size_t klen)
{
    return sl_siphash24(d->k0, d->k1, key, klen);
}

int sl_shdict_get(sl_shdict_t *d, const char *key, size_t klen, char *buf, size_t cap, size_t *len,
                  int64_t *ttl_left_ms, int64_t now_ms)
{
    if (!key_ok(d, key, klen) || (!buf && cap > 0))
        return -1;
    uint64_t hash = hash_key(d, key, klen);
    struct stripe *st = stripe_of(d, hash);
    struct entry *garbage = NULL;
    int rc = 0;

    pthread_mutex_lock(&st->lock);
    struct entry *e = find(st, hash, key, klen);
    if (e && is_expired(e, now_ms)) {
        remove_entry(st, e, &garbage);
    } else if (e) {
        if (len)
            *len = e->vlen;
        if (e->vlen > cap) {
            rc = -1;
        } else {
            if (e->vlen)
                memcpy(buf, value_of(e), e->vlen);
            if (ttl_left_ms) {
                int64_t left;
                if (!e->expires)
                    *ttl_left_ms = -1;
                else
                    *ttl_left_ms = __builtin_sub_overflow(e->expires_ms, now_ms, &left) ? INT64_MAX
                                                                                        : left;
            }
            touch(st, e);
            rc = 1;
        }
    }
    pthread_mutex_unlock(&st->lock);
    free_list(garbage);
    return rc;
}

static int store(sl_shdict_t *d, const char *key, size_t klen, const char *val, size_t vlen,
                 int64_t ttl_ms, int64_t now_ms, bool only_if_absent)
{
    if (!key_ok(d, key, klen) || (!val && vlen > 0) || vlen > SL_SHDICT_MAX_VALUE || ttl_ms < 0)
        return -1;
    uint64_t hash = hash_key(d, key, klen);
    struct entry *fresh = entry_new(hash, key, klen, vlen);
    if (!fresh)
        return -1;
    fresh->vlen = (uint32_t)vlen;
    if (vlen)
        memcpy(value_of(fresh), val, vlen);
    set_expiry(fresh, ttl_ms, now_ms);

    struct stripe *st = stripe_of(d, hash);
    struct entry *garbage = NULL;
    bool grow = false;
    int rc;
    pthread_mutex_lock(&st->lock);
    struct entry *old = find(st, hash, key, klen);
    if (old && is_expired(old, now_ms)) {
        remove_entry(st, old, &garbage);
        old = NULL;
    }
    if (old && only_if_absent) {
        rc = 0;
    } else if (insert(d, st, fresh, old, &garbage, &grow) != 0) {
        rc = -1;
    } else {
        rc = only_if_absent ? 1 : 0;
        fresh = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    free(fresh);
    free_list(garbage);
    if (grow)
        grow_table(d, st);
    return rc;
}

int sl_shdict_set(sl_shdict_t *d, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t ttl_ms, int64_t now_ms)
{
    return store(d, key, klen, val, vlen, ttl_ms, now_ms, false);
}

int sl_shdict_add(sl_shdict_t *d, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t ttl_ms, int64_t now_ms)
{
    return store(d, key, klen, val, vlen, ttl_ms, now_ms, true);
}


/* Decimal int64 exactly: optional '-', then digits; nothing else. */
static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = n > 0 && s[0] == '-';
    if (neg)
        i = 1;
    if (i == n)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int digit = s[i] - '0';
        /* Accumulating towards the sign keeps INT64_MIN representable. */
        if (__builtin_mul_overflow(v, 10, &v) ||
            (neg ? __builtin_sub_overflow(v, digit, &v) : __builtin_add_overflow(v, digit, &v)))
            return false;
    }
    *out = v;
    return true;
}

int sl_shdict_incr(sl_shdict_t *d, const char *key, size_t klen, int64_t delta, int64_t init,
                   int64_t ttl_ms, int64_t now_ms, int64_t *out)
{
    if (!key_ok(d, key, klen) || ttl_ms < 0)
        return -1;
    uint64_t hash = hash_key(d, key, klen);
    struct stripe *st = stripe_of(d, hash);
    struct entry *fresh = NULL, *garbage = NULL;
    bool grow = false;
    int64_t result = 0;
    int rc;

    /* A counter is usually rewritten in place, which needs no memory; only
     * when a new entry is needed is the lock dropped to allocate one, and the
     * decision is then taken again since the key may have changed. */
    for (;;) {
        pthread_mutex_lock(&st->lock);
        struct entry *e = find(st, hash, key, klen);
        if (e && is_expired(e, now_ms)) {
            remove_entry(st, e, &garbage);
            e = NULL;
        }
        int64_t base = init;
        if (e && !parse_int64(value_of(e), e->vlen, &base)) {
            rc = -1;
            break;
        }
        if (__builtin_add_overflow(base, delta, &result)) {
            rc = -1;
            break;
        }
        char text[INT_TEXT_MAX];
        size_t n = sl_format_int64(result, text);
        if (e && n <= e->cap) {
            memcpy(value_of(e), text, n);
            e->vlen = (uint32_t)n;
            touch(st, e);
            rc = 0;
            break;
        }
        if (!fresh) {
            pthread_mutex_unlock(&st->lock);
            free_list(garbage);
            garbage = NULL;
            fresh = entry_new(hash, key, klen, INT_TEXT_MAX);
            if (!fresh)
                return -1;
            continue;
        }
        memcpy(value_of(fresh), text, n);
        fresh->vlen = (uint32_t)n;
        if (e) {
            fresh->expires = e->expires;
            fresh->expires_ms = e->expires_ms;
        } else {
            set_expiry(fresh, ttl_ms, now_ms);
        }
        rc = insert(d, st, fresh, e, &garbage, &grow);
        if (rc == 0)
            fresh = NULL;
        break;
    }
    pthread_mutex_unlock(&st->lock);
    free(fresh);
    free_list(garbage);
    if (grow)
        grow_table(d, st);
    if (rc == 0 && out)
        *out = result;
    return rc;
}

int sl_shdict_delete(sl_shdict_t *d, const char *key, size_t klen)
{
    if (!key_ok(d, key, klen))
        return -1;
    uint64_t hash = hash_key(d, key, klen);
    struct stripe *st = stripe_of(d, hash);
    struct entry *garbage = NULL;
    int rc = 0;
    /* Whether it had expired cannot be told without a time; deleting takes
     * none, so a present-but-expired entry counts as deleted. */
    pthread_mutex_lock(&st->lock);
    struct entry *e = find(st, hash, key, klen);
    if (e) {
        remove_entry(st, e, &garbage);
        rc = 1;
    }
    pthread_mutex_unlock(&st->lock);
    free_list(garbage);
    return rc;
}

/* Removes expired entries of one slot while *left allows; false if it
 * stopped early. */
static bool sweep_slot(struct stripe *st, size_t idx, int64_t now_ms, int *left,
                       struct entry **garbage)
{
    struct entry **pp = &st->slots[idx];
    while (*pp) {
        struct entry *e = *pp;
        if (!is_expired(e, now_ms)) {
            pp = &e->chain;
            continue;
        }
        if (*left == 0)
            return false;
        *pp = e->chain;
        lru_unlink(st, e);
        st->count--;
        st->used -= charge(e);
        e->chain = *garbage;
        *garbage = e;
        (*left)--;
    }
    return true;
}

int sl_shdict_sweep(sl_shdict_t *d, int max, int64_t now_ms)
{
    if (!d || max <= 0)
        return 0;
    int left = max;
    /* Starting where the last sweep left off spreads a small max over every
     * stripe instead of always favouring the first. */
    unsigned first = atomic_fetch_add_explicit(&d->sweep_start, 1, memory_order_relaxed);
    for (unsigned s = 0; s < d->n_stripes && left > 0; s++) {
        struct stripe *st = &d->stripes[(first + s) & (d->n_stripes - 1)];
        size_t scanned = 0;
        bool done = false;
        while (!done) {
            struct entry *garbage = NULL;
            pthread_mutex_lock(&st->lock);
            size_t n = st->n_slots;
            for (int i = 0; i < SWEEP_SLICE && scanned < n; i++) {
                size_t idx = st->sweep_slot & (n - 1);
                if (!sweep_slot(st, idx, now_ms, &left, &garbage))
                    break;
                st->sweep_slot = idx + 1;
                scanned++;
            }
            done = scanned >= n || left == 0;
            pthread_mutex_unlock(&st->lock);
            free_list(garbage);
        }
    }
    return max - left;
}

size_t sl_shdict_bytes_used(sl_shdict_t *d)
{
    if (!d)
        return 0;
    size_t total = 0;
    for (unsigned i = 0; i < d->n_stripes; i++) {
        pthread_mutex_lock(&d->stripes[i].lock);
        total += d->stripes[i].used;
        pthread_mutex_unlock(&d->stripes[i].lock);
    }
    return total;
}
