/* TLS towards upstreams: one client SSL_CTX per upstream (thread-safe to
 * share), one SSL per connection with SNI and host name verification. */
#ifndef SLUICE_UPSTREAM_TLS_H
#define SLUICE_UPSTREAM_TLS_H

#include <openssl/ssl.h>

#include "config.h"

SSL_CTX *sl_upstream_tls_ctx(const sl_upstream_t *up, sl_errors_t *errs);
SSL *sl_upstream_tls_ssl(SSL_CTX *ctx, const sl_upstream_t *up, const sl_target_t *t);
/* The last verification or handshake failure, for the error log. */
const char *sl_upstream_tls_error(SSL *ssl, char *buf, size_t len);

#endif
