/* Failover signals from a provider's answer: is an HTTP error worth trying
 * again (here or on the next target), and how long did the provider ask us
 * to wait. Pure functions, unit-tested in test_aip_parts.c. */
#ifndef AIP_RETRY_H
#define AIP_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

/* OpenAI's "insufficient_quota" (in error.code or error.type): a 429 that no
 * amount of waiting fixes. body may be NULL or anything. */
bool aip_is_quota_error(const json_t *body);

/* 408, 429 (not quota), 500, 502, 503, 504 and Anthropic's 529. Everything
 * else (400, 401, 403, 404, 422 ...) is the caller's or the config's fault
 * and would fail the same way on every target. */
bool aip_status_retryable(int status, const json_t *body);

/* The wait a provider asked for, from a head's headers (name, value, ...):
 * retry-after-ms, then x-ms-retry-after-ms (Azure), then retry-after (delay
 * seconds or an HTTP date, measured from now). -1 when there is none or it
 * cannot be read; dates in the past give 0. */
int64_t aip_retry_hint_ms(int n_headers, const char *const *headers, time_t now);

/* The status the client gets for a provider's error: Anthropic's 529 is not
 * a status OpenAI clients know, so it becomes 503. */
int aip_client_status(int provider_status);

#endif
