/* Shared target health: circuit breaker transitions, the one-trial rule
 * under concurrent workers, active-check thresholds, Retry-After estimates. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "health.h"

#define MAX_T 8

static sl_target_t targets[MAX_T];
static char names[MAX_T][32];

/* An upstream as the config loader would produce it, reduced to what health
 * reads. */
static sl_upstream_t make_upstream(int n, int max_fails, int64_t open_ms)
{
    sl_upstream_t up;
    memset(&up, 0, sizeof up);
    memset(targets, 0, sizeof targets);
    for (int i = 0; i < n && i < MAX_T; i++) {
        snprintf(names[i], sizeof names[i], "10.0.0.%d:80", i + 1);
        targets[i].name = names[i];
        targets[i].port = 80;
        targets[i].weight = 1;
    }
    up.name = "backend";
    up.targets = targets;
    up.n_targets = n;
    up.max_fails = max_fails;
    up.open_ms = open_ms;
    up.active.enabled = true;
    up.active.interval_ms = 2000;
    up.active.healthy = 2;
    up.active.unhealthy = 3;
    return up;
}

static void test_new_starts_closed_and_up(void)
{
    sl_upstream_t up = make_upstream(3, 3, 2000);
    sl_upstream_health_t *h = sl_health_new(&up);
    CHECK_INT(1, h != NULL);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, i));
        CHECK_INT(false, sl_health_active_down(h, i));
        CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, i, 0));
    }
    CHECK_INT(0, sl_health_retry_after_ms(h, 0));
    sl_health_free(h);
}

static void test_consecutive_failures_open_the_circuit(void)
{
    sl_upstream_t up = make_upstream(2, 3, 2000);
    sl_upstream_health_t *h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 100);
    sl_health_report(h, 0, false, false, 110);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    /* A success in between breaks the streak: failures must be consecutive. */
    sl_health_report(h, 0, true, false, 120);
    sl_health_report(h, 0, false, false, 130);
    sl_health_report(h, 0, false, false, 140);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 0, 140));
    sl_health_report(h, 0, false, false, 1000);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 1000));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 2999));
    /* Other targets are not affected. */
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 1));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 1, 1000));
    /* More failures of requests already in flight do not move the deadline. */
    sl_health_report(h, 0, false, false, 2500);
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 2999));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 3000));
    sl_health_free(h);
}

static void test_half_open_admits_one_trial_then_closes_on_success(void)
{
    sl_upstream_t up = make_upstream(1, 2, 500);
    sl_upstream_health_t *h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 0);
    sl_health_report(h, 0, false, false, 0);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 600));
    CHECK_INT(SL_CIRCUIT_HALF_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 600));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 99999));
    /* Late outcomes of ordinary requests neither close nor re-open it. */
    sl_health_report(h, 0, true, false, 700);
    CHECK_INT(SL_CIRCUIT_HALF_OPEN, sl_health_circuit(h, 0));
    sl_health_report(h, 0, false, false, 710);
    sl_health_report(h, 0, false, false, 720);
    CHECK_INT(SL_CIRCUIT_HALF_OPEN, sl_health_circuit(h, 0));
    sl_health_report(h, 0, true, true, 800);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 0, 800));
    /* The streak restarted: it takes max_fails fresh failures again. */
    sl_health_report(h, 0, false, false, 900);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    sl_health_report(h, 0, false, false, 900);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    sl_health_free(h);
}

static void test_trial_failure_reopens_for_open_ms(void)
{
    sl_upstream_t up = make_upstream(1, 1, 500);
    sl_upstream_health_t *h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 0);
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 500));
    sl_health_report(h, 0, false, true, 750);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 1249));
    CHECK_INT(1, sl_health_retry_after_ms(h, 1249));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 1250));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 1250));
    sl_health_free(h);
}

static void test_breaker_off_when_max_fails_zero(void)
{
    sl_upstream_t up = make_upstream(1, 0, 500);
    sl_upstream_health_t *h = sl_health_new(&up);
    for (int i = 0; i < 1000; i++)
        sl_health_report(h, 0, false, false, i);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 0, 1000));
    sl_health_free(h);

    up = make_upstream(1, -4, 500);
    h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 0);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    sl_health_free(h);
}

static void test_trial_report_after_circuit_closed_counts_as_ordinary(void)
{
    sl_upstream_t up = make_upstream(1, 2, 500);
    up.active.healthy = 1;
    up.active.unhealthy = 1;
    sl_upstream_health_t *h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 0);
    sl_health_report(h, 0, false, false, 0);
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 500));
    /* An active check takes the target down and up while the trial runs. */
    CHECK_INT(true, sl_health_active_result(h, 0, false));
    CHECK_INT(true, sl_health_active_result(h, 0, true));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    /* The failed trial is now one ordinary failure: not enough to open. */
    sl_health_report(h, 0, false, true, 600);
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    sl_health_report(h, 0, false, true, 610);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 1109));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 1110));
    sl_health_free(h);
}

