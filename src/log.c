/* Logging: one line per event on stderr, with a timestamp, or with a
 * journald priority prefix (<3> .. <7>) when systemd's JOURNAL_STREAM says
 * stderr goes to the journal. Safe from any thread. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level_cur = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* syslog(3) priorities, which journald reads from a "<N>" line prefix
 * (sd-daemon(3)). */
static const int log_level_prio[] = {
	[LOG_LEVEL_ERROR] = 3,
	[LOG_LEVEL_WARN] = 4,
	[LOG_LEVEL_INFO] = 6,
	[LOG_LEVEL_DEBUG] = 7,
};

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	size_t i = (size_t)level;

	return i < sizeof(log_level_names) / sizeof(log_level_names[0]) ? log_level_names[i] : "?";
}

void log_set_level(enum log_level level)
{
	atomic_store(&log_level_cur, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level_cur);
}

/* Format one line and hand it to stdio in a single call, so that lines from
 * several threads never interleave. */
static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char stackbuf[1024];
	char *msg = stackbuf, *line = NULL;
	char prefix[96];
	va_list ap2;
	int n, plen;

	if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_ERROR;

	va_copy(ap2, ap);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
	if (n < 0) {
		msg = NULL;
		goto out;
	}
	if ((size_t)n >= sizeof(stackbuf)) {
		msg = malloc((size_t)n + 1);
		if (msg == NULL) {
			/* Keep the truncated text rather than lose the line. */
			msg = stackbuf;
			n = (int)sizeof(stackbuf) - 1;
		} else {
			vsnprintf(msg, (size_t)n + 1, fmt, ap2);
		}
	}
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* A line is one record for journald: embedded line breaks would start
	 * records without a priority. */
	for (int i = 0; i < n; i++) {
		if (msg[i] == '\n' || msg[i] == '\r')
			msg[i] = ' ';
	}

	if (getenv("JOURNAL_STREAM") != NULL) {
		plen = snprintf(prefix, sizeof(prefix), "<%d>", log_level_prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		plen = snprintf(prefix, sizeof(prefix), "%s.%03ldZ fetchd[%ld]: %s: ", stamp,
				ts.tv_nsec / 1000000L, (long)getpid(), log_level_names[level]);
	}
	if (plen < 0 || (size_t)plen >= sizeof(prefix))
		plen = 0;

	line = malloc((size_t)plen + (size_t)n + 2);
	if (line == NULL) {
		/* Out of memory: two calls may interleave, but say something. */
		fprintf(stderr, "%.*s%s\n", plen, prefix, msg);
		goto out;
	}
	memcpy(line, prefix, (size_t)plen);
	memcpy(line + plen, msg, (size_t)n);
	line[plen + n] = '\n';
	fwrite(line, 1, (size_t)plen + (size_t)n + 1, stderr);

out:
	va_end(ap2);
	free(line);
	if (msg != stackbuf)
		free(msg);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > atomic_load(&log_level_cur))
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
