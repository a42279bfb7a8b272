#include "redirect.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
 * default (CURLU_DEFAULT_PORT). Returns 0 or -1. */
static int origin_of(const char *url, char **scheme, char **host, char **port)
{
	CURLU *u = curl_url();
	int rc = -1;

	*scheme = *host = *port = NULL;
	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		curl_free(*scheme);
		curl_free(*host);
		curl_free(*port);
		*scheme = *host = *port = NULL;
	}
	curl_url_cleanup(u);
	return rc;
}

bool redirect_same_origin(const char *url_a, const char *url_b)
{
	char *sa, *ha, *pa, *sb, *hb, *pb;
	bool same = false;

	if (origin_of(url_a, &sa, &ha, &pa) != 0)
		return false;
	if (origin_of(url_b, &sb, &hb, &pb) == 0) {
		same = strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
		curl_free(sb);
		curl_free(hb);
		curl_free(pb);
	}
	curl_free(sa);
	curl_free(ha);
	curl_free(pa);
	return same;
}

bool redirect_is_credential_header(const char *name)
{
	return strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Cookie") == 0 ||
	       strcasecmp(name, "Proxy-Authorization") == 0;
}
