/* SipHash-2-4, the keyed hash behind every table whose keys a client
 * chooses (shared dicts, plugin caches through host->hash64): without the
 * secret key nobody can aim many keys at one bucket, or forge a match. */
#include "siphash.h"

#include <string.h>
#include <sys/random.h>

#include "clock.h"

static uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND(v0, v1, v2, v3)                                                             \
    do {                                                                                     \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);                        \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                             \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                             \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);                        \
    } while (0)

static uint64_t load_le64(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Every key is hashed on every call: whole words are loaded in one go where
 * the byte order allows. */
static uint64_t load_word(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    return load_le64(p, 8);
#endif
}

uint64_t sl_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
    size_t whole = len - len % 8;

    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_word(p + i);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t last = load_le64(p + whole, len % 8) | ((uint64_t)(len & 0xff) << 56);
    v3 ^= last;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void sl_siphash_seed(uint64_t *k0, uint64_t *k1, const void *salt)
{
    uint64_t k[2];
    /* If the kernel cannot give a secret, something that at least differs
     * between runs beats a constant an attacker can read here. */
    if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        uint64_t s = (uint64_t)sl_now_us() ^ (uint64_t)(uintptr_t)salt;
        k[0] = splitmix64(&s);
        k[1] = splitmix64(&s);
    }
    *k0 = k[0];
    *k1 = k[1];
}
