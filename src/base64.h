#ifndef FETCHD_BASE64_H
#define FETCHD_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Standard base64 (RFC 4648 section 4) with padding. malloc'd and
 * NUL-terminated, length in *out_len; NULL on out of memory. */
char *base64_encode(const unsigned char *in, size_t len, size_t *out_len);

/* The same into out, which has room for base64_encoded_len(len) bytes (no
 * NUL is written). Returns the bytes written. A caller that encodes in
 * pieces passes lengths that are multiples of 3 but for the last. */
size_t base64_encoded_len(size_t len);
size_t base64_encode_to(const unsigned char *in, size_t len, char *out);

/* Decode padded base64 without whitespace. Returns a malloc'd buffer
 * (NUL-terminated, length in *out_len), or NULL: with *bad set on invalid
 * input, else out of memory. */
char *base64_decode(const char *s, size_t n, size_t *out_len, bool *bad);

#endif
