/* Reading `Authorization: Basic base64(user ":" password)` (RFC 7617). */
#ifndef SLUICE_BASIC_HEADER_H
#define SLUICE_BASIC_HEADER_H

#include <stddef.h>

typedef enum {
    BASIC_ABSENT = 0,   /* no header, or another scheme (Bearer ...) */
    BASIC_FOUND,
    BASIC_MALFORMED,    /* the Basic scheme, but no valid base64 of "user:password" */
} basic_result_t;

typedef struct basic_credentials {
    const char *user;
    size_t user_len;
    const char *password;
    size_t password_len;
} basic_credentials_t;

/* Parses the header value; buf needs len + 1 bytes and holds the decoded
 * text that out points into. */
basic_result_t basic_header_parse(const char *value, size_t len, char *buf, basic_credentials_t *out);

/* Strict base64 (standard alphabet, padded to a multiple of 4). Returns the
 * decoded length, or -1. out needs len / 4 * 3 + 1 bytes. */
long base64_decode_strict(const char *in, size_t len, char *out);

#endif
