/* The host table the plugin received in init(). Every file of the plugin
 * reaches the gateway through it, so the unit test can install a stand-in. */
#ifndef JWT_HOST_H
#define JWT_HOST_H

#include "sluice/host.h"

extern const sl_host_t *jwt_host;

#endif
