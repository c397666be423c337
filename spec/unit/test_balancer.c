/* Per-worker target picking (every strategy, with health and tried[]), plus
 * the retry policy pieces the proxy pairs with it: backoff, budget, PRNG and
 * the status/method rule. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "check.h"
#include "health.h"
#include "retry.h"

#define MAX_T 8

struct fixture {
    sl_upstream_t up;
    sl_target_t targets[MAX_T];
    char names[MAX_T][32];
};

/* Targets are named after their letter (a = 10.0.0.1:80, ...), weights as
 * given; everything else as the config loader's defaults. */
static void fixture_init(struct fixture *f, sl_balance_t balance, int n, const int *weights)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof f->names[i], "10.0.0.%d:80", i + 1);
        f->targets[i].name = f->names[i];
        f->targets[i].host = f->names[i];
        f->targets[i].port = 80;
        f->targets[i].weight = weights[i];
    }
    f->up.name = "backend";
    f->up.targets = f->targets;
    f->up.n_targets = n;
    f->up.balance = balance;
    f->up.max_fails = 1;
    f->up.open_ms = 1000;
    f->up.active.interval_ms = 1000;
    f->up.active.healthy = 1;
    f->up.active.unhealthy = 1;
}

/* n picks as letters ('-' for none), each request finishing at once. */
static const char *picks(sl_balancer_t *b, int n, const bool *tried, int64_t now)
{
    static char out[256];
    uint64_t rng = 42;
    int i;
    for (i = 0; i < n && i < (int)sizeof out - 1; i++) {
        bool trial;
        int idx = sl_balancer_pick(b, NULL, 0, tried, now, &rng, &trial);
        out[i] = idx < 0 ? '-' : (char)('a' + idx);
    }
    out[i] = '\0';
    return out;
}

static const char *rr_sequence(int n, const int *weights, int count)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_ROUND_ROBIN, n, weights);
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    static char out[256];
    snprintf(out, sizeof out, "%s", picks(b, count, NULL, 0));
    sl_balancer_free(b);
    return out;
}

static void test_round_robin_sequences(void)
{
    CHECK_STR("aabacaa" "aabacaa", rr_sequence(3, (int[]){ 5, 1, 1 }, 14));
    CHECK_STR("abcabc", rr_sequence(3, (int[]){ 1, 1, 1 }, 6));
    CHECK_STR("abaaba", rr_sequence(2, (int[]){ 2, 1 }, 6));
    CHECK_STR("ababa", rr_sequence(2, (int[]){ 3, 2 }, 5));
    CHECK_STR("abacba", rr_sequence(3, (int[]){ 3, 2, 1 }, 6));
    CHECK_STR("aaaa", rr_sequence(1, (int[]){ 7 }, 4));
    /* Weights below 1 count as 1. */
    CHECK_STR("abab", rr_sequence(2, (int[]){ 0, -3 }, 4));
}

static void count_picks(sl_balancer_t *b, int n, int64_t now, int *counts, int n_targets)
{
    uint64_t rng = 7;
    memset(counts, 0, (size_t)n_targets * sizeof *counts);
    for (int i = 0; i < n; i++) {
        bool trial;
        int idx = sl_balancer_pick(b, NULL, 0, NULL, now, &rng, &trial);
        if (idx >= 0) {
            counts[idx]++;
            sl_balancer_start(b, idx);
            sl_balancer_done(b, idx, true, trial, 1000, now);
        }
    }
}

