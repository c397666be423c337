/* SipHash-2-4 against the reference vectors (key 00 01 .. 0f, message
 * 00 01 .. n-1), across the word and tail boundaries the loader treats
 * differently. */
#include "check.h"
#include "siphash.h"

int main(void)
{
    uint64_t k0 = 0, k1 = 0;
    for (int i = 0; i < 8; i++) {
        k0 |= (uint64_t)i << (8 * i);
        k1 |= (uint64_t)(i + 8) << (8 * i);
    }
    unsigned char msg[64];
    for (int i = 0; i < 64; i++)
        msg[i] = (unsigned char)i;
    CHECK_U64(UINT64_C(0x726fdb47dd0e0e31), sl_siphash24(k0, k1, msg, 0));
    CHECK_U64(UINT64_C(0x74f839c593dc67fd), sl_siphash24(k0, k1, msg, 1));
    CHECK_U64(UINT64_C(0xa129ca6149be45e5), sl_siphash24(k0, k1, msg, 15));

    /* Two seeds differ (the kernel gives randomness here). */
    uint64_t a0, a1, b0, b1;
    sl_siphash_seed(&a0, &a1, &a0);
    sl_siphash_seed(&b0, &b1, &b0);
    CHECK_TRUE(a0 != b0 || a1 != b1);
    return check_summary();
}
