#include "health.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>

/* The circuit state and the time it may leave OPEN live in one word so that
 * opening (state + deadline) is a single CAS: with two variables a second
 * failure racing the first could extend or tear the deadline. */
#define CIRCUIT_MASK   UINT64_C(3)
#define CIRCUIT_SHIFT  2
#define MAX_UNTIL_MS   (INT64_MAX >> CIRCUIT_SHIFT)

/* What a half-open target is expected to cost a client that retries: the
 * trial's fate is unknown, and Retry-After has whole-second granularity. */
#define HALF_OPEN_WAIT_MS 1000
#define MIN_DOWN_WAIT_MS  1000

struct target_health {
    _Atomic uint64_t circuit;   /* sl_circuit_t | open_until << CIRCUIT_SHIFT */
    atomic_int fails;           /* consecutive passive failures */
    atomic_bool down;           /* active-check verdict */
    atomic_int active_ok;       /* consecutive active successes */
    atomic_int active_fail;     /* consecutive active failures */
};

struct sl_upstream_health {
    int n;
    int max_fails;
    int64_t open_ms;
    int healthy;
    int unhealthy;
    int64_t interval_ms;
    struct target_health t[];
};

static uint64_t circuit_word(sl_circuit_t state, int64_t until_ms)
{
    if (until_ms < 0)
        until_ms = 0;
    if (until_ms > MAX_UNTIL_MS)
        until_ms = MAX_UNTIL_MS;
    return ((uint64_t)until_ms << CIRCUIT_SHIFT) | (uint64_t)state;
}

static sl_circuit_t word_state(uint64_t w) { return (sl_circuit_t)(w & CIRCUIT_MASK); }

static int64_t word_until(uint64_t w) { return (int64_t)(w >> CIRCUIT_SHIFT); }

static int64_t open_deadline(int64_t now_ms, int64_t open_ms)
{
    return now_ms > MAX_UNTIL_MS - open_ms ? MAX_UNTIL_MS : now_ms + open_ms;
}

/* Saturating so that a target checked for years cannot wrap its streak. */
static int streak_increment(atomic_int *counter)
{
    int v = atomic_load(counter);
    while (v < INT_MAX && !atomic_compare_exchange_weak(counter, &v, v + 1))
        ;
    return v < INT_MAX ? v + 1 : INT_MAX;
}

static struct target_health *target(const sl_upstream_health_t *h, int idx)
{
    if (!h || idx < 0 || idx >= h->n)
        return NULL;
    return (struct target_health *)&h->t[idx];
}

sl_upstream_health_t *sl_health_new(const sl_upstream_t *up)
{
    if (!up || up->n_targets < 0)
        return NULL;
    size_t n = (size_t)up->n_targets;
    sl_upstream_health_t *h = malloc(sizeof *h + n * sizeof h->t[0]);
    if (!h)
        return NULL;
    h->n = up->n_targets;
    h->max_fails = up->max_fails > 0 ? up->max_fails : 0;
    h->open_ms = up->open_ms > 0 ? up->open_ms : 0;
    h->healthy = up->active.healthy > 0 ? up->active.healthy : 1;
    h->unhealthy = up->active.unhealthy > 0 ? up->active.unhealthy : 1;
    h->interval_ms = up->active.interval_ms;
    for (size_t i = 0; i < n; i++) {
        atomic_init(&h->t[i].circuit, circuit_word(SL_CIRCUIT_CLOSED, 0));
        atomic_init(&h->t[i].fails, 0);
        atomic_init(&h->t[i].down, false);
        atomic_init(&h->t[i].active_ok, 0);
        atomic_init(&h->t[i].active_fail, 0);
    }
    return h;
}

void sl_health_free(sl_upstream_health_t *h) { free(h); }

sl_admit_t sl_health_admit(sl_upstream_health_t *h, int idx, int64_t now_ms)
{
    struct target_health *t = target(h, idx);
    if (!t || atomic_load(&t->down))
        return SL_ADMIT_NO;
    uint64_t w = atomic_load(&t->circuit);
    for (;;) {
        switch (word_state(w)) {
        case SL_CIRCUIT_CLOSED:
            return SL_ADMIT_YES;
        case SL_CIRCUIT_HALF_OPEN:
            return SL_ADMIT_NO;
        case SL_CIRCUIT_OPEN:
            if (now_ms < word_until(w))
                return SL_ADMIT_NO;
            /* The CAS is what makes the trial unique across workers; on
             * failure w holds the newer state and is judged again. */
            if (atomic_compare_exchange_strong(&t->circuit, &w,
                                               circuit_word(SL_CIRCUIT_HALF_OPEN, 0)))
                return SL_ADMIT_TRIAL;
            break;
        default:
            return SL_ADMIT_NO;
        }
    }
}

