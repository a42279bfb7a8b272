/* Sizes ("10M") and durations ("5s") of the configuration file. */
#include "units.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

/* Read the decimal digits at *p into *out, advancing *p. Returns 0, or -1
 * when there is no digit or the number does not fit. Unlike strtoull this
 * takes no sign and no leading whitespace. */
static int units_parse_digits(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int units_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, mult = 1;
	const char *p = s;

	if (s == NULL || units_parse_digits(&p, &v) < 0)
		return -1;
	switch (*p) {
	case 'k':
	case 'K':
		mult = UINT64_C(1) << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mult = UINT64_C(1) << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mult = UINT64_C(1) << 30;
		p++;
		break;
	default: break;
	}
	/* "64K", "64KB", "64KiB"; a bare number may carry "B" but not "iB". */
	if (mult > 1 && strcasecmp(p, "iB") == 0)
		p += 2;
	else if (strcasecmp(p, "B") == 0)
		p++;
	if (*p != '\0')
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int units_parse_duration_ms(const char *s, uint64_t *out)
{
	uint64_t whole, frac = 0, frac_div = 1, mult;
	const char *p = s;

	if (s == NULL || units_parse_digits(&p, &whole) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		/* Nine digits are finer than a millisecond of any unit; later
		 * ones are checked but do not count. */
		for (; isdigit((unsigned char)*p); p++) {
			if (frac_div < UINT64_C(1000000000)) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
	}
	if (*p == '\0' || strcasecmp(p, "s") == 0)
		mult = 1000;
	else if (strcasecmp(p, "ms") == 0)
		mult = 1;
	else if (strcasecmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcasecmp(p, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return -1;
	if (whole > UINT64_MAX / mult)
		return -1;
	/* frac < frac_div <= 1e9 and mult <= 3.6e6: the product fits. */
	if (whole * mult > UINT64_MAX - frac * mult / frac_div)
		return -1;
	*out = whole * mult + frac * mult / frac_div;
	return 0;
}
