#include "balancer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retry.h"

/* Shares on a ring are off by about 1/sqrt(points per target): 100 points
 * leave a target 15-20 % over or under its share, 160 and a ring of at
 * least 2048 points (32 KiB) keep small upstreams within about 8 %. */
#define RING_POINTS_PER_WEIGHT 160
#define RING_MIN_POINTS 2048
/* Bounds one ring per upstream per worker to about 256 KiB however large the
 * configured weights are; the shares stay proportional. */
#define RING_MAX_POINTS 16384
#define EWMA_TAU_MS 10000.0
#define FAILURE_MIN_PENALTY_US 1000000.0
/* Doubling stops here: a run of failures must not push the target so far
 * out that, once healthy, the 10 s decay takes minutes to bring it back. */
#define FAILURE_MAX_PENALTY_US 10000000.0
/* Keeps a zero latency from erasing the in-flight factor of the score. */
#define EWMA_FLOOR_US 1.0

struct bal_target {
    int weight;
    int64_t current;        /* smooth weighted round robin */
    int inflight;
    bool sampled;
    double cost_us;         /* peak EWMA as of cost_at_ms */
    int64_t cost_at_ms;
};

struct ring_point {
    uint64_t hash;
    int idx;
};

struct sl_balancer {
    sl_balance_t strategy;
    sl_upstream_health_t *health;
    int n;
    struct bal_target *t;
    struct ring_point *ring;
    size_t ring_n;
    int *cand;              /* scratch: the usable targets of one pick */
    bool *seen;             /* scratch: targets met on one ring walk */
    unsigned rotation;      /* spreads ties when scores are equal */
    uint64_t own_rng;
};

/* FNV-1a over the bytes, then a multiply-xorshift finaliser: FNV alone
 * leaves the high bits of short, similar strings ("10.0.0.1:80",
 * "10.0.0.2:80") poorly mixed, and the ring orders by the whole word. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t hash_finish(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

#define HASH_SEED UINT64_C(0xcbf29ce484222325)

static uint64_t hash64(const void *data, size_t len)
{
    return hash_finish(hash_bytes(HASH_SEED, data, len));
}

static int ring_point_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Points are keyed by the target's name, not its index, so a reload that
 * adds or removes a target leaves the other targets' points in place. */
static int ring_build(sl_balancer_t *b, const sl_upstream_t *up)
{
    int64_t total_weight = 0;
    for (int i = 0; i < b->n; i++)
        total_weight += b->t[i].weight;
    double per_weight = RING_POINTS_PER_WEIGHT;
    if ((double)total_weight * per_weight < RING_MIN_POINTS)
        per_weight = (double)RING_MIN_POINTS / (double)total_weight;
    if ((double)total_weight * per_weight > RING_MAX_POINTS)
        per_weight = (double)RING_MAX_POINTS / (double)total_weight;
    size_t total = 0;
    int *points = malloc((size_t)b->n * sizeof *points);
    if (!points)
        return -1;
    for (int i = 0; i < b->n; i++) {
        double p = floor(b->t[i].weight * per_weight);
        points[i] = p < 1 ? 1 : (int)p;
        total += (size_t)points[i];
    }
    b->ring = malloc(total * sizeof *b->ring);
    if (!b->ring) {
        free(points);
        return -1;
    }
    for (int i = 0; i < b->n; i++) {
        const sl_target_t *tg = &up->targets[i];
        char fallback[300];
        const char *name = tg->name;
        if (!name) {
            snprintf(fallback, sizeof fallback, "%s:%d", tg->host ? tg->host : "", tg->port);
            name = fallback;
        }
        uint64_t base = hash_bytes(HASH_SEED, name, strlen(name));
        for (int k = 0; k < points[i]; k++) {
            /* Byte order spelled out so every machine builds the same ring:
             * gateways side by side then agree on where a key goes. */
            unsigned char point[5] = { '#', (unsigned char)k, (unsigned char)(k >> 8),
                                       (unsigned char)(k >> 16), (unsigned char)(k >> 24) };
            struct ring_point *rp = &b->ring[b->ring_n++];
            rp->hash = hash_finish(hash_bytes(base, point, sizeof point));
            rp->idx = i;
        }
    }
    free(points);
    qsort(b->ring, b->ring_n, sizeof *b->ring, ring_point_cmp);
    return 0;
}

