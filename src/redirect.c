/* The redirect rules fetchd owns (SPEC section 2, "Redirects"): which
 * statuses redirect, how the method changes (the Fetch standard), and
 * which headers are dropped when a redirect leaves the origin. */
#include "redirect.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

void redirect_next_method(long status, const char *method, const char **next_method,
			  bool *keep_body)
{
	*next_method = method;
	*keep_body = true;
	if (status == 303 && strcmp(method, "HEAD") != 0 && strcmp(method, "GET") != 0) {
		*next_method = "GET";
		*keep_body = false;
	} else if ((status == 301 || status == 302) && strcmp(method, "POST") == 0) {
		*next_method = "GET";
		*keep_body = false;
	}
}

bool redirect_is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Scheme, host and port of url, the port made explicit from the scheme's
 * default. Returns 0 (three malloc'd strings) or -1. */
static int origin_of(const char *url, char **scheme, char **host, char **port)
{
	*scheme = url_get(url, CURLUPART_SCHEME, 0);
	*host = url_get(url, CURLUPART_HOST, 0);
	*port = url_get(url, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	if (*scheme != NULL && *host != NULL && *port != NULL)
		return 0;
	free(*scheme);
	free(*host);
	free(*port);
	return -1;
}

bool redirect_same_origin(const char *url_a, const char *url_b)
{
	char *sa, *ha, *pa, *sb, *hb, *pb;
	bool same = false;

	if (origin_of(url_a, &sa, &ha, &pa) != 0)
		return false;
	if (origin_of(url_b, &sb, &hb, &pb) == 0) {
		same = strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
		free(sb);
		free(hb);
		free(pb);
	}
	free(sa);
	free(ha);
	free(pa);
	return same;
}

bool redirect_is_credential_header(const char *name)
{
	return strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Cookie") == 0 ||
	       strcasecmp(name, "Proxy-Authorization") == 0;
}