static void test_round_robin_distribution(void)
{
    struct fixture f;
    int c[MAX_T];
    fixture_init(&f, SL_BALANCE_ROUND_ROBIN, 3, (int[]){ 5, 3, 2 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    count_picks(b, 10000, 0, c, 3);
    CHECK_INT(5000, c[0]);
    CHECK_INT(3000, c[1]);
    CHECK_INT(2000, c[2]);
    sl_balancer_free(b);

    fixture_init(&f, SL_BALANCE_ROUND_ROBIN, 4, (int[]){ 1, 1, 1, 1 });
    b = sl_balancer_new(&f.up, NULL);
    count_picks(b, 10000, 0, c, 4);
    for (int i = 0; i < 4; i++)
        CHECK_INT(2500, c[i]);
    sl_balancer_free(b);
}

static void test_round_robin_skips_down_and_tried(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_ROUND_ROBIN, 3, (int[]){ 5, 1, 1 });
    sl_upstream_health_t *h = sl_health_new(&f.up);
    sl_balancer_t *b = sl_balancer_new(&f.up, h);
    CHECK_INT(true, sl_health_active_result(h, 1, false));
    /* Weights 5,1 over a and c. */
    CHECK_STR("aaacaa", picks(b, 6, NULL, 0));
    CHECK_STR("ccc", picks(b, 3, (bool[]){ true, false, false }, 0));
    CHECK_STR("--", picks(b, 2, (bool[]){ true, false, true }, 0));
    CHECK_INT(true, sl_health_active_result(h, 1, true));
    CHECK_STR("bbb", picks(b, 3, (bool[]){ true, false, true }, 0));
    sl_health_active_result(h, 0, false);
    sl_health_active_result(h, 1, false);
    sl_health_active_result(h, 2, false);
    CHECK_STR("---", picks(b, 3, NULL, 0));
    sl_balancer_free(b);
    sl_health_free(h);
}

static int pick_one(sl_balancer_t *b, const bool *tried, int64_t now, bool *trial)
{
    uint64_t rng = 99;
    return sl_balancer_pick(b, NULL, 0, tried, now, &rng, trial);
}

static void test_pick_hands_out_the_trial(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_ROUND_ROBIN, 3, (int[]){ 1, 1, 1 });
    sl_upstream_health_t *h = sl_health_new(&f.up);
    sl_balancer_t *b = sl_balancer_new(&f.up, h);
    bool trial = true;
    CHECK_INT(0, pick_one(b, NULL, 0, &trial));
    CHECK_INT(false, trial);
    sl_balancer_start(b, 0);
    sl_balancer_done(b, 0, false, false, 5000, 0);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_STR("bcbc", picks(b, 4, NULL, 999));
    /* A tried target's trial is not spent. */
    CHECK_INT(1, pick_one(b, (bool[]){ true, false, false }, 1000, &trial));
    CHECK_INT(false, trial);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(0, pick_one(b, NULL, 1000, &trial));
    CHECK_INT(true, trial);
    CHECK_INT(SL_CIRCUIT_HALF_OPEN, sl_health_circuit(h, 0));
    sl_balancer_start(b, 0);
    CHECK_STR("cbcb", picks(b, 4, NULL, 1001));
    sl_balancer_done(b, 0, true, true, 2000, 1100);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    /* a rejoins the rotation where its round-robin credit left it. */
    CHECK_STR("cbcabc", picks(b, 6, NULL, 1100));
    /* NULL trial pointer is allowed. */
    uint64_t rng = 1;
    CHECK_INT(0, sl_balancer_pick(b, NULL, 0, NULL, 1100, &rng, NULL));
    sl_balancer_free(b);
    sl_health_free(h);
}