sl_balancer_t *sl_balancer_new(const sl_upstream_t *up, sl_upstream_health_t *health)
{
    if (!up || up->n_targets < 0 || (up->n_targets > 0 && !up->targets))
        return NULL;
    sl_balancer_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->strategy = up->balance;
    b->health = health;
    b->n = up->n_targets;
    b->own_rng = (uint64_t)(uintptr_t)b;
    size_t n = b->n > 0 ? (size_t)b->n : 1;
    b->t = calloc(n, sizeof *b->t);
    b->cand = calloc(n, sizeof *b->cand);
    b->seen = calloc(n, sizeof *b->seen);
    if (!b->t || !b->cand || !b->seen)
        goto fail;
    for (int i = 0; i < b->n; i++)
        b->t[i].weight = up->targets[i].weight > 0 ? up->targets[i].weight : 1;
    if (b->strategy == SL_BALANCE_HASH && b->n > 0 && ring_build(b, up) != 0)
        goto fail;
    return b;
fail:
    sl_balancer_free(b);
    return NULL;
}

void sl_balancer_free(sl_balancer_t *b)
{
    if (!b)
        return;
    free(b->t);
    free(b->cand);
    free(b->seen);
    free(b->ring);
    free(b);
}

static sl_admit_t admit(sl_balancer_t *b, int idx, int64_t now_ms)
{
    return b->health ? sl_health_admit(b->health, idx, now_ms) : SL_ADMIT_YES;
}

/* Fills b->cand with the admitted, untried targets and returns how many.
 * A trial admission is handed out at once (returned as -1 - idx): it has
 * already been granted to us alone, and dropping it would leave the target
 * half-open with nobody testing it. */
static int collect_usable(sl_balancer_t *b, const bool *tried, int64_t now_ms)
{
    int k = 0;
    for (int i = 0; i < b->n; i++) {
        if (tried && tried[i])
            continue;
        switch (admit(b, i, now_ms)) {
        case SL_ADMIT_TRIAL:
            return -1 - i;
        case SL_ADMIT_YES:
            b->cand[k++] = i;
            break;
        case SL_ADMIT_NO:
            break;
        }
    }
    return k;
}

static int smooth_weighted_rr(sl_balancer_t *b, const int *cand, int k)
{
    int64_t total = 0;
    int best = -1;
    for (int j = 0; j < k; j++) {
        struct bal_target *t = &b->t[cand[j]];
        t->current += t->weight;
        total += t->weight;
        if (best < 0 || t->current > b->t[best].current)
            best = cand[j];
    }
    b->t[best].current -= total;
    return best;
}

/* a has fewer in flight per unit of weight than c; cross-multiplied so that
 * no division rounds two different loads together. */
static int load_cmp(const struct bal_target *a, const struct bal_target *c)
{
    int64_t l = (int64_t)a->inflight * c->weight;
    int64_t r = (int64_t)c->inflight * a->weight;
    return (l > r) - (l < r);
}

static int least_conn(sl_balancer_t *b, int k)
{
    int best = b->cand[0];
    for (int j = 1; j < k; j++)
        if (load_cmp(&b->t[b->cand[j]], &b->t[best]) < 0)
            best = b->cand[j];
    int ties = 0;
    for (int j = 0; j < k; j++)
        if (load_cmp(&b->t[b->cand[j]], &b->t[best]) == 0)
            b->cand[ties++] = b->cand[j];
    return smooth_weighted_rr(b, b->cand, ties);
}

static size_t ring_lower_bound(const sl_balancer_t *b, uint64_t h)
{
    size_t lo = 0, hi = b->ring_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == b->ring_n ? 0 : lo;
}

static int hash_pick(sl_balancer_t *b, const char *key, size_t key_len, const bool *tried,
                     int64_t now_ms, bool *trial)
{
    if (b->ring_n == 0)
        return -1;
    memset(b->seen, 0, (size_t)b->n * sizeof *b->seen);
    size_t pos = ring_lower_bound(b, hash64(key, key_len));
    int distinct = 0;
    for (size_t step = 0; step < b->ring_n && distinct < b->n; step++) {
        int i = b->ring[(pos + step) % b->ring_n].idx;
        if (b->seen[i])
            continue;
        b->seen[i] = true;
        distinct++;
        if (tried && tried[i])
            continue;
        sl_admit_t a = admit(b, i, now_ms);
        if (a == SL_ADMIT_NO)
            continue;
        *trial = a == SL_ADMIT_TRIAL;
        return i;
    }
    return -1;
}

static double cost_at(const struct bal_target *t, int64_t now_ms)
{
    int64_t dt = now_ms - t->cost_at_ms;
    return dt > 0 ? t->cost_us * exp(-(double)dt / EWMA_TAU_MS) : t->cost_us;
}

