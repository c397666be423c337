/* A set of SHA-256 digests, each mapped to a number (an index into the
 * plugin's own credential table). Auth plugins look secrets up by their
 * digest so the table never holds a plain secret and a lookup compares
 * fixed-size digests in constant time. Shared by key-auth and basic-auth. */
#ifndef SLUICE_DIGEST_INDEX_H
#define SLUICE_DIGEST_INDEX_H

#include <stddef.h>

#define DIGEST_LEN 32

typedef struct digest_slot digest_slot_t;

typedef struct digest_index {
    digest_slot_t *slots;
    size_t cap;      /* a power of two, or 0 before the first add */
    size_t n;
} digest_index_t;

/* 0 added; 1 the digest was already there (its value in *existing, the
 * index unchanged); -1 out of memory. */
int digest_index_add(digest_index_t *ix, const unsigned char digest[DIGEST_LEN], size_t value,
                     size_t *existing);

/* 1 and *value when present, else 0. */
int digest_index_find(const digest_index_t *ix, const unsigned char digest[DIGEST_LEN], size_t *value);

void digest_index_free(digest_index_t *ix);

/* SHA-256 of data into out. */
void digest_of(const void *data, size_t len, unsigned char out[DIGEST_LEN]);

/* 64 hex digits (either case) into a digest: 0, or -1 when not exactly that. */
int digest_from_hex(const char *hex, size_t len, unsigned char out[DIGEST_LEN]);

/* The first n bytes as lowercase hex into out (2n + 1 bytes). */
void digest_to_hex(const unsigned char *digest, size_t n, char *out);

#endif