static void test_least_conn_follows_in_flight(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_LEAST_CONN, 3, (int[]){ 1, 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    bool trial;
    int p = pick_one(b, NULL, 0, &trial);
    CHECK_INT(0, p);
    sl_balancer_start(b, p);
    p = pick_one(b, NULL, 0, &trial);
    CHECK_INT(1, p);
    sl_balancer_start(b, p);
    p = pick_one(b, NULL, 0, &trial);
    CHECK_INT(2, p);
    sl_balancer_start(b, p);
    /* a:1 b:1 c:1 -> b finishes, so b is the least loaded. */
    sl_balancer_done(b, 1, true, false, 100, 0);
    CHECK_INT(1, pick_one(b, NULL, 0, &trial));
    CHECK_INT(1, pick_one(b, NULL, 0, &trial));
    sl_balancer_start(b, 1);
    sl_balancer_start(b, 1);
    /* a:1 b:2 c:1 -> a and c tie; smooth round robin between them, with
     * the credit a spent on the very first pick. */
    CHECK_STR("cca", picks(b, 3, NULL, 0));
    CHECK_STR("ccc", picks(b, 3, (bool[]){ true, false, false }, 0));
    sl_balancer_free(b);

    /* Relative to weight: a (weight 2) with 1 in flight beats b (weight 1)
     * with 1, and is equal to b when it has 2. */
    fixture_init(&f, SL_BALANCE_LEAST_CONN, 2, (int[]){ 2, 1 });
    b = sl_balancer_new(&f.up, NULL);
    sl_balancer_start(b, 0);
    CHECK_INT(1, pick_one(b, NULL, 0, &trial));
    sl_balancer_start(b, 1);
    CHECK_INT(0, pick_one(b, NULL, 0, &trial));
    sl_balancer_start(b, 0);
    CHECK_STR("aba", picks(b, 3, NULL, 0));
    sl_balancer_start(b, 0);
    CHECK_STR("bbb", picks(b, 3, NULL, 0));
    sl_balancer_free(b);
}

static void test_least_conn_idle_spreads_by_weight(void)
{
    struct fixture f;
    int c[MAX_T];
    fixture_init(&f, SL_BALANCE_LEAST_CONN, 3, (int[]){ 1, 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    count_picks(b, 3000, 0, c, 3);
    CHECK_INT(1000, c[0]);
    CHECK_INT(1000, c[1]);
    CHECK_INT(1000, c[2]);
    sl_balancer_free(b);

    fixture_init(&f, SL_BALANCE_LEAST_CONN, 2, (int[]){ 3, 1 });
    b = sl_balancer_new(&f.up, NULL);
    count_picks(b, 10000, 0, c, 2);
    CHECK_INT(7500, c[0]);
    CHECK_INT(2500, c[1]);
    sl_balancer_free(b);
}

#define N_KEYS 1000

static int hash_pick(sl_balancer_t *b, const char *key, const bool *tried, int64_t now)
{
    uint64_t rng = 5;
    bool trial;
    return sl_balancer_pick(b, key, strlen(key), tried, now, &rng, &trial);
}

static void map_keys(sl_balancer_t *b, int *map, int64_t now)
{
    char key[32];
    for (int k = 0; k < N_KEYS; k++) {
        snprintf(key, sizeof key, "user-%d", k);
        map[k] = hash_pick(b, key, NULL, now);
    }
}

static void test_hash_is_sticky_and_moves_only_failed_keys(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_HASH, 4, (int[]){ 1, 1, 1, 1 });
    sl_upstream_health_t *h = sl_health_new(&f.up);
    sl_balancer_t *b = sl_balancer_new(&f.up, h);
    static int before[N_KEYS], again[N_KEYS], after[N_KEYS], back[N_KEYS];
    map_keys(b, before, 0);
    map_keys(b, again, 0);
    int differ = 0, unmapped = 0, counts[4] = { 0 };
    for (int k = 0; k < N_KEYS; k++) {
        differ += before[k] != again[k];
        if (before[k] < 0)
            unmapped++;
        else
            counts[before[k]]++;
    }
    CHECK_INT(0, differ);
    CHECK_INT(0, unmapped);
    /* Every target owns keys, and none owns more than twice its share. */
    for (int i = 0; i < 4; i++) {
        CHECK_INT(true, counts[i] > 0);
        CHECK_INT(true, counts[i] < 2 * N_KEYS / 4);
    }

    CHECK_INT(true, sl_health_active_result(h, 2, false));
    map_keys(b, after, 0);
    int moved_from_others = 0, moved_from_c = 0, still_on_c = 0;
    for (int k = 0; k < N_KEYS; k++) {
        if (before[k] == 2) {
            moved_from_c += after[k] != 2 && after[k] >= 0;
            still_on_c += after[k] == 2;
        } else {
            moved_from_others += after[k] != before[k];
        }
    }
    CHECK_INT(0, moved_from_others);
    CHECK_INT(counts[2], moved_from_c);
    CHECK_INT(0, still_on_c);

    CHECK_INT(true, sl_health_active_result(h, 2, true));
    map_keys(b, back, 0);
    differ = 0;
    for (int k = 0; k < N_KEYS; k++)
        differ += before[k] != back[k];
    CHECK_INT(0, differ);
    sl_balancer_free(b);
    sl_health_free(h);
}

static void test_hash_retry_walks_to_next_target(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_HASH, 3, (int[]){ 1, 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    char key[32];
    int same_second = 0, distinct_three = 0;
    for (int k = 0; k < 200; k++) {
        snprintf(key, sizeof key, "session-%d", k);
        bool tried[3] = { false, false, false };
        int first = hash_pick(b, key, tried, 0);
        tried[first] = true;
        int second = hash_pick(b, key, tried, 0);
        same_second += second == hash_pick(b, key, tried, 0);
        tried[second] = true;
        int third = hash_pick(b, key, tried, 0);
        distinct_three += first != second && second != third && first != third && third >= 0;
        tried[third] = true;
        CHECK_INT(-1, hash_pick(b, key, tried, 0));
    }
    CHECK_INT(200, same_second);
    CHECK_INT(200, distinct_three);
    sl_balancer_free(b);
}

static void test_hash_keys_follow_target_names_not_order(void)
{
    struct fixture f1, f2;
    fixture_init(&f1, SL_BALANCE_HASH, 3, (int[]){ 1, 1, 1 });
    fixture_init(&f2, SL_BALANCE_HASH, 3, (int[]){ 1, 1, 1 });
    /* Same targets, listed c, a, b. */
    f2.targets[0].name = f1.names[2];
    f2.targets[1].name = f1.names[0];
    f2.targets[2].name = f1.names[1];
    sl_balancer_t *b1 = sl_balancer_new(&f1.up, NULL);
    sl_balancer_t *b2 = sl_balancer_new(&f2.up, NULL);
    static int m1[N_KEYS], m2[N_KEYS];
    map_keys(b1, m1, 0);
    map_keys(b2, m2, 0);
    int same_name = 0;
    for (int k = 0; k < N_KEYS; k++)
        same_name += strcmp(f1.targets[m1[k]].name, f2.targets[m2[k]].name) == 0;
    CHECK_INT(N_KEYS, same_name);
    sl_balancer_free(b1);
    sl_balancer_free(b2);
}

static void test_hash_weights_and_fallbacks(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_HASH, 2, (int[]){ 3, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    static int map[N_KEYS];
    map_keys(b, map, 0);
    int on_a = 0;
    for (int k = 0; k < N_KEYS; k++)
        on_a += map[k] == 0;
    /* Expected 750 of 1000; a ring of 400 points is within a few percent. */
    CHECK_INT(true, on_a > 650 && on_a < 850);
    /* A NULL key falls back to round robin. */
    CHECK_STR("aaba", picks(b, 4, NULL, 0));
    /* The key is its first key_len bytes. */
    uint64_t rng = 1;
    bool trial;
    int empty1 = sl_balancer_pick(b, "", 0, NULL, 0, &rng, &trial);
    int empty2 = sl_balancer_pick(b, "ignored", 0, NULL, 0, &rng, &trial);
    CHECK_INT(empty1, empty2);
    sl_balancer_free(b);

    /* Huge weights still build a bounded ring with both targets on it. */
    fixture_init(&f, SL_BALANCE_HASH, 2, (int[]){ 1000000, 1 });
    b = sl_balancer_new(&f.up, NULL);
    bool tried[2] = { true, false };
    CHECK_INT(1, hash_pick(b, "any", tried, 0));
    tried[0] = false;
    tried[1] = true;
    CHECK_INT(0, hash_pick(b, "any", tried, 0));
    sl_balancer_free(b);

    /* Targets without a name hash by host:port. */
    fixture_init(&f, SL_BALANCE_HASH, 2, (int[]){ 1, 1 });
    f.targets[0].name = NULL;
    f.targets[1].name = NULL;
    f.targets[1].host = NULL;
    b = sl_balancer_new(&f.up, NULL);
    CHECK_INT(true, hash_pick(b, "k", NULL, 0) >= 0);
    sl_balancer_free(b);
}

static void test_hash_trial_only_when_walked(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_HASH, 2, (int[]){ 1, 1 });
    sl_upstream_health_t *h = sl_health_new(&f.up);
    sl_balancer_t *b = sl_balancer_new(&f.up, h);
    /* Find a key of each target. */
    char key_a[32] = "", key_b[32] = "";
    for (int k = 0; k < 100 && (!key_a[0] || !key_b[0]); k++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", k);
        int t = hash_pick(b, key, NULL, 0);
        snprintf(t == 0 ? key_a : key_b, 32, "%s", key);
    }
    sl_health_report(h, 0, false, false, 0);
    CHECK_INT(1, hash_pick(b, key_a, NULL, 500));
    CHECK_INT(1, hash_pick(b, key_b, NULL, 1000));
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    uint64_t rng = 3;
    bool trial = false;
    CHECK_INT(0, sl_balancer_pick(b, key_a, strlen(key_a), NULL, 1000, &rng, &trial));
    CHECK_INT(true, trial);
    CHECK_INT(1, hash_pick(b, key_a, NULL, 1000));
    sl_balancer_done(b, 0, true, true, 100, 1010);
    CHECK_INT(0, hash_pick(b, key_a, NULL, 1010));
    sl_balancer_free(b);
    sl_health_free(h);
}

static void ewma_sample(sl_balancer_t *b, int idx, bool ok, int64_t latency_us, int64_t now)
{
    sl_balancer_start(b, idx);
    sl_balancer_done(b, idx, ok, false, latency_us, now);
}

static void test_ewma_prefers_the_faster_target(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    /* No samples at all: in-flight decides, ties alternate. */
    CHECK_STR("abab", picks(b, 4, NULL, 0));
    ewma_sample(b, 0, true, 10000, 1000);
    ewma_sample(b, 1, true, 50000, 1000);
    CHECK_STR("aaaaaaaaaa", picks(b, 10, NULL, 1000));
    /* 10 ms x (4 + 1) = 50 ms ties with b; one more tips it. */
    for (int i = 0; i < 4; i++)
        sl_balancer_start(b, 0);
    CHECK_STR("abab", picks(b, 4, NULL, 1000));
    sl_balancer_start(b, 0);
    CHECK_STR("bbbb", picks(b, 4, NULL, 1000));
    sl_balancer_free(b);

    /* Peak: one slow answer counts at once, even within the same
     * millisecond, where a purely time-weighted average would not move. */
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 1 });
    b = sl_balancer_new(&f.up, NULL);
    ewma_sample(b, 0, true, 10000, 500);
    ewma_sample(b, 1, true, 50000, 500);
    CHECK_STR("aa", picks(b, 2, NULL, 500));
    ewma_sample(b, 0, true, 100000, 500);
    CHECK_STR("bb", picks(b, 2, NULL, 500));
    sl_balancer_free(b);

    /* Weight divides the score: 20 ms at weight 4 beats 10 ms at weight 1. */
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 4 });
    b = sl_balancer_new(&f.up, NULL);
    ewma_sample(b, 0, true, 10000, 0);
    ewma_sample(b, 1, true, 20000, 0);
    CHECK_STR("bbb", picks(b, 3, NULL, 0));
    sl_balancer_free(b);
}

