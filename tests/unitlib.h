/* Shared by the unit tests of request.c and errors.c (check_request_*,
 * check_errors): a default configuration, binding a client body to a
 * fetch_request, asserting on the rejection; and running a suite. */
#ifndef FETCHD_TESTS_UNITLIB_H
#define FETCHD_TESTS_UNITLIB_H

#include <check.h>

#include "config.h"
#include "errors.h"
#include "request.h"

/* The configuration requests are bound against, and the last rejection. */
extern struct fetchd_config cfg;
extern struct request_error rerr;

/* Checked fixture: cfg as fetchd's defaults (http and https, 30 s, 5 s
 * connect, 10 MB, 10 redirects, TLS verified); rerr cleared. */
void request_setup(void);

/* Parse text as a client body and bind it. NULL with rerr filled on any
 * failure. */
struct fetch_request *bind_text(const char *text);
/* The same; fails the test when text is rejected. */
struct fetch_request *bind_ok(const char *text);
/* Asserts the request is rejected with code and a message containing
 * needle (when not NULL). */
void expect_error(const char *text, enum fetchd_err code, const char *needle);

/* Run every test of s; EXIT_SUCCESS when none failed, else EXIT_FAILURE. */
int unit_run_suite(Suite *s);

#endif
