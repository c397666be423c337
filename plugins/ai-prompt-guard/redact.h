/* Personal data taken out of prompt text before it leaves the gateway:
 * e-mail addresses, card numbers and phone numbers, each replaced with a
 * fixed marker. Scanners, not regular expressions: cards need the Luhn
 * check, and each scan is one linear pass (a hostile prompt cannot make it
 * backtrack). What exactly matches is in README.md. Pure C, unit-tested. */
#ifndef SLUICE_REDACT_H
#define SLUICE_REDACT_H

#include <stddef.h>

enum {
    REDACT_EMAIL = 1 << 0,
    REDACT_PHONE = 1 << 1,
    REDACT_CARD = 1 << 2,
};

#define REDACTED_EMAIL "[REDACTED_EMAIL]"
#define REDACTED_PHONE "[REDACTED_PHONE]"
#define REDACTED_CARD "[REDACTED_CARD]"

/* `text` with every match of the kinds in `kinds` replaced (e-mail first,
 * then cards, then phones: a card is never half taken for a phone). A new
 * NUL-terminated string the caller frees, its length in *out_len; NULL
 * with *failed = 0 when nothing matched, NULL with *failed = 1 when out of
 * memory. */
char *redact_text(const char *text, size_t len, unsigned kinds, size_t *out_len, int *failed);

/* The Luhn check over n digit characters. */
int redact_luhn_ok(const char *digits, size_t n);

#endif
