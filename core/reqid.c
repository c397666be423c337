#include "reqid.h"

#include <sys/random.h>
#include <time.h>

#include "retry.h"

void sl_reqid_seed(uint64_t *state)
{
    if (getrandom(state, sizeof *state, 0) != (ssize_t)sizeof *state)
        *state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)state;
    if (*state == 0)
        *state = 0x9e3779b97f4a7c15ULL;
}

void sl_reqid_generate(uint64_t *state, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int half = 0; half < 2; half++) {
        uint64_t v = sl_rng_next(state);
        for (int i = 0; i < 16; i++)
            out[half * 16 + i] = hex[(v >> (i * 4)) & 0xf];
    }
    out[32] = '\0';
}
