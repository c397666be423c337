/* The outcome of one reservation, whichever store made it. */
#ifndef ATL_VERDICT_H
#define ATL_VERDICT_H

#include <stdint.h>

#include "atl_conf.h"

typedef struct atl_verdict {
    int refused;                      /* -1: every limit admitted; else the first limit that refused */
    int64_t at_ms;                    /* the store's clock when it decided (names the windows) */
    int64_t used[ATL_MAX_LIMITS];     /* admitted: tokens counted including the estimate;
                                         refused: counted before it (the estimate is not kept) */
} atl_verdict_t;

#endif
