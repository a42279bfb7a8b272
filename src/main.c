/* fetchd: options, signals, start and stop. */
#include "config.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "fetch.h"
#include "log.h"
#include "memory.h"
#include "server.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fetchd [-c FILE] [-t | -T] [--listen ADDR:PORT] [--threads N] [--allow "
		"CIDR]\n"
		"              [--log-level LEVEL] [--version] [--help]\n"
		"\n"
		"  -c, --config FILE     configuration file (default %s)\n"
		"  -t, --test            check the configuration and exit\n"
		"  -T, --test-dump       check it, print the effective configuration (file,\n"
		"                        flags and defaults, every key) and exit\n"
		"      --listen ADDR:PORT  listen here instead of the file's [server] listen\n"
		"                        (repeatable)\n"
		"      --threads N       worker threads ([pool] threads; 0 = inline mode)\n"
		"      --allow CIDR      let fetches reach this network even when private\n"
		"                        ([security] allow; repeatable)\n"
		"      --log-level L     error, warn, info or debug\n"
		"      --version         print the versions of fetchd and its libraries and exit\n"
		"      --help            print this help and exit\n"
		"\n"
		"fetchd stays in the foreground and logs to stderr.\n",
		CONFIG_DEFAULT_PATH);
}

struct override {
	const char *section, *key, *value;
};

struct runtime {
	struct event_base *base;
	struct server *srv;
	struct event *sigterm, *sigint, *sighup;
	const char *path;
	const struct override *ov;
	size_t n_ov;
	struct event *status_timer;
};

#ifdef HAVE_LIBSYSTEMD
/* Once a second, from the loop: STATUS= with the pool's load, and the
 * watchdog ping when WatchdogSec= is set (a wedged loop stops pinging). */
static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	struct runtime *rt = arg;
	char status[128], line[160];
	uint64_t usec;

	(void)fd;
	(void)what;
	server_load_summary(rt->srv, status, sizeof(status));
	snprintf(line, sizeof(line), "STATUS=%s", status);
	sd_notify(0, line);
	if (sd_watchdog_enabled(0, &usec) > 0)
		sd_notify(0, "WATCHDOG=1");
}
#endif

/* max_connections client sockets, the workers' sockets and idle upstream
 * connections and a few of our own (cfg->fd_need, counted by config_check,
 * which refused what the hard limit cannot hold): raise the soft
 * descriptor limit toward the hard one (a shell's 1024 would cap
 * max_connections far below its default). At start and on reload. */
static void raise_fd_limit(const struct fetchd_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->fd_need;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		log_warn("max_connections = %u wants about %llu file descriptors, the limit is "
			 "%llu: fetchd pauses accepting when they run out",
			 cfg->max_connections, (unsigned long long)want,
			 (unsigned long long)rl.rlim_cur);
}

/* Read the file and apply the command-line overrides (a flag replaces the
 * file's value; repeated flags accumulate). Problems go to err. Returns
 * the checked config, or NULL with *problems > 0. */
