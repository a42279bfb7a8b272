/* Integration test: contrib/prometheus/fetchd.rules.yml and
 * contrib/grafana/fetchd.json use only series a live fetchd exports (its
 * /metrics "# TYPE" lines, a histogram's _bucket, _sum and _count), or the
 * fetchd:* series the rules record; and the rules pass promtool's checks
 * and their own unit tests (promtool test rules), when promtool is
 * installed (scripts/test installs it). */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 60

static char *source_file(const char *rel)
{
	const char *srcdir = getenv("FETCHD_SRCDIR") ? getenv("FETCHD_SRCDIR") : getenv("srcdir");
	static const char *const prefixes[] = {"", "../", "../../"};

	for (size_t i = 0; i < 3; i++) {
		char *path = str_printf("%s/%s%s", srcdir ? srcdir : ".", prefixes[i], rel);

		if (access(path, R_OK) == 0)
			return path;
		free(path);
	}
	ck_abort_msg("cannot find %s", rel);
	return NULL;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	char buf[4096];
	size_t n;

	ck_assert_msg(f != NULL && out != NULL, "cannot read %s", path);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, out);
	fclose(f);
	fclose(out);
	return text;
}

/* Is name exported: a "# TYPE name" line, or a histogram's series? */
static bool exported(const char *metrics, const char *name)
{
	static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};
	char base[128];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t nl = strlen(name), sl = strlen(suffixes[i]);
		char *needle;
		bool hit;

		if (nl <= sl || strcmp(name + nl - sl, suffixes[i]) != 0 || nl - sl >= sizeof(base))
			continue;
		memcpy(base, name, nl - sl);
		base[nl - sl] = '\0';
		needle = str_printf("# TYPE %s %s\n", base, i == 0 ? "" : "histogram");
		/* "" matches any type: cut the needle after the name */
		if (i == 0)
			needle[strlen(needle) - 1] = '\0';
		hit = strstr(metrics, needle) != NULL;
		free(needle);
		if (hit)
			return true;
	}
	return false;
}

/* Every fetchd_* and process_* name in text is exported; every fetchd:*
 * name is recorded by the rules. Returns how many names were checked. */
static int check_names(const char *file, const char *text, const char *metrics, const char *rules)
{
	regex_t re;
	regmatch_t m;
	const char *p = text;
	int n = 0;

	ck_assert_int_eq(regcomp(&re, "(fetchd|process)[_:][a-z0-9_:]*[a-z0-9_]", REG_EXTENDED), 0);
	while (regexec(&re, p, 1, &m, 0) == 0) {
		char name[128];
		size_t len = (size_t)(m.rm_eo - m.rm_so);

		if (len < sizeof(name)) {
			memcpy(name, p + m.rm_so, len);
			name[len] = '\0';
			if (strchr(name, ':') != NULL) {
				char *record = str_printf("record: %s\n", name);

				ck_assert_msg(strstr(rules, record) != NULL,
					      "%s uses %s, which no rule records", file, name);
				free(record);
				n++;
			} else {
				ck_assert_msg(exported(metrics, name),
					      "%s uses %s, which /metrics does not export", file,
					      name);
				n++;
			}
		}
		p += m.rm_eo;
	}
	regfree(&re);
	return n;
}

START_TEST(test_rules_and_dashboard_use_exported_series)
{
	struct http_resp r;
	char *rules_path = source_file("contrib/prometheus/fetchd.rules.yml");
	char *dash_path = source_file("contrib/grafana/fetchd.json");
	char *rules = slurp(rules_path), *dash = slurp(dash_path);
	json_t *parsed;
	int n;

	fetch_path(&daemon_, &up, "/json", &r); /* histograms with a sample */
	http_resp_free(&r);
	get_ok(daemon_.port, "/metrics", &r);
	expect_status(&r, 200);
	n = check_names(rules_path, rules, r.body, rules);
	ck_assert_msg(n >= 10, "only %d names found in %s", n, rules_path);
	n = check_names(dash_path, dash, r.body, rules);
	ck_assert_msg(n >= 20, "only %d names found in %s", n, dash_path);
	/* the check can fail: a name /metrics lacks is caught */
	ck_assert(!exported(r.body, "fetchd_no_such_series_total"));
	ck_assert(exported(r.body, "fetchd_queue_wait_seconds_bucket"));
	parsed = json_loads(dash, 0, NULL);
	ck_assert_msg(json_is_array(json_object_get(parsed, "panels")),
		      "%s is not a dashboard with panels", dash_path);
	json_decref(parsed);
	http_resp_free(&r);
	free(rules);
	free(dash);
	free(rules_path);
	free(dash_path);
}
END_TEST

START_TEST(test_rules_pass_promtool)
{
	char *dir, *cmd;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "promtool not installed: the rules are not unit-tested\n");
		return;
	}
	dir = source_file("contrib/prometheus");
	cmd = str_printf("cd %s && promtool check rules fetchd.rules.yml && "
			 "promtool test rules fetchd.rules.test.yml",
			 dir);
	ck_assert_msg(system(cmd) == 0, "promtool failed: %s", cmd);
	free(cmd);
	free(dir);
}
END_TEST

static Suite *contrib_suite(void)
{
	Suite *s = suite_create("contrib");
	TCase *tc = tcase_create("contrib");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_add_test(tc, test_rules_and_dashboard_use_exported_series);
	tcase_add_test(tc, test_rules_pass_promtool);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(contrib_suite(), CK_NORMAL);
}
