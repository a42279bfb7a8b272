/* Library versions (see version.h). */
#include "version.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

const char *version_libcurl(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v != NULL && v->version != NULL ? v->version : "unknown";
}

const char *version_libevent(void)
{
	return event_get_version();
}

const char *version_jansson(void)
{
	return JANSSON_VERSION;
}

const char *version_tls(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v != NULL && v->ssl_version != NULL ? v->ssl_version : "none";
}
