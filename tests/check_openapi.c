/* Integration test: live answers of fetchd match docs/openapi.yaml. A real
 * fetchd and tests/upstream answer fetches (full documents, "fields",
 * redirects, cookies, links), batches, errors of every kind the test can
 * cause on 127.0.0.1, the probes and /v1/stats; each body goes to a file
 * and tests/openapi_check.py validates it against the schema the OpenAPI
 * document gives for its path, method and status (JSON Schema draft
 * 2020-12, python3-jsonschema). A status the document does not list for
 * the route fails too. The request bodies sent are checked against the
 * FetchRequest and BatchRequest schemas, and requests fetchd refuses
 * against them as well, so the request schemas cannot drift either. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

static char dir[64];
static FILE *manifest;
static int n_files;

/* The interpreter that has jsonschema and yaml: Debian's, or the PATH's. */
static const char *python_with_modules(void)
{
	static const char *const candidates[] = {"/usr/bin/python3", "python3"};

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		char *cmd = str_printf("%s -c 'import jsonschema, yaml' >/dev/null 2>&1",
				       candidates[i]);
		int rc = system(cmd);

		free(cmd);
		if (rc == 0)
			return candidates[i];
	}
	return NULL;
}

/* The path of a file of the source tree (malloc'd). */
static char *source_file(const char *rel)
{
	char path[4096];
	const char *srcdir = getenv("FETCHD_SRCDIR") ? getenv("FETCHD_SRCDIR") : getenv("srcdir");
	static const char *const prefixes[] = {"", "../", "../../"};

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", srcdir ? srcdir : ".", prefixes[i], rel);
		if (access(path, R_OK) == 0)
			return str_printf("%s", path);
	}
	ck_abort_msg("cannot find %s (srcdir %s)", rel, srcdir ? srcdir : "unset");
	return NULL;
}

static char *write_body(const char *body, size_t len)
{
	char *path = str_printf("%s/%d.json", dir, n_files++);
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write %s", path);
	fwrite(body, 1, len, f);
	fclose(f);
	return path;
}

/* Record r, the answer to method path, for the checker; schema (may be
 * NULL) is a component it must match besides the route's. */
static void record(const char *method, const char *path, const struct http_resp *r,
		   const char *schema)
{
	char *file = write_body(r->body, r->body_len);

	fprintf(manifest, "%s %s %ld %s%s%s\n", method, path, r->status, file, schema ? " " : "",
		schema ? schema : "");
	free(file);
}

static void request_expect(const char *schema, const char *body, bool valid)
{
	char *file = write_body(body, strlen(body));

	fprintf(manifest, "REQUEST %s %s %s\n", schema, file, valid ? "valid" : "invalid");
	free(file);
}

static void post(const char *path, const char *body, long want, const char *schema)
{
	struct http_resp r;

	ck_assert_int_eq(http_post_json(daemon_.port, path, body, &r), 0);
	ck_assert_msg(r.status == want, "POST %s %s: status %ld, want %ld: %s", path, body,
		      r.status, want, body_of(&r));
	record("POST", path, &r, schema);
	http_resp_free(&r);
}

static void get(const char *path, long want, const char *schema)
{
	struct http_resp r;

	get_ok(daemon_.port, path, &r);
	ck_assert_msg(r.status == want, "GET %s: status %ld, want %ld: %s", path, r.status, want,
		      body_of(&r));
	record("GET", path, &r, schema);
	http_resp_free(&r);
}

/* POST body to /v1/fetch, expecting want, and check the body against
 * FetchRequest as valid (answered 200 or a fetch error) or not. */
static void fetch_case(const char *body, long want, const char *schema, bool request_valid)
{
	post("/v1/fetch", body, want, schema);
	request_expect("FetchRequest", body, request_valid);
}

/* The command that checks the manifest at path (malloc'd); extra is
 * appended (a redirection). */
static char *checker(const char *py, const char *path, const char *extra)
{
	char *script = source_file("tests/openapi_check.py"),
	     *spec = source_file("docs/openapi.yaml");
	char *cmd = str_printf("%s %s %s %s%s", py, script, spec, path, extra);

	free(script);
	free(spec);
	return cmd;
}

