/* The listening sockets: bound from [server] listen, or adopted from
 * systemd (socket activation), and attached to evhttp (see listen.h). */
#include "listen.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "config.h"
#include "log.h"

/* "host:port" or "[v6]:port" into a socket address. Start-up only (it
 * may resolve a name). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hlen;
	struct addrinfo hints, *res = NULL;
	int rc;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - spec);
	if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']') {
		h = spec + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0 || res == NULL) {
		log_error("listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Bind one listen address of the config. */
static struct evconnlistener *listen_on(struct event_base *base, const char *spec, bool reuse_port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
	struct evconnlistener *l;

	if (parse_listen(spec, &ss, &len) != 0) {
		log_error("listen %s: not a valid address", spec);
		return NULL;
	}
	if (reuse_port)
		flags |= LEV_OPT_REUSEABLE_PORT;
	l = evconnlistener_new_bind(base, NULL, NULL, flags, 1024, (struct sockaddr *)&ss,
				    (int)len);
	if (l == NULL)
		log_error("listen %s: %s", spec, strerror(errno));
	return l;
}

/* Take over a listening TCP socket systemd passed (socket activation). */
static struct evconnlistener *listen_on_passed(struct event_base *base, evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0, listening = 0;
	socklen_t ilen = sizeof(int);
	struct evconnlistener *l;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) != 0 || type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || !listening ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		log_error("socket activation: descriptor %d is not a listening TCP socket", fd);
		return NULL;
	}
	if (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0) {
		log_error("socket activation: descriptor %d: %s", fd, strerror(errno));
		return NULL;
	}
	/* backlog 0: already listening */
	l = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
			       fd);
	if (l == NULL)
		log_error("socket activation: descriptor %d: %s", fd, strerror(errno));
	return l;
}

int listen_open(struct listen_set *ls, struct event_base *base, struct evhttp *http,
		const struct fetchd_config *cfg)
{
	int passed = activation_listen_fds();
	size_t n = passed > 0 ? (size_t)passed : cfg->n_listen;

	if (passed < 0) {
		log_error("socket activation: LISTEN_PID/LISTEN_FDS are malformed");
		return -1;
	}
	if (passed > 0)
		log_info("socket activation: systemd passed %d socket%s; [server] listen is not "
			 "used",
			 passed, passed == 1 ? "" : "s");
	ls->listeners = calloc(n, sizeof(*ls->listeners));
	ls->bound = calloc(n, sizeof(*ls->bound));
	ls->self = calloc(n, sizeof(*ls->self));
	if (ls->listeners == NULL || ls->bound == NULL || ls->self == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		socklen_t len = sizeof(ls->self[i]);
		char name[128];

		ls->listeners[i] =
			passed > 0
				? listen_on_passed(base, ACTIVATION_FD_START + (evutil_socket_t)i)
				: listen_on(base, cfg->listen[i], cfg->reuse_port);
		if (ls->listeners[i] == NULL)
			return -1;
		ls->bound[i] = evhttp_bind_listener(http, ls->listeners[i]);
		if (ls->bound[i] == NULL) {
			log_error("listen: cannot attach HTTP");
			return -1;
		}
		ls->n_bound++;
		getsockname(evconnlistener_get_fd(ls->listeners[i]),
			    (struct sockaddr *)&ls->self[i], &len);
		ls->n_self++;
		format_sockaddr(&ls->self[i], name, sizeof(name));
		log_info("listening on %s", name);
	}
	return 0;
}

void listen_detach(struct listen_set *ls, struct evhttp *http)
{
	for (size_t i = 0; i < ls->n_bound; i++)
		evhttp_del_accept_socket(http, ls->bound[i]);
	ls->n_bound = 0;
}

void listen_set_free(struct listen_set *ls)
{
	free(ls->listeners);
	free(ls->bound);
	free(ls->self);
	*ls = (struct listen_set){0};
}
