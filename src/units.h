#ifndef FETCHD_UNITS_H
#define FETCHD_UNITS_H

#include <stdint.h>

/* "512", "64K", "10M", "1G" (powers of 1024, suffix case-insensitive, an
 * optional trailing "B" or "iB"). Returns 0, or -1 on garbage, a negative
 * number or overflow. */
int units_parse_size(const char *s, uint64_t *out);

/* "250ms", "5s", "2m", "1h"; a bare number is seconds. Decimals allowed
 * ("1.5s"). Result in milliseconds. Returns 0, or -1 on garbage, a
 * negative number or overflow. */
int units_parse_duration_ms(const char *s, uint64_t *out);

#endif