static void test_active_thresholds(void)
{
    sl_upstream_t up = make_upstream(2, 3, 2000); /* healthy 2, unhealthy 3 */
    sl_upstream_health_t *h = sl_health_new(&up);
    CHECK_INT(false, sl_health_active_result(h, 0, false));
    CHECK_INT(false, sl_health_active_result(h, 0, false));
    CHECK_INT(false, sl_health_active_down(h, 0));
    /* A success resets the failure streak. */
    CHECK_INT(false, sl_health_active_result(h, 0, true));
    CHECK_INT(false, sl_health_active_result(h, 0, false));
    CHECK_INT(false, sl_health_active_result(h, 0, false));
    CHECK_INT(false, sl_health_active_down(h, 0));
    CHECK_INT(true, sl_health_active_result(h, 0, false));
    CHECK_INT(true, sl_health_active_down(h, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 0));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 1, 0));
    /* Still failing: no change to report. */
    CHECK_INT(false, sl_health_active_result(h, 0, false));
    CHECK_INT(true, sl_health_active_down(h, 0));
    /* One success, then a failure: the success streak restarts. */
    CHECK_INT(false, sl_health_active_result(h, 0, true));
    CHECK_INT(false, sl_health_active_result(h, 0, false));
    CHECK_INT(false, sl_health_active_result(h, 0, true));
    CHECK_INT(true, sl_health_active_down(h, 0));
    CHECK_INT(true, sl_health_active_result(h, 0, true));
    CHECK_INT(false, sl_health_active_down(h, 0));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 0, 0));
    CHECK_INT(false, sl_health_active_result(h, 0, true));
    sl_health_free(h);
}

static void test_active_up_closes_an_open_circuit(void)
{
    sl_upstream_t up = make_upstream(1, 1, 60000);
    up.active.healthy = 1;
    up.active.unhealthy = 1;
    sl_upstream_health_t *h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 0);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(true, sl_health_active_result(h, 0, false));
    /* Down wins over the circuit even once the open time has passed: no
     * trial is spent on a target the checker knows to be dead. */
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 70000));
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(true, sl_health_active_result(h, 0, true));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_YES, sl_health_admit(h, 0, 1));
    /* A circuit that is open while the target stays up is not touched by
     * successful checks. */
    sl_health_report(h, 0, false, false, 10);
    CHECK_INT(false, sl_health_active_result(h, 0, true));
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    sl_health_free(h);
}

static void test_active_thresholds_below_one_count_as_one(void)
{
    sl_upstream_t up = make_upstream(1, 3, 2000);
    up.active.healthy = 0;
    up.active.unhealthy = -2;
    sl_upstream_health_t *h = sl_health_new(&up);
    CHECK_INT(true, sl_health_active_result(h, 0, false));
    CHECK_INT(true, sl_health_active_down(h, 0));
    CHECK_INT(true, sl_health_active_result(h, 0, true));
    CHECK_INT(false, sl_health_active_down(h, 0));
    sl_health_free(h);
}

static void test_retry_after(void)
{
    sl_upstream_t up = make_upstream(3, 1, 5000);
    up.active.healthy = 1;
    up.active.unhealthy = 1;
    up.active.interval_ms = 3000;
    sl_upstream_health_t *h = sl_health_new(&up);
    for (int i = 0; i < 3; i++)
        sl_health_active_result(h, i, false);
    CHECK_INT(3000, sl_health_retry_after_ms(h, 0));
    /* Target 1 comes back up but its circuit opens at t=100 until 5100. */
    sl_health_active_result(h, 1, true);
    sl_health_report(h, 1, false, false, 100);
    CHECK_INT(3000, sl_health_retry_after_ms(h, 1000));
    CHECK_INT(1500, sl_health_retry_after_ms(h, 3600));
    CHECK_INT(1, sl_health_retry_after_ms(h, 5099));
    CHECK_INT(0, sl_health_retry_after_ms(h, 5100));
    CHECK_INT(0, sl_health_retry_after_ms(h, 9000));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 1, 9000));
    CHECK_INT(1000, sl_health_retry_after_ms(h, 9000));
    sl_health_report(h, 1, true, true, 9100);
    CHECK_INT(0, sl_health_retry_after_ms(h, 9100));
    sl_health_free(h);

    /* A short check interval still reports at least a second. */
    up = make_upstream(1, 1, 5000);
    up.active.unhealthy = 1;
    up.active.interval_ms = 200;
    h = sl_health_new(&up);
    sl_health_active_result(h, 0, false);
    CHECK_INT(1000, sl_health_retry_after_ms(h, 0));
    sl_health_free(h);

    up = make_upstream(0, 1, 5000);
    up.active.interval_ms = 0;
    h = sl_health_new(&up);
    CHECK_INT(1000, sl_health_retry_after_ms(h, 0));
    sl_health_free(h);
}

