/* Bearer-token authentication: loading the token and checking a request
 * against it (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

char *auth_load_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	size_t n;

	if (f == NULL) {
		log_error("auth_token_file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *start = buf, *end = buf + strlen(buf);
	while (*start == ' ' || *start == '\t')
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	char *token = *start ? strdup(start) : NULL;
	explicit_bzero(buf, sizeof(buf));
	if (token == NULL)
		log_error("auth_token_file %s: the token is empty", path);
	return token;
}

void auth_free_token(char *token)
{
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
}

static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return diff == 0;
}

bool auth_request_ok(struct evhttp_request *req, const char *token)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return token_equal(h, token);
}
