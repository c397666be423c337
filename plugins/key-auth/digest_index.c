/* Open addressing over a power-of-two table. The slot is chosen from the
 * digest's first bytes: SHA-256 output is uniform, so no further hashing. */
#include "digest_index.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct digest_slot {
    unsigned char digest[DIGEST_LEN];
    size_t value;
    int used;
};

static size_t home_of(const unsigned char *d, size_t cap)
{
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = (h << 8) | d[i];
    return (size_t)h & (cap - 1);
}

/* The slot holding digest, or the empty slot where it would go. The
 * equality test is constant time: a timing difference must not tell how
 * many leading bytes of a guessed secret's digest matched. */
static digest_slot_t *probe(digest_slot_t *slots, size_t cap, const unsigned char *d)
{
    for (size_t i = home_of(d, cap);; i = (i + 1) & (cap - 1)) {
        digest_slot_t *s = &slots[i];
        if (!s->used || CRYPTO_memcmp(s->digest, d, DIGEST_LEN) == 0)
            return s;
    }
}

static int grow(digest_index_t *ix)
{
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    digest_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->slots[i].used)
            *probe(slots, cap, ix->slots[i].digest) = ix->slots[i];
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    return 0;
}

int digest_index_add(digest_index_t *ix, const unsigned char digest[DIGEST_LEN], size_t value,
                     size_t *existing)
{
    /* At most half full, so a probe always meets an empty slot soon. */
    if ((ix->n + 1) * 2 > ix->cap && grow(ix) != 0)
        return -1;
    digest_slot_t *s = probe(ix->slots, ix->cap, digest);
    if (s->used) {
        if (existing)
            *existing = s->value;
        return 1;
    }
    memcpy(s->digest, digest, DIGEST_LEN);
    s->value = value;
    s->used = 1;
    ix->n++;
    return 0;
}

int digest_index_find(const digest_index_t *ix, const unsigned char digest[DIGEST_LEN], size_t *value)
{
    if (ix->cap == 0)
        return 0;
    const digest_slot_t *s = probe(ix->slots, ix->cap, digest);
    if (!s->used)
        return 0;
    *value = s->value;
    return 1;
}

void digest_index_free(digest_index_t *ix)
{
    if (ix->slots)
        OPENSSL_cleanse(ix->slots, ix->cap * sizeof *ix->slots);
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->n = 0;
}

int digest_of(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
    if (SHA256(data, len, out))
        return 0;
    memset(out, 0, DIGEST_LEN);
    return -1;
}

struct digest_hasher {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};

digest_hasher_t *digest_hasher_new(void)
{
    digest_hasher_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (!h->md || !h->ctx) {
        digest_hasher_free(h);
        return NULL;
    }
    return h;
}

void digest_hasher_free(digest_hasher_t *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);   /* cleanses what it held */
    EVP_MD_free(h->md);
    free(h);
}

int digest_with(digest_hasher_t *h, const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
    if (!h)
        return digest_of(data, len, out);
    unsigned int n = 0;
    if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) && EVP_DigestUpdate(h->ctx, data, len) &&
        EVP_DigestFinal_ex(h->ctx, out, &n) && n == DIGEST_LEN)
        return 0;
    memset(out, 0, DIGEST_LEN);
    return -1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int digest_from_hex(const char *hex, size_t len, unsigned char out[DIGEST_LEN])
{
    if (len != 2 * DIGEST_LEN)
        return -1;
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

void digest_to_hex(const unsigned char *digest, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 0xf];
    }
    out[2 * n] = '\0';
}