static void test_ewma_new_target_counts_as_best(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    ewma_sample(b, 0, true, 10000, 0);
    ewma_sample(b, 0, true, 10000, 0);
    sl_balancer_start(b, 0);
    CHECK_STR("bbb", picks(b, 3, NULL, 0));
    sl_balancer_free(b);
}

static void test_ewma_power_of_two_never_picks_the_worst(void)
{
    struct fixture f;
    int c[MAX_T];
    fixture_init(&f, SL_BALANCE_EWMA, 3, (int[]){ 1, 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    ewma_sample(b, 0, true, 10000, 0);
    ewma_sample(b, 1, true, 20000, 0);
    ewma_sample(b, 2, true, 500000, 0);
    uint64_t rng = 12345;
    memset(c, 0, sizeof c);
    for (int i = 0; i < 3000; i++) {
        bool trial;
        c[sl_balancer_pick(b, NULL, 0, NULL, 0, &rng, &trial)]++;
    }
    CHECK_INT(0, c[2]);
    CHECK_INT(3000, c[0] + c[1]);
    /* a wins the pairs (a,b) and (a,c): about two thirds. */
    CHECK_INT(true, c[0] > 1800 && c[0] < 2200);
    /* Random candidates: rng NULL works too (the balancer's own state). */
    bool trial;
    int p = sl_balancer_pick(b, NULL, 0, NULL, 0, NULL, &trial);
    CHECK_INT(true, p == 0 || p == 1);
    /* With only two usable, the best is taken, no randomness. */
    CHECK_STR("bbbb", picks(b, 4, (bool[]){ true, false, false }, 0));
    sl_balancer_free(b);
}

static void test_ewma_abandons_a_failing_target(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 1 });
    f.up.max_fails = 0; /* keep the breaker out of it: EWMA alone must react */
    sl_upstream_health_t *h = sl_health_new(&f.up);
    sl_balancer_t *b = sl_balancer_new(&f.up, h);
    ewma_sample(b, 0, true, 1000, 0);
    ewma_sample(b, 1, true, 20000, 0);
    CHECK_STR("aaa", picks(b, 3, NULL, 0));
    /* One fast failure counts as 1 s. */
    ewma_sample(b, 0, false, 300, 0);
    CHECK_STR("bbbbb", picks(b, 5, NULL, 0));
    /* b must be 50x busier than a before a looks as good. */
    for (int i = 0; i < 49; i++)
        sl_balancer_start(b, 1);
    CHECK_STR("ab", picks(b, 2, NULL, 0));
    sl_balancer_start(b, 1);
    CHECK_STR("aa", picks(b, 2, NULL, 0));
    for (int i = 0; i < 50; i++)
        sl_balancer_done(b, 1, true, false, 20000, 0);
    /* A second failure doubles the penalty. */
    ewma_sample(b, 0, false, 300, 0);
    for (int i = 0; i < 98; i++)
        sl_balancer_start(b, 1);
    CHECK_STR("bb", picks(b, 2, NULL, 0));
    sl_balancer_start(b, 1);
    CHECK_STR("ab", picks(b, 2, NULL, 0));
    sl_balancer_free(b);
    sl_health_free(h);
}

