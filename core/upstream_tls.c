#include "upstream_tls.h"

#include <openssl/err.h>
#include <arpa/inet.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

SSL_CTX *sl_upstream_tls_ctx(const sl_upstream_t *up, sl_errors_t *errs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        sl_errors_add(errs, "upstreams.%s.tls: cannot create a TLS context", up->name);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (up->tls_verify) {
        int ok = up->tls_ca_file ? SSL_CTX_load_verify_locations(ctx, up->tls_ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            char err[256];
            ERR_error_string_n(ERR_get_error(), err, sizeof err);
            sl_errors_add(errs, "upstreams.%s.tls.ca_file: cannot load %s: %s", up->name,
                          up->tls_ca_file ? up->tls_ca_file : "the system CA store", err);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

SSL *sl_upstream_tls_ssl(SSL_CTX *ctx, const sl_upstream_t *up, const sl_target_t *t)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    const char *name = up->tls_sni ? up->tls_sni : t->host;
    /* RFC 6066: SNI carries host names only, never address literals. */
    if (!is_ip_literal(name))
        SSL_set_tlsext_host_name(ssl, name);
    if (up->tls_verify) {
        if (is_ip_literal(name)) {
            X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
            X509_VERIFY_PARAM_set1_ip_asc(param, name);
        } else {
            SSL_set1_host(ssl, name);
        }
    }
    return ssl;
}

const char *sl_upstream_tls_error(SSL *ssl, char *buf, size_t len)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(buf, len, "certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
        return buf;
    }
    unsigned long e = ERR_peek_last_error();
    if (e) {
        ERR_error_string_n(e, buf, len);
        ERR_clear_error();
        return buf;
    }
    snprintf(buf, len, "TLS handshake failed");
    return buf;
}
