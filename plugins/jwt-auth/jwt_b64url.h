/* base64url without padding (RFC 7515 section 2), decoded strictly: only the
 * URL-safe alphabet, no '=' and no stray bits after the last byte, so every
 * byte string has exactly one accepted encoding. */
#ifndef JWT_B64URL_H
#define JWT_B64URL_H

#include <stddef.h>

/* Enough room for the bytes that n characters decode to. */
#define JWT_B64URL_DECODED_MAX(n) ((n) / 4 * 3 + 2)

/* 0 with the bytes in out[0..*out_len), or -1 when `in` is not canonical
 * base64url. out must hold JWT_B64URL_DECODED_MAX(n) bytes. */
int jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *out_len);

#endif