static void test_ewma_failure_penalty_is_capped(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    /* 1, 2, 4, 8, then 10 s for every further failure. */
    for (int i = 0; i < 10; i++)
        ewma_sample(b, 0, false, 0, 0);
    ewma_sample(b, 1, true, 20000, 0);
    for (int i = 0; i < 498; i++)
        sl_balancer_start(b, 1);
    CHECK_STR("b", picks(b, 1, NULL, 0));
    sl_balancer_start(b, 1);
    sl_balancer_start(b, 1);
    CHECK_STR("a", picks(b, 1, NULL, 0));
    /* A failure slower than the penalty counts with its real latency. */
    ewma_sample(b, 0, false, 30000000, 0);
    CHECK_STR("b", picks(b, 1, NULL, 0));
    sl_balancer_free(b);
}

static void test_ewma_decays_so_a_penalised_target_is_tried_again(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_EWMA, 2, (int[]){ 1, 1 });
    sl_balancer_t *b = sl_balancer_new(&f.up, NULL);
    ewma_sample(b, 0, false, 0, 0);         /* a: 1 s at t=0 */
    ewma_sample(b, 1, true, 20000, 0);      /* b: 20 ms, kept fresh below */
    for (int64_t t = 1000; t <= 39000; t += 1000)
        ewma_sample(b, 1, true, 20000, t);
    /* 1 s x e^-3.9 = 20.2 ms: still worse than b. */
    CHECK_STR("b", picks(b, 1, NULL, 39000));
    ewma_sample(b, 1, true, 20000, 40000);
    /* 1 s x e^-4 = 18.3 ms. */
    CHECK_STR("a", picks(b, 1, NULL, 40000));
    /* a's next answer (100 ms) makes it worse than b again. */
    ewma_sample(b, 0, true, 100000, 40000);
    CHECK_STR("b", picks(b, 1, NULL, 40000));
    /* A clock stepping back neither crashes nor decays backwards. */
    ewma_sample(b, 0, true, 100000, 100);
    CHECK_STR("b", picks(b, 1, NULL, 100));
    sl_balancer_free(b);
}