static void open_circuit_from(struct target_health *t, uint64_t expected, int64_t until_ms)
{
    atomic_compare_exchange_strong(&t->circuit, &expected,
                                   circuit_word(SL_CIRCUIT_OPEN, until_ms));
}

void sl_health_report(sl_upstream_health_t *h, int idx, bool success, bool was_trial,
                      int64_t now_ms)
{
    struct target_health *t = target(h, idx);
    if (!t)
        return;
    uint64_t half_open = circuit_word(SL_CIRCUIT_HALF_OPEN, 0);
    if (was_trial && atomic_load(&t->circuit) == half_open) {
        if (success) {
            atomic_store(&t->fails, 0);
            atomic_compare_exchange_strong(&t->circuit, &half_open,
                                           circuit_word(SL_CIRCUIT_CLOSED, 0));
        } else {
            open_circuit_from(t, half_open, open_deadline(now_ms, h->open_ms));
        }
        return;
    }
    if (success) {
        /* Read first: a plain store on every success would bounce the cache
         * line between workers for nothing. */
        if (atomic_load(&t->fails) != 0)
            atomic_store(&t->fails, 0);
        return;
    }
    if (h->max_fails == 0)
        return;
    if (streak_increment(&t->fails) >= h->max_fails)
        open_circuit_from(t, circuit_word(SL_CIRCUIT_CLOSED, 0), open_deadline(now_ms, h->open_ms));
}

void sl_health_release_trial(sl_upstream_health_t *h, int idx)
{
    struct target_health *t = target(h, idx);
    if (!t)
        return;
    /* Back to open with the deadline already passed: the next pick anywhere
     * becomes the trial, as if this one had never been handed out. */
    uint64_t half_open = circuit_word(SL_CIRCUIT_HALF_OPEN, 0);
    atomic_compare_exchange_strong(&t->circuit, &half_open, circuit_word(SL_CIRCUIT_OPEN, 0));
}

bool sl_health_active_result(sl_upstream_health_t *h, int idx, bool ok)
{
    struct target_health *t = target(h, idx);
    if (!t)
        return false;
    if (ok) {
        atomic_store(&t->active_fail, 0);
        if (streak_increment(&t->active_ok) < h->healthy)
            return false;
        bool was_down = true;
        if (!atomic_compare_exchange_strong(&t->down, &was_down, false))
            return false;
        /* A target proven healthy again starts with a clean slate rather
         * than waiting out a circuit opened while it was failing. */
        atomic_store(&t->fails, 0);
        atomic_store(&t->circuit, circuit_word(SL_CIRCUIT_CLOSED, 0));
        return true;
    }
    atomic_store(&t->active_ok, 0);
    if (streak_increment(&t->active_fail) < h->unhealthy)
        return false;
    bool was_down = false;
    return atomic_compare_exchange_strong(&t->down, &was_down, true);
}

sl_circuit_t sl_health_circuit(const sl_upstream_health_t *h, int idx)
{
    struct target_health *t = target(h, idx);
    return t ? word_state(atomic_load(&t->circuit)) : SL_CIRCUIT_CLOSED;
}

bool sl_health_active_down(const sl_upstream_health_t *h, int idx)
{
    struct target_health *t = target(h, idx);
    return t ? atomic_load(&t->down) : false;
}

int64_t sl_health_retry_after_ms(const sl_upstream_health_t *h, int64_t now_ms)
{
    int64_t down_wait = MIN_DOWN_WAIT_MS;
    if (h && h->interval_ms > down_wait)
        down_wait = h->interval_ms;
    if (!h || h->n == 0)
        return down_wait;
    int64_t best = INT64_MAX;
    for (int i = 0; i < h->n && best > 0; i++) {
        struct target_health *t = target(h, i);
        int64_t wait;
        uint64_t w = atomic_load(&t->circuit);
        if (atomic_load(&t->down)) {
            wait = down_wait;
        } else if (word_state(w) == SL_CIRCUIT_OPEN) {
            wait = word_until(w) > now_ms ? word_until(w) - now_ms : 0;
        } else if (word_state(w) == SL_CIRCUIT_HALF_OPEN) {
            wait = HALF_OPEN_WAIT_MS;
        } else {
            wait = 0;
        }
        if (wait < best)
            best = wait;
    }
    return best;
}