static void cost_observe(struct bal_target *t, double sample_us, int64_t now_ms)
{
    if (!t->sampled) {
        t->sampled = true;
        t->cost_us = sample_us;
        t->cost_at_ms = now_ms;
        return;
    }
    int64_t dt = now_ms - t->cost_at_ms;
    double keep = dt > 0 ? exp(-(double)dt / EWMA_TAU_MS) : 1.0;
    double blended = t->cost_us * keep + sample_us * (1.0 - keep);
    t->cost_us = sample_us > blended ? sample_us : blended;
    /* A clock that steps back must not make later reads decay backwards. */
    if (dt > 0)
        t->cost_at_ms = now_ms;
}

static double ewma_score(const struct bal_target *t, double unsampled_cost, int64_t now_ms)
{
    double cost = t->sampled ? cost_at(t, now_ms) : unsampled_cost;
    if (cost < EWMA_FLOOR_US)
        cost = EWMA_FLOOR_US;
    return cost * (t->inflight + 1) / t->weight;
}

static int ewma_pick(sl_balancer_t *b, int k, int64_t now_ms, uint64_t *rng)
{
    double best_cost = -1;
    for (int j = 0; j < k; j++) {
        const struct bal_target *t = &b->t[b->cand[j]];
        double c = t->sampled ? cost_at(t, now_ms) : -1;
        if (c >= 0 && (best_cost < 0 || c < best_cost))
            best_cost = c;
    }
    if (best_cost < 0)
        best_cost = EWMA_FLOOR_US;
    if (k > 2) {
        int x = (int)(sl_rng_next(rng) % (uint64_t)k);
        int y = (int)(sl_rng_next(rng) % (uint64_t)(k - 1));
        if (y >= x)
            y++;
        int a = b->cand[x], c = b->cand[y];
        return ewma_score(&b->t[c], best_cost, now_ms) < ewma_score(&b->t[a], best_cost, now_ms)
                   ? c : a;
    }
    int start = (int)(b->rotation++ % (unsigned)k);
    int best = b->cand[start];
    double best_score = ewma_score(&b->t[best], best_cost, now_ms);
    for (int j = 1; j < k; j++) {
        int i = b->cand[(start + j) % k];
        double s = ewma_score(&b->t[i], best_cost, now_ms);
        if (s < best_score) {
            best = i;
            best_score = s;
        }
    }
    return best;
}

int sl_balancer_pick(sl_balancer_t *b, const char *hash_key, size_t key_len, const bool *tried,
                     int64_t now_ms, uint64_t *rng, bool *trial)
{
    bool trial_unused;
    if (!trial)
        trial = &trial_unused;
    *trial = false;
    if (!b || b->n == 0)
        return -1;
    if (!rng)
        rng = &b->own_rng;
    if (b->strategy == SL_BALANCE_HASH && hash_key)
        return hash_pick(b, hash_key, key_len, tried, now_ms, trial);
    int k = collect_usable(b, tried, now_ms);
    if (k < 0) {
        *trial = true;
        return -1 - k;
    }
    if (k == 0)
        return -1;
    switch (b->strategy) {
    case SL_BALANCE_LEAST_CONN:
        return least_conn(b, k);
    case SL_BALANCE_EWMA:
        return ewma_pick(b, k, now_ms, rng);
    case SL_BALANCE_ROUND_ROBIN:
    case SL_BALANCE_HASH:
    default:
        return smooth_weighted_rr(b, b->cand, k);
    }
}

void sl_balancer_start(sl_balancer_t *b, int idx)
{
    if (b && idx >= 0 && idx < b->n)
        b->t[idx].inflight++;
}

void sl_balancer_done(sl_balancer_t *b, int idx, bool success, bool was_trial, int64_t latency_us,
                      int64_t now_ms)
{
    if (!b || idx < 0 || idx >= b->n)
        return;
    struct bal_target *t = &b->t[idx];
    if (t->inflight > 0)
        t->inflight--;
    double sample = latency_us > 0 ? (double)latency_us : 0.0;
    if (!success) {
        double penalty = t->sampled ? 2.0 * cost_at(t, now_ms) : 0.0;
        if (penalty < FAILURE_MIN_PENALTY_US)
            penalty = FAILURE_MIN_PENALTY_US;
        if (penalty > FAILURE_MAX_PENALTY_US)
            penalty = FAILURE_MAX_PENALTY_US;
        if (sample < penalty)
            sample = penalty;
    }
    cost_observe(t, sample, now_ms);
    if (b->health)
        sl_health_report(b->health, idx, success, was_trial, now_ms);
}

void sl_balancer_cancel(sl_balancer_t *b, int idx, bool was_trial)
{
    if (!b || idx < 0 || idx >= b->n)
        return;
    if (b->t[idx].inflight > 0)
        b->t[idx].inflight--;
    if (was_trial && b->health)
        sl_health_release_trial(b->health, idx);
}
