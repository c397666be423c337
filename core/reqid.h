/* Request ids: 32 lowercase hex characters from the worker's PRNG (seeded
 * from the kernel), unique enough to correlate logs, never a secret. */
#ifndef SLUICE_REQID_H
#define SLUICE_REQID_H

#include <stdint.h>

void sl_reqid_seed(uint64_t *state);
void sl_reqid_generate(uint64_t *state, char out[33]);

#endif
