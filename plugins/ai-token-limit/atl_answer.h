/* What the client sees of a verdict: X-TokenLimit-Limit and
 * X-TokenLimit-Remaining on every response, and the 429 with Retry-After. */
#ifndef ATL_ANSWER_H
#define ATL_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "atl_conf.h"
#include "atl_verdict.h"

/* The limit the headers describe: the refusing one, else the one with the
 * fewest tokens left (the first on a tie). */
int atl_tightest(const atl_conf_t *c, const atl_verdict_t *v);

/* Tokens left in limit i after the verdict (never negative). */
int64_t atl_remaining(const atl_conf_t *c, const atl_verdict_t *v, int i);

/* Whole seconds (rounded up, at least 1) until limit i's window ends. */
int64_t atl_retry_after(const atl_conf_t *c, const atl_verdict_t *v, int i);

/* "1h", "5m", "90s", "1500ms": the window as it is shortest written. */
void atl_format_window(int64_t ms, char *out, size_t cap);

/* What this instance remembers about a request from access to header_filter
 * and log, kept in its host->req_slot. */
typedef struct atl_request {
    int64_t estimate, at_ms;      /* the reservation, when store is set */
    char store;                   /* 'L' local, 'R' redis, 0: nothing reserved */
    int have_headers;
    int64_t limit, remaining;     /* for X-TokenLimit-* */
} atl_request_t;

/* The instance's record for r: found, or made when create is set. NULL when
 * there is none (or out of memory). */
atl_request_t *atl_request(sl_req_t *r, const atl_conf_t *c, int create);

/* Remembers the headers for header_filter. */
void atl_note_headers(sl_req_t *r, const atl_conf_t *c, const atl_verdict_t *v);

/* header_filter: sets the remembered headers, if any. */
void atl_send_headers(sl_req_t *r, const atl_conf_t *c);

/* 429 token_limit_exceeded with Retry-After; SL_DONE (SL_ERROR if it could not answer). */
sl_status_t atl_answer_exceeded(sl_req_t *r, const atl_conf_t *c, const atl_verdict_t *v);

/* 503 token_limit_unavailable (on_redis_error: deny). */
sl_status_t atl_answer_unavailable(sl_req_t *r);

#endif
