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

/* SHA-256 of data into out: 0, or -1 when OpenSSL fails (out is then all
 * zero bytes, which no lookup should be allowed to use). */
int digest_of(const void *data, size_t len, unsigned char out[DIGEST_LEN]);

/* A SHA-256 context kept for reuse, one per worker thread (never shared):
 * OpenSSL's one-shot SHA256() looks the algorithm up by name and builds a
 * context on every call, which costs more than hashing a short key. */
typedef struct digest_hasher digest_hasher_t;

/* NULL when OpenSSL cannot provide SHA-256 or memory runs out. */
digest_hasher_t *digest_hasher_new(void);
void digest_hasher_free(digest_hasher_t *h);   /* NULL is fine */

/* As digest_of, with h's context; h NULL falls back to digest_of. */
int digest_with(digest_hasher_t *h, const void *data, size_t len, unsigned char out[DIGEST_LEN]);

/* 64 hex digits (either case) into a digest: 0, or -1 when not exactly that. */
int digest_from_hex(const char *hex, size_t len, unsigned char out[DIGEST_LEN]);

/* The first n bytes as lowercase hex into out (2n + 1 bytes). */
void digest_to_hex(const unsigned char *digest, size_t n, char *out);

#endif
