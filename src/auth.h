#ifndef FETCHD_AUTH_H
#define FETCHD_AUTH_H

#include <stdbool.h>

struct evhttp_request;

/* The bearer token of [server] auth_token_file. */

/* The file's first line, surrounding blanks trimmed; malloc'd. NULL (logged)
 * when the file cannot be read or the token is empty. A blocking file read:
 * at start-up, and on the loop thread at a reload (SIGHUP), as the config
 * file itself. */
char *auth_load_token(const char *path);

/* Wipe and free a token (NULL is fine). */
void auth_free_token(char *token);

/* Does req carry "Authorization: Bearer TOKEN"? Compared in constant
 * time: the time taken says nothing about how much of the token matched. */
bool auth_request_ok(struct evhttp_request *req, const char *token);

#endif