static struct fetchd_config *load_config(const char *path, const struct override *ov, size_t n_ov,
					 FILE *err, int *problems)
{
	struct fetchd_config *cfg = config_new();

	*problems = 0;
	if (cfg == NULL) {
		fprintf(err, "out of memory\n");
		*problems = 1;
		return NULL;
	}
	*problems = config_load(cfg, path, err);
	for (size_t i = 0; i < n_ov; i++) {
		bool first = true;
		char msg[1024];

		for (size_t k = 0; k < i; k++)
			if (strcmp(ov[k].key, ov[i].key) == 0)
				first = false;
		if (config_set(cfg, ov[i].section, ov[i].key, ov[i].value, first, msg,
			       sizeof(msg)) != 0) {
			/* a list flag reports each bad item on a line of msg */
			for (char *line = msg, *eol; line != NULL; line = eol ? eol + 1 : NULL) {
				if ((eol = strchr(line, '\n')) != NULL)
					*eol = '\0';
				fprintf(err, "command line: --%s %s: %s\n",
					strcmp(ov[i].key, "level") == 0 ? "log-level" : ov[i].key,
					ov[i].value, line);
				(*problems)++;
			}
		}
	}
	*problems += config_check(cfg, path, err);
	if (*problems != 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void on_drained(void *arg)
{
	struct runtime *rt = arg;

	log_info("drained: every accepted request has been answered");
	event_base_loopexit(rt->base, NULL);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct runtime *rt = arg;

	(void)what;
	log_info("signal %d: shutting down (lame duck, if set, then no new connections; "
		 "in-flight fetches finish)",
		 (int)sig);
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	server_drain(rt->srv, on_drained, rt);
}

/* SIGHUP: parse, check, swap. A file with errors is rejected, each problem
 * logged with file:line, and the running configuration stays. The config,
 * the files it names (the token, the TLS CA, certificate and key) and the
 * interface list are what the loop thread reads, and only on SIGHUP. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct runtime *rt = arg;
	struct fetchd_config *cfg;
	char *report = NULL;
	size_t report_len = 0;
	FILE *err;
	int problems;

	(void)sig;
	(void)what;
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "RELOADING=1");
#endif
	log_info("SIGHUP: reloading %s", rt->path);
	err = open_memstream(&report, &report_len);
	if (err == NULL) {
		log_error("reload: out of memory");
		goto out;
	}
	cfg = load_config(rt->path, rt->ov, rt->n_ov, err, &problems);
	fclose(err);
	if (cfg == NULL) {
		for (char *line = report, *nl; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			log_error("reload: %s", line);
		}
		log_error("reload rejected (%d problem%s): keeping the running configuration",
			  problems, problems == 1 ? "" : "s");
	} else {
		raise_fd_limit(cfg);
		server_reload(rt->srv, cfg);
	}
	free(report);
out:;
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
#endif
}

/* The event loop. With epoll's change list, the changes a request makes to
 * its connection's events within one loop pass (evhttp pausing reads, the
 * EV_CLOSED watch, enabling and disabling writes) reach the kernel as one
 * epoll_ctl at the next epoll_wait instead of one each: half the
 * epoll_ctl calls per request. fetchd never dup()s a watched fd, the one
 * case the change list gets wrong (event_base_new_with_config(3)). */
static struct event_base *loop_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (ec == NULL)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

/* The command line: options into *path, *test_only and the overrides ov
 * (room for argc of them). Returns -1 to go on, else the exit status
 * (--version, --help, a bad option). */
/* fetchd's version and its libraries': those loaded at run time where
 * the library can say, else those it was built against. */
static void print_versions(void)
{
	printf("fetchd %s\n"
	       "libcurl %s (%s)\n"
	       "libevent %s\n"
	       "jansson %s\n"
	       "uchardet %s (built against)\n"
	       "inih %s (built against)\n",
	       PACKAGE_VERSION, version_libcurl(), version_tls(), version_libevent(),
	       version_jansson(), UCHARDET_BUILD_VERSION, INIH_BUILD_VERSION);
}

static int parse_options(int argc, char **argv, const char **path, bool *test_only, bool *dump,
			 struct override *ov, size_t *n_ov)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"listen", required_argument, NULL, 'L'},
		{"test-dump", no_argument, NULL, 'T'},
		{"threads", required_argument, NULL, 'n'},
		{"allow", required_argument, NULL, 'A'},
		{"log-level", required_argument, NULL, 'l'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:tTh", options, NULL)) != -1) {
		switch (opt) {
		case 'c': *path = optarg; break;
		case 't': *test_only = true; break;
		case 'T': *test_only = *dump = true; break;
		case 'L': ov[(*n_ov)++] = (struct override){"server", "listen", optarg}; break;
		case 'n': ov[(*n_ov)++] = (struct override){"pool", "threads", optarg}; break;
		case 'A': ov[(*n_ov)++] = (struct override){"security", "allow", optarg}; break;
		case 'l': ov[(*n_ov)++] = (struct override){"log", "level", optarg}; break;
		case 'V': print_versions(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fetchd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* SIGTERM, SIGINT and SIGHUP through the loop (evsignal); with systemd,
 * READY=1 and the once-a-second STATUS= timer. fatal() when the signal
 * events cannot be made: start-up only. */
/* The signal events, before fetchd listens: a SIGTERM that comes once a
 * client could see the port must drain, not kill (the default action). */
static void runtime_signals_start(struct runtime *rt)
{
	rt->sigterm = evsignal_new(rt->base, SIGTERM, on_stop_signal, rt);
	rt->sigint = evsignal_new(rt->base, SIGINT, on_stop_signal, rt);
	rt->sighup = evsignal_new(rt->base, SIGHUP, on_hup, rt);
	if (rt->sigterm == NULL || rt->sigint == NULL || rt->sighup == NULL)
		fatal("cannot install signal handlers");
	evsignal_add(rt->sigterm, NULL);
	evsignal_add(rt->sigint, NULL);
	evsignal_add(rt->sighup, NULL);
}

/* Listening and serving: say so, to the log and to systemd. */
static void runtime_ready(struct runtime *rt)
{
	log_info("fetchd %s ready", PACKAGE_VERSION);
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
	if (getenv("NOTIFY_SOCKET") != NULL) {
		struct timeval second = {1, 0};

		rt->status_timer = event_new(rt->base, -1, EV_PERSIST, on_status_timer, rt);
		if (rt->status_timer != NULL) {
			event_add(rt->status_timer, &second);
			on_status_timer(-1, 0, rt);
		}
	}
#else
	(void)rt;
#endif
}

/* Free what main set up in rt, in the reverse order, and the libraries'
 * global state. */
static void runtime_free(struct runtime *rt)
{
	server_free(rt->srv);
	if (rt->sigterm)
		event_free(rt->sigterm);
	if (rt->sigint)
		event_free(rt->sigint);
	if (rt->sighup)
		event_free(rt->sighup);
	if (rt->status_timer)
		event_free(rt->status_timer);
	event_base_free(rt->base);
	fetch_global_cleanup();
	libevent_global_shutdown();
}

int main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH;
	struct override *ov = calloc((size_t)argc, sizeof(*ov));
	size_t n_ov = 0;
	bool test_only = false, dump = false;
	struct fetchd_config *cfg = NULL;
	struct runtime rt;
	int rc = 1, problems;

	memory_init(); /* before any thread exists */
	memset(&rt, 0, sizeof(rt));
	if (ov == NULL)
		return 1;
	rc = parse_options(argc, argv, &path, &test_only, &dump, ov, &n_ov);
	if (rc >= 0)
		goto out;
	rc = 1;
	cfg = load_config(path, ov, n_ov, stderr, &problems);
	if (test_only) {
		if (problems == 0 && dump) {
			printf("# fetchd -T: the effective configuration: %s, the command line's "
			       "flags, and the defaults of every key left unset\n",
			       path);
			config_dump(cfg, stdout);
		} else if (problems == 0) {
			printf("fetchd: the configuration %s is valid\n", path);
		}
		rc = problems == 0 ? 0 : 1;
		goto out;
	}
	if (problems != 0) {
		fprintf(stderr, "fetchd: %d problem%s in the configuration; not starting\n",
			problems, problems == 1 ? "" : "s");
		goto out;
	}
	log_set_level(cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(cfg);

	if (evthread_use_pthreads() != 0)
		fatal("evthread_use_pthreads failed");
	if (fetch_global_init() != 0)
		fatal("libcurl initialisation failed");
	rt.base = loop_new();
	if (rt.base == NULL)
		fatal("cannot create the event loop");
	rt.path = path;
	rt.ov = ov;
	rt.n_ov = n_ov;
	rt.srv = server_new(rt.base, cfg);
	if (rt.srv == NULL)
		goto stop;
	cfg = NULL; /* the server's now */
	runtime_signals_start(&rt);
	if (server_start(rt.srv) != 0)
		goto stop;
	runtime_ready(&rt);
	event_base_dispatch(rt.base);
	rc = 0;
	log_info("fetchd stopped");
stop:
	runtime_free(&rt);
out:
	config_free(cfg);
	free(ov);
	return rc;
}
