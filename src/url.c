/* URL parts through libcurl's URL API (no DNS, safe on the loop thread). */
#include "url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

char *url_get(const char *url, CURLUPart part, unsigned int flags)
{
	CURLU *u = curl_url();
	char *value = NULL, *copy = NULL;

	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, part, &value, flags) == CURLUE_OK)
		copy = strdup(value);
	curl_free(value);
	curl_url_cleanup(u);
	return copy;
}

bool url_scheme_allowed(const struct fetchd_config *cfg, const char *scheme)
{
	if (scheme == NULL)
		return false;
	if (strcasecmp(scheme, "http") == 0)
		return (cfg->schemes & CONFIG_SCHEME_HTTP) != 0;
	if (strcasecmp(scheme, "https") == 0)
		return (cfg->schemes & CONFIG_SCHEME_HTTPS) != 0;
	return false;
}

char *url_host_key(const char *host)
{
	char *key = strdup(host);

	for (char *c = key; c != NULL && *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return key;
}
