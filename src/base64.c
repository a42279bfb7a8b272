/* Standard base64, RFC 4648 section 4. */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

size_t base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

size_t base64_encode_to(const unsigned char *in, size_t len, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *p = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = alphabet[v >> 18];
		*p++ = alphabet[(v >> 12) & 63];
		*p++ = alphabet[(v >> 6) & 63];
		*p++ = alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
		*p++ = alphabet[v >> 18];
		*p++ = alphabet[(v >> 12) & 63];
		*p++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	return (size_t)(p - out);
}

char *base64_encode(const unsigned char *in, size_t len, size_t *out_len)
{
	char *out = malloc(base64_encoded_len(len) + 1);

	if (out == NULL)
		return NULL;
	*out_len = base64_encode_to(in, len, out);
	out[*out_len] = '\0';
	return out;
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

char *base64_decode(const char *s, size_t n, size_t *out_len, bool *bad)
{
	size_t pad = 0, o = 0;
	char *out = NULL;

	*bad = false;
	if (n % 4 != 0)
		goto invalid;
	if (n > 0 && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		bool last = i + 4 == n;

		for (int k = 0; k < 4; k++) {
			if (last && s[i + k] == '=' && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			v[k] = base64_value((unsigned char)s[i + k]);
			if (v[k] < 0)
				goto invalid;
		}
		out[o++] = (char)((v[0] << 2) | (v[1] >> 4));
		if (!last || pad < 2)
			out[o++] = (char)(((v[1] & 15) << 4) | (v[2] >> 2));
		if (!last || pad < 1)
			out[o++] = (char)(((v[2] & 3) << 6) | v[3]);
	}
	out[o] = '\0';
	*out_len = o;
	return out;
invalid:
	free(out);
	*bad = true;
	return NULL;
}