static void test_bad_input(void)
{
    CHECK_INT(1, sl_health_new(NULL) == NULL);
    sl_upstream_t up = make_upstream(1, 1, 1000);
    up.n_targets = -1;
    CHECK_INT(1, sl_health_new(&up) == NULL);
    sl_health_free(NULL);

    up = make_upstream(2, 1, 1000);
    sl_upstream_health_t *h = sl_health_new(&up);
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, -1, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 2, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(NULL, 0, 0));
    sl_health_report(h, -1, false, false, 0);
    sl_health_report(h, 2, false, true, 0);
    sl_health_report(NULL, 0, false, false, 0);
    CHECK_INT(false, sl_health_active_result(h, 2, false));
    CHECK_INT(false, sl_health_active_result(NULL, 0, false));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 5));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(NULL, 0));
    CHECK_INT(false, sl_health_active_down(h, -3));
    CHECK_INT(false, sl_health_active_down(NULL, 0));
    CHECK_INT(1000, sl_health_retry_after_ms(NULL, 0));
    /* The reports on bad indexes touched nothing. */
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 0));
    CHECK_INT(SL_CIRCUIT_CLOSED, sl_health_circuit(h, 1));

    /* Times at the edges of int64 neither overflow nor wrap: the deadline
     * saturates, and a negative one counts from zero. */
    sl_health_report(h, 0, false, false, INT64_MAX - 5);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, INT64_MAX));
    sl_health_report(h, 1, false, false, -5000);
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 1, -1));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 1, 0));
    sl_health_free(h);

    up = make_upstream(1, 1, -100);
    h = sl_health_new(&up);
    sl_health_report(h, 0, false, false, 50);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 50));
    sl_health_free(h);
}

/* Workers racing for the trial of one target: exactly one may win, every
 * round. */
#define RACERS 8
#define ROUNDS 300

struct race {
    sl_upstream_health_t *h;
    pthread_barrier_t *start;
    pthread_barrier_t *end;
    int64_t now;
    int trials[ROUNDS];
    int refused[ROUNDS];
};

static void *race_admit(void *arg)
{
    struct race *r = arg;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(r->start);
        sl_admit_t a = sl_health_admit(r->h, 0, r->now);
        r->trials[round] = a == SL_ADMIT_TRIAL;
        r->refused[round] = a == SL_ADMIT_NO;
        pthread_barrier_wait(r->end);
    }
    return NULL;
}

static void test_one_trial_among_racing_workers(void)
{
    sl_upstream_t up = make_upstream(1, 1, 10);
    sl_upstream_health_t *h = sl_health_new(&up);
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, RACERS + 1);
    pthread_barrier_init(&end, NULL, RACERS + 1);
    static struct race races[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        races[i] = (struct race){ .h = h, .start = &start, .end = &end };
        pthread_create(&th[i], NULL, race_admit, &races[i]);
    }
    int rounds_with_one_trial = 0, total_refused = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int64_t t0 = (int64_t)round * 100;
        sl_health_report(h, 0, false, round > 0, t0);
        for (int i = 0; i < RACERS; i++)
            races[i].now = t0 + 10;
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&end);
        int trials = 0;
        for (int i = 0; i < RACERS; i++) {
            trials += races[i].trials[round];
            total_refused += races[i].refused[round];
        }
        rounds_with_one_trial += trials == 1;
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(ROUNDS, rounds_with_one_trial);
    CHECK_INT(ROUNDS * (RACERS - 1), total_refused);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&end);
    sl_health_free(h);
}

/* Many workers failing at once open the circuit once, with one deadline. */
struct fail_storm {
    sl_upstream_health_t *h;
    pthread_barrier_t *start;
};

static void *storm_fail(void *arg)
{
    struct fail_storm *s = arg;
    pthread_barrier_wait(s->start);
    for (int i = 0; i < 2000; i++)
        sl_health_report(s->h, 0, false, false, 1000);
    return NULL;
}

static void test_concurrent_failures_open_once(void)
{
    sl_upstream_t up = make_upstream(1, 5, 3000);
    sl_upstream_health_t *h = sl_health_new(&up);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    struct fail_storm s = { .h = h, .start = &start };
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++)
        pthread_create(&th[i], NULL, storm_fail, &s);
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(SL_CIRCUIT_OPEN, sl_health_circuit(h, 0));
    CHECK_INT(SL_ADMIT_NO, sl_health_admit(h, 0, 3999));
    CHECK_INT(SL_ADMIT_TRIAL, sl_health_admit(h, 0, 4000));
    pthread_barrier_destroy(&start);
    sl_health_free(h);
}

int main(void)
{
    test_new_starts_closed_and_up();
    test_consecutive_failures_open_the_circuit();
    test_half_open_admits_one_trial_then_closes_on_success();
    test_trial_failure_reopens_for_open_ms();
    test_breaker_off_when_max_fails_zero();
    test_trial_report_after_circuit_closed_counts_as_ordinary();
    test_active_thresholds();
    test_active_up_closes_an_open_circuit();
    test_active_thresholds_below_one_count_as_one();
    test_retry_after();
    test_bad_input();
    test_one_trial_among_racing_workers();
    test_concurrent_failures_open_once();
    return check_summary();
}