/* Run the checker on a one-line manifest; it must fail, saying want. */
static void expect_checker_fails(const char *py, const char *line, const char *want)
{
	char *path = str_printf("%s/manifest", dir), *out = str_printf("%s/out", dir), *cmd,
	     *redirect;
	FILE *f = fopen(path, "w");
	char buf[8192] = "";
	size_t n;

	ck_assert(f != NULL);
	fprintf(f, "%s\n", line);
	fclose(f);
	redirect = str_printf(" >%s 2>&1", out);
	cmd = checker(py, path, redirect);
	ck_assert_msg(system(cmd) != 0, "the checker passed: %s", line);
	f = fopen(out, "r");
	ck_assert(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert_msg(strstr(buf, want) != NULL, "the checker failed without '%s':\n%s", want, buf);
	free(cmd);
	free(redirect);
	free(out);
	free(path);
}

START_TEST(test_live_answers_match_the_openapi_schemas)
{
	const char *py = python_with_modules();
	int u = up.port, closed = closed_port();
	char *s, *cmd;
	int rc;

	if (py == NULL) {
		fprintf(stderr, "python3-jsonschema or python3-yaml not installed: OpenAPI not "
				"checked (scripts/test installs them)\n");
		return;
	}
	snprintf(dir, sizeof(dir), "/tmp/fetchd-openapi-XXXXXX");
	ck_assert(mkdtemp(dir) != NULL);
	s = str_printf("%s/manifest", dir);
	manifest = fopen(s, "w");
	ck_assert(manifest != NULL);
	free(s);

	/* documents: full, with fields, through redirects, cookies, links */
	s = str_printf("/v1/fetch?url=http://127.0.0.1:%d/json", u);
	get(s, 200, "FullFetchDocument");
	free(s);
	s = str_printf(
		"{\"url\":\"http://127.0.0.1:%d/json\",\"method\":\"post\",\"json\":{\"a\":1},"
		"\"headers\":[[\"X-A\",\"1\"],[\"X-A\",\"2\"]],\"timeout\":{\"connect\":2,"
		"\"total\":10},\"params\":{\"q\":\"x y\"},\"body_mode\":\"base64\"}",
		u);
	fetch_case(s, 200, "FullFetchDocument", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/redirect?status=302&to=/text\","
		       "\"fields\":[\"status\",\"url\",\"history\",\"text\",\"encoding\","
		       "\"apparent_encoding\"]}",
		       u);
	fetch_case(s, 200, NULL, true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/cookie\",\"max_bytes\":4,"
		       "\"follow_redirects\":false,\"decompress\":true,\"verify_tls\":true}",
		       u);
	fetch_case(s, 200, "FullFetchDocument", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/link\",\"body_mode\":\"none\","
		       "\"max_redirects\":3,\"pool\":\"default\"}",
		       u);
	fetch_case(s, 200, "FullFetchDocument", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/status/404\",\"body_base64\":\"aGk=\","
		       "\"method\":\"PUT\"}",
		       u);
	fetch_case(s, 200, "FullFetchDocument", true);
	free(s);

	/* retries: attempts in a document, and in an error, cut short */
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/flaky?key=oa&fail=1\","
		       "\"retry\":{\"attempts\":2,\"backoff\":0.01,\"max_backoff\":1,"
		       "\"on\":[\"connect\",\"timeout\",\"reset\",503]}}",
		       u);
	fetch_case(s, 200, "FullFetchDocument", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/flaky?key=ob&fail=1&retry_after=30\","
		       "\"retry\":{\"attempts\":1},\"timeout\":2}",
		       u);
	fetch_case(s, 200, "FullFetchDocument", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/\",\"method\":\"POST\","
		       "\"retry_non_idempotent\":true,\"retry\":{\"attempts\":1,\"backoff\":0}}",
		       closed);
	fetch_case(s, 502, "Error", true);
	free(s);
	fetch_case("{\"url\":\"http://127.0.0.1/\",\"retry\":{\"on\":[200]}}", 400, "Error", false);

	/* errors fetchd answers itself, and fetch failures */
	fetch_case("{\"url\":", 400, "Error", false);
	fetch_case("{\"url\":\"http://127.0.0.1/\",\"timout\":5}", 400, "Error", false);
	fetch_case("{\"url\":\"http://127.0.0.1/\",\"body\":\"a\",\"json\":1}", 400, "Error",
		   false);
	fetch_case("{\"url\":\"http://127.0.0.1/\",\"fields\":[\"nope\"]}", 400, "Error", false);
	fetch_case("{\"url\":\"http://127.0.0.1/\",\"body_mode\":\"raw\"}", 400, "Error", false);
	fetch_case("{\"url\":\"ftp://example.org/\"}", 400, "Error", true);
	fetch_case("{\"url\":\"http://169.254.169.254/\"}", 403, "Error", true);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/\"}", closed);
	fetch_case(s, 502, "Error", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/delay?ms=3000\",\"timeout\":0.2}", u);
	fetch_case(s, 504, "Error", true);
	free(s);
	s = str_printf("{\"url\":\"http://127.0.0.1:%d/redirect?status=302&to=/json\","
		       "\"max_redirects\":0}",
		       u);
	fetch_case(s, 502, "Error", true);
	free(s);
	get("/v1/fetch", 400, "Error");
	get("/v1/fetch?url=x&bogus=1", 400, "Error");
	get("/nope", 404, "Error");
	get("/v1/batch", 405, "Error");

	/* a batch: documents and errors in place */
	s = str_printf(
		"{\"requests\":[{\"url\":\"http://127.0.0.1:%d/json\"},"
		"{\"url\":\"ftp://example.org/\"},"
		"{\"url\":\"http://127.0.0.1:%d/status/500\",\"fields\":[\"status\",\"ok\"]}]}",
		u, u);
	post("/v1/batch", s, 200, "BatchResponse");
	request_expect("BatchRequest", s, true);
	free(s);
	post("/v1/batch", "{\"requests\":[]}", 200, "BatchResponse");
	post("/v1/batch", "{\"requests\":1}", 400, "Error");
	request_expect("BatchRequest", "{\"requests\":1}", false);
	request_expect("BatchRequest", "{\"requests\":[],\"extra\":1}", false);

	/* the probes and the stats */
	get("/healthz", 200, "Probe");
	get("/readyz", 200, "Probe");
	get("/livez", 200, "Probe");
	get("/v1/stats", 200, "Stats");
	fclose(manifest);
	manifest = NULL;

	s = str_printf("%s/manifest", dir);
	cmd = checker(py, s, "");
	free(s);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "the live answers do not match docs/openapi.yaml (%s): see above",
		      cmd);
	free(cmd);
	cmd = str_printf("rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}
END_TEST

/* The checker itself fails on a body that breaks the schema and on a
 * status the document does not list: a test that cannot fail proves
 * nothing. */
START_TEST(test_checker_rejects_drift)
{
	const char *py = python_with_modules();
	char *cmd;

	if (py == NULL)
		return;
	snprintf(dir, sizeof(dir), "/tmp/fetchd-openapi-XXXXXX");
	ck_assert(mkdtemp(dir) != NULL);
	{
		const char *doc = "{\"url\":\"x\",\"status\":200,\"surprise\":1}";
		const char *err = "{\"error\":{\"code\":\"no_such_code\",\"message\":\"m\"}}";
		char *a = write_body(doc, strlen(doc)), *b = write_body(err, strlen(err));
		char *line;

		line = str_printf("POST /v1/fetch 200 %s", a);
		expect_checker_fails(py, line, "'surprise' was unexpected");
		free(line);
		line = str_printf("POST /v1/fetch 400 %s", b);
		expect_checker_fails(py, line, "'no_such_code' is not one of");
		free(line);
		line = str_printf("GET /healthz 404 %s", b);
		expect_checker_fails(py, line, "status 404 is not documented");
		free(line);
		line = str_printf("REQUEST FetchRequest %s valid", b);
		expect_checker_fails(py, line, "should be valid");
		free(line);
		free(a);
		free(b);
	}
	cmd = str_printf("rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}
END_TEST

static Suite *openapi_suite(void)
{
	Suite *s = suite_create("openapi");
	TCase *tc = tcase_create("openapi");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_add_test(tc, test_live_answers_match_the_openapi_schemas);
	tcase_add_test(tc, test_checker_rejects_drift);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(openapi_suite(), CK_NORMAL);
}
