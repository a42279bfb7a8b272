#include "expect.h"

#include <stdio.h>
#include <stdlib.h>

const char *body_of(const struct http_resp *r)
{
	return r->body != NULL ? r->body : "(no body)";
}

const char *describe(const json_t *v)
{
	static char buf[256];
	char *s;

	if (v == NULL)
		return "(absent)";
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, sizeof(buf), "%.250s", s != NULL ? s : "?");
	free(s);
	return buf;
}
