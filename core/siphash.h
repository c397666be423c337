/* SipHash-2-4 with a secret key (see siphash.c for why). */
#ifndef SLUICE_SIPHASH_H
#define SLUICE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t sl_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);
/* A fresh random key; salt only matters when the kernel has no randomness. */
void sl_siphash_seed(uint64_t *k0, uint64_t *k1, const void *salt);

#endif