static void test_balancer_bad_input(void)
{
    struct fixture f;
    fixture_init(&f, SL_BALANCE_ROUND_ROBIN, 2, (int[]){ 1, 1 });
    CHECK_INT(1, sl_balancer_new(NULL, NULL) == NULL);
    f.up.n_targets = -1;
    CHECK_INT(1, sl_balancer_new(&f.up, NULL) == NULL);
    f.up.n_targets = 2;
    f.up.targets = NULL;
    CHECK_INT(1, sl_balancer_new(&f.up, NULL) == NULL);
    sl_balancer_free(NULL);

    bool trial = true;
    uint64_t rng = 1;
    CHECK_INT(-1, sl_balancer_pick(NULL, NULL, 0, NULL, 0, &rng, &trial));
    CHECK_INT(false, trial);
    sl_balancer_start(NULL, 0);
    sl_balancer_done(NULL, 0, true, false, 1, 0);

    for (int s = SL_BALANCE_ROUND_ROBIN; s <= SL_BALANCE_EWMA; s++) {
        fixture_init(&f, (sl_balance_t)s, 0, NULL);
        sl_upstream_health_t *h = sl_health_new(&f.up);
        sl_balancer_t *b = sl_balancer_new(&f.up, h);
        CHECK_INT(1, b != NULL);
        trial = true;
        CHECK_INT(-1, sl_balancer_pick(b, "k", 1, NULL, 0, &rng, &trial));
        CHECK_INT(false, trial);
        sl_balancer_free(b);
        sl_health_free(h);
    }

    /* Out-of-range indexes are ignored, and done() without start() does
     * not drive the in-flight count negative. */
    fixture_init(&f, SL_BALANCE_LEAST_CONN, 2, (int[]){ 1, 1 });
    sl_upstream_health_t *h = sl_health_new(&f.up);
    sl_balancer_t *b = sl_balancer_new(&f.up, h);
    sl_balancer_start(b, -1);
    sl_balancer_start(b, 2);
    sl_balancer_done(b, 2, false, false, 1, 0);
    sl_balancer_done(b, -1, false, false, 1, 0);
    sl_balancer_done(b, 0, true, false, -50, 0);
    sl_balancer_done(b, 0, true, false, 1, 0);
    sl_balancer_start(b, 0);
    CHECK_STR("bbb", picks(b, 3, NULL, 0));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 1));
    sl_balancer_free(b);
    sl_health_free(h);
}

