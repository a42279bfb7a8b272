#include "unitlib.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct fetchd_config cfg;
struct request_error rerr;

void request_setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.schemes = CONFIG_SCHEME_HTTP | CONFIG_SCHEME_HTTPS;
	cfg.timeout_ms = 30000;
	cfg.connect_timeout_ms = 5000;
	cfg.max_response_bytes = 10u << 20;
	cfg.max_redirects = 10;
	cfg.verify_tls = true;
	cfg.allow_insecure = false;
	memset(&rerr, 0, sizeof(rerr));
}

struct fetch_request *bind_text(const char *text)
{
	struct fetch_request *r;
	json_t *doc;

	memset(&rerr, 0, sizeof(rerr));
	doc = request_parse_body(text, strlen(text), &rerr);
	if (doc == NULL)
		return NULL;
	r = request_from_json(doc, &cfg, &rerr);
	json_decref(doc);
	return r;
}

struct fetch_request *bind_ok(const char *text)
{
	struct fetch_request *r = bind_text(text);

	ck_assert_msg(r != NULL, "rejected %s: %s", text, rerr.message);
	return r;
}

void expect_error(const char *text, enum fetchd_err code, const char *needle)
{
	struct fetch_request *r = bind_text(text);

	if (r != NULL) {
		request_free(r);
		ck_abort_msg("accepted %s", text);
	}
	ck_assert_msg(rerr.code == code, "%s: code %s, want %s (%s)", text,
		      err_code_name(rerr.code), err_code_name(code), rerr.message);
	if (needle != NULL)
		ck_assert_msg(strstr(rerr.message, needle) != NULL, "%s: message '%s' lacks '%s'",
			      text, rerr.message, needle);
}

int unit_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