static void test_rng(void)
{
    /* splitmix64's published first outputs for seed 0. */
    uint64_t s = 0;
    CHECK_U64(UINT64_C(0xe220a8397b1dcdaf), sl_rng_next(&s));
    CHECK_U64(UINT64_C(0x6e789e6aa1b965f4), sl_rng_next(&s));
    CHECK_U64(UINT64_C(0x06c45d188009454f), sl_rng_next(&s));
    uint64_t a = 77, b = 77;
    CHECK_U64(sl_rng_next(&a), sl_rng_next(&b));
}

/* Over many draws the backoff covers exactly [0, cap]. */
static void backoff_range(int attempt, int64_t base, int64_t max, int64_t *lo, int64_t *hi)
{
    uint64_t rng = (uint64_t)attempt * 31 + 5;
    *lo = INT64_MAX;
    *hi = INT64_MIN;
    for (int i = 0; i < 20000; i++) {
        int64_t v = sl_retry_backoff_ms(attempt, base, max, &rng);
        if (v < *lo)
            *lo = v;
        if (v > *hi)
            *hi = v;
    }
}

static void test_backoff_bounds(void)
{
    int64_t lo, hi;
    backoff_range(0, 10, 100, &lo, &hi);
    CHECK_INT(0, lo);
    CHECK_INT(10, hi);
    backoff_range(1, 10, 100, &lo, &hi);
    CHECK_INT(0, lo);
    CHECK_INT(20, hi);
    backoff_range(3, 10, 100, &lo, &hi);
    CHECK_INT(0, lo);
    CHECK_INT(80, hi);
    backoff_range(4, 10, 100, &lo, &hi);
    CHECK_INT(0, lo);
    CHECK_INT(100, hi);
    backoff_range(100000, 10, 100, &lo, &hi);
    CHECK_INT(0, lo);
    CHECK_INT(100, hi);
    backoff_range(-3, 10, 100, &lo, &hi);
    CHECK_INT(0, lo);
    CHECK_INT(10, hi);

    /* Every value of a small range comes up (full jitter, not a few steps). */
    int seen[11] = { 0 }, missing = 0;
    uint64_t rng = 9;
    for (int i = 0; i < 5000; i++)
        seen[sl_retry_backoff_ms(0, 10, 100, &rng)]++;
    for (int v = 0; v <= 10; v++)
        missing += seen[v] == 0;
    CHECK_INT(0, missing);

    CHECK_INT(40, sl_retry_backoff_ms(2, 10, 100, NULL));
    CHECK_INT(100, sl_retry_backoff_ms(2, 500, 100, NULL));
    CHECK_INT(0, sl_retry_backoff_ms(2, 0, 100, &rng));
    CHECK_INT(0, sl_retry_backoff_ms(2, -10, 100, &rng));
    CHECK_INT(0, sl_retry_backoff_ms(2, 10, 0, &rng));
    CHECK_INT(0, sl_retry_backoff_ms(2, 10, -1, &rng));
    CHECK_INT(INT64_MAX, sl_retry_backoff_ms(INT_MAX, INT64_MAX / 3, INT64_MAX, NULL));
    CHECK_INT(INT64_MAX, sl_retry_backoff_ms(1, INT64_MAX, INT64_MAX, NULL));
}

static int take_all(sl_retry_budget_t *b, int percent, int64_t now)
{
    int n = 0;
    while (n < 100000 && sl_retry_budget_take(b, percent, now))
        n++;
    return n;
}

static void test_retry_budget(void)
{
    sl_retry_budget_t b;
    sl_retry_budget_init(&b);
    /* No traffic: the floor of 3. */
    CHECK_INT(3, take_all(&b, 20, 0));

    sl_retry_budget_init(&b);
    for (int i = 0; i < 100; i++)
        sl_retry_budget_on_request(&b, i);
    /* 20 % of 100 plus the floor. */
    CHECK_INT(23, take_all(&b, 20, 500));
    /* A new window still sees all of the previous one... */
    CHECK_INT(0, take_all(&b, 20, 10000));
    /* ...and half of it halfway through: 3 + 10 allowed, 11.5 used. */
    CHECK_INT(1, take_all(&b, 20, 15000));
    /* Nearly none of it at the end: 3 + 0.02 allowed, 2.0023 used. */
    CHECK_INT(1, take_all(&b, 20, 19999));
    /* Two windows later the history is gone: the floor again. */
    CHECK_INT(3, take_all(&b, 20, 30000));
    /* A clock stepping back stays in the current window. */
    CHECK_INT(0, take_all(&b, 20, 100));

    /* A zero-filled budget (calloc) works like an initialised one. */
    sl_retry_budget_t *z = calloc(1, sizeof *z);
    for (int i = 0; i < 10; i++)
        sl_retry_budget_on_request(z, 5000);
    CHECK_INT(13, take_all(z, 100, 5000));
    free(z);

    sl_retry_budget_init(&b);
    for (int i = 0; i < 1000; i++)
        sl_retry_budget_on_request(&b, 0);
    CHECK_INT(3, take_all(&b, -5, 0));
    CHECK_INT(0, take_all(&b, 0, 0));
    sl_retry_budget_init(&b);
    sl_retry_budget_on_request(&b, 0);
    CHECK_INT(103, take_all(&b, INT_MAX, 0));
}

static void test_retry_status_allowed(void)
{
    sl_retries_t r;
    memset(&r, 0, sizeof r);
    r.set = true;
    r.attempts = 2;
    r.on_status[0] = 502;
    r.on_status[1] = 503;
    r.n_on_status = 2;
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_GET, 502));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_GET, 503));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_GET, 500));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_GET, 200));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_HEAD, 502));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_PUT, 502));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_DELETE, 502));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_OPTIONS, 502));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_TRACE, 502));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_POST, 502));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_PATCH, 502));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_CONNECT, 502));
    CHECK_INT(false, sl_retry_status_allowed(&r, 0, 502));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_GET | SL_M_POST, 502));
    r.non_idempotent = true;
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_POST, 502));
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_PATCH, 503));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_POST, 504));
    CHECK_INT(false, sl_retry_status_allowed(NULL, SL_M_GET, 502));
    r.n_on_status = 0;
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_GET, 502));
    r.n_on_status = -4;
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_GET, 502));
    /* A count past the array is clamped, not read past the end. */
    for (int i = 0; i < SL_MAX_RETRY_STATUSES; i++)
        r.on_status[i] = 500 + i;
    r.n_on_status = 1000;
    CHECK_INT(true, sl_retry_status_allowed(&r, SL_M_GET, 500 + SL_MAX_RETRY_STATUSES - 1));
    CHECK_INT(false, sl_retry_status_allowed(&r, SL_M_GET, 500 + SL_MAX_RETRY_STATUSES));
}

int main(void)
{
    test_round_robin_sequences();
    test_round_robin_distribution();
    test_round_robin_skips_down_and_tried();
    test_pick_hands_out_the_trial();
    test_least_conn_follows_in_flight();
    test_least_conn_idle_spreads_by_weight();
    test_hash_is_sticky_and_moves_only_failed_keys();
    test_hash_retry_walks_to_next_target();
    test_hash_keys_follow_target_names_not_order();
    test_hash_weights_and_fallbacks();
    test_hash_trial_only_when_walked();
    test_ewma_prefers_the_faster_target();
    test_ewma_new_target_counts_as_best();
    test_ewma_power_of_two_never_picks_the_worst();
    test_ewma_abandons_a_failing_target();
    test_ewma_failure_penalty_is_capped();
    test_ewma_decays_so_a_penalised_target_is_tried_again();
    test_balancer_bad_input();
    test_rng();
    test_backoff_bounds();
    test_retry_budget();
    test_retry_status_allowed();
    return check_summary();
}
