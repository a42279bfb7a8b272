/* Client connection accounting for evhttp (see connections.h). Loop
 * thread only. */
#include "connections.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "seams.h"

/* How long accepting pauses after accept() failed for lack of file
 * descriptors (libevent would otherwise retry at once, forever). */
#define FD_SHORTAGE_PAUSE_MS 100

/* A warning that can repeat many times a second under attack is logged at
 * most this often. */
#define WARN_EVERY_NS (10 * UINT64_C(1000000000))

enum conn_state {
	CONN_NEW,     /* made for evhttp, not yet wrapped by it */
	CONN_IDLE,    /* waiting for the first byte of a request */
	CONN_READING, /* a request has begun: its deadline runs */
	CONN_BUSY,    /* its request is being answered */
};

struct conn {
	struct connections *owner;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct evbuffer_cb_entry *input_cb;
	evutil_socket_t fd;
	enum conn_state state;
	bool served; /* a request of it has been read whole */
	bool fresh;  /* counted in owner->fresh: never served, not reading */
	uint64_t deadline_ns;
	TAILQ_ENTRY(conn) link; /* in owner->adopting or owner->reading */
};

TAILQ_HEAD(conn_list, conn);

struct connections {
	unsigned max;
	uint64_t request_timeout_ns;
	struct conn_list adopting; /* CONN_NEW, adopted later in this loop turn */
	struct conn_list reading;  /* CONN_READING, oldest deadline first */
	struct event *adopt_ev;
	struct event *deadline_ev;
	struct event *resume_ev; /* after an fd shortage */
	struct conn **by_fd;	 /* open connections by socket */
	size_t n_by_fd;
	struct evconnlistener **listeners;
	size_t n_listeners;
	/* The drain (connections_drain): connections not yet served count as
	 * unfinished until drain_grace_ns, those reading a request until it is
	 * read; drained runs when that count may have dropped. */
	unsigned fresh;	    /* open, never served, not reading */
	unsigned n_reading; /* in reading */
	bool draining;
	uint64_t drain_grace_ns;
	struct event *grace_ev;
	void (*drained)(void *arg);
	void *drained_arg;
	bool paused;				    /* by max_connections */
	bool fd_shortage;			    /* paused by EMFILE/ENFILE */
	uint64_t pause_warned_ns, accept_warned_ns; /* last warnings */
	struct connections_stats stats;
};

/* The one instance the listeners' error callback reaches: libevent hands
 * that callback evhttp's pointer, not ours. */
static struct connections *listener_owner;

/* Whether a warning last given at *last may be given again now. */
static bool warn_again(uint64_t *last)
{
	uint64_t now = clock_now_ns();

	if (*last != 0 && now - *last < WARN_EVERY_NS)
		return false;
	*last = now;
	return true;
}

static void listeners_enable(struct connections *c, bool on)
{
	for (size_t i = 0; i < c->n_listeners; i++) {
		if (on)
			evconnlistener_enable(c->listeners[i]);
		else
			evconnlistener_disable(c->listeners[i]);
	}
}

/* Accept while below the cap and not short of descriptors. */
static void update_accepting(struct connections *c)
{
	bool full = c->stats.open >= c->max;

	if (full && !c->paused) {
		c->paused = true;
		c->stats.accept_paused++;
		if (warn_again(&c->pause_warned_ns))
			log_warn("max_connections (%u) reached: not accepting until a connection "
				 "closes (%llu times so far)",
				 c->max, (unsigned long long)c->stats.accept_paused);
		listeners_enable(c, false);
	} else if (!full && c->paused) {
		c->paused = false;
		if (!c->fd_shortage)
			listeners_enable(c, true);
	}
}

static void arm_deadline_timer(struct connections *c)
{
	struct conn *first = TAILQ_FIRST(&c->reading);
	uint64_t now = clock_now_ns(), wait;
	struct timeval tv;

	if (first == NULL) {
		evtimer_del(c->deadline_ev);
		return;
	}
	wait = first->deadline_ns > now ? first->deadline_ns - now : 0;
	tv.tv_sec = (time_t)(wait / 1000000000u);
	tv.tv_usec = (suseconds_t)(wait % 1000000000u / 1000u);
	evtimer_add(c->deadline_ev, &tv);
}

/* k has begun a request, or closed: no longer waiting for its first. */
static void unfresh(struct conn *k)
{
	if (k->fresh) {
		k->fresh = false;
		k->owner->fresh--;
	}
}

/* The drain's count of unfinished connections may have dropped. */
static void drain_progress(struct connections *c)
{
	if (c->draining && c->drained != NULL)
		c->drained(c->drained_arg);
}

static void start_reading(struct conn *k)
{
	struct connections *c = k->owner;
	bool was_empty = TAILQ_EMPTY(&c->reading);

	unfresh(k);
	c->n_reading++;
	k->state = CONN_READING;
	k->deadline_ns = clock_now_ns() + c->request_timeout_ns;
	TAILQ_INSERT_TAIL(&c->reading, k, link);
	if (was_empty)
		arm_deadline_timer(c);
}

static void stop_reading(struct conn *k)
{
	if (k->state == CONN_READING) {
		TAILQ_REMOVE(&k->owner->reading, k, link);
		k->owner->n_reading--;
	}
}

/* Bytes arrived: the first of a request starts its deadline. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *k = arg;

	(void)buf;
	if (info->n_added > 0 && k->state == CONN_IDLE)
		start_reading(k);
}

/* evhttp is closing the connection (any reason, or evhttp_free). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *k = arg;
	struct connections *c = k->owner;

	(void)evcon;
	unfresh(k);
	stop_reading(k);
	/* evhttp drains the input next: our callback must be gone by then */
	evbuffer_remove_cb_entry(bufferevent_get_input(k->bev), k->input_cb);
	if (k->fd >= 0 && (size_t)k->fd < c->n_by_fd && c->by_fd[k->fd] == k)
		c->by_fd[k->fd] = NULL;
	free(k);
	c->stats.open--;
	update_accepting(c);
	drain_progress(c);
}

static int index_fd(struct connections *c, struct conn *k)
{
	if ((size_t)k->fd >= c->n_by_fd) {
		size_t n = c->n_by_fd ? c->n_by_fd : 256;

		while (n <= (size_t)k->fd)
			n *= 2;
		struct conn **grown = realloc(c->by_fd, n * sizeof(*grown));
		if (grown == NULL)
			return -1;
		memset(grown + c->n_by_fd, 0, (n - c->n_by_fd) * sizeof(*grown));
		c->by_fd = grown;
		c->n_by_fd = n;
	}
	c->by_fd[k->fd] = k;
	return 0;
}

/* Runs in the same loop turn as the accept, before any I/O on the new
 * connections: evhttp has wrapped each bufferevent in its connection,
 * whose close callback can now be set. */
static void adopt(evutil_socket_t unused, short what, void *arg)
{
	struct connections *c = arg;
	struct conn *k;

	(void)unused;
	(void)what;
	while ((k = TAILQ_FIRST(&c->adopting)) != NULL) {
		struct evhttp_connection *evcon;

		TAILQ_REMOVE(&c->adopting, k, link);
		evcon = seams_connection_of(k->bev);
		k->fd = bufferevent_getfd(k->bev);
		if (evcon == NULL || k->fd < 0 || index_fd(c, k) != 0) {
			/* evhttp already gave it up (out of memory) */
			bufferevent_decref(k->bev);
			unfresh(k);
			free(k);
			c->stats.open--;
			update_accepting(c);
			drain_progress(c);
			continue;
		}
		k->evcon = evcon;
		k->state = CONN_IDLE;
		evhttp_connection_set_closecb(k->evcon, on_close, k);
		k->input_cb = evbuffer_add_cb(bufferevent_get_input(k->bev), on_input, k);
		/* our reference kept the bufferevent valid until now */
		bufferevent_decref(k->bev);
	}
}

/* evhttp's bufferevent factory: called for each accepted connection,
 * before evhttp makes its connection object around it. */
static struct bufferevent *make_bufferevent(struct event_base *base, void *arg)
{
	struct connections *c = arg;
	struct conn *k = calloc(1, sizeof(*k));
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (k == NULL || bev == NULL) {
		free(k);
		return bev; /* untracked; NULL lets evhttp make its own */
	}
	k->owner = c;
	k->bev = bev;
	k->fd = -1;
	k->state = CONN_NEW;
	bufferevent_incref(bev);
	TAILQ_INSERT_TAIL(&c->adopting, k, link);
	event_active(c->adopt_ev, EV_TIMEOUT, 1);
	k->fresh = true;
	c->fresh++;
	c->stats.open++;
	c->stats.accepted++;
	update_accepting(c);
	return bev;
}

/* Close every connection whose request is overdue. */
static void deadline_passed(evutil_socket_t unused, short what, void *arg)
{
	struct connections *c = arg;
	uint64_t now = clock_now_ns();
	struct conn *k;

	(void)unused;
	(void)what;
	while ((k = TAILQ_FIRST(&c->reading)) != NULL && k->deadline_ns <= now) {
		stop_reading(k);
		k->state = CONN_BUSY; /* off the list; freed by on_close */
		c->stats.request_timeouts++;
		log_debug("closing a connection: its request took longer than request_timeout");
		/* frees the request being read too, and calls on_close */
		evhttp_connection_free(k->evcon);
	}
	arm_deadline_timer(c);
}

static void resume_after_shortage(evutil_socket_t unused, short what, void *arg)
{
	struct connections *c = arg;

	(void)unused;
	(void)what;
	c->fd_shortage = false;
	if (!c->paused)
		listeners_enable(c, true);
}

static void accept_failed(struct evconnlistener *listener, void *arg)
{
	struct connections *c = listener_owner;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, FD_SHORTAGE_PAUSE_MS * 1000};

	(void)listener;
	(void)arg;
	if (c == NULL)
		return;
	if (warn_again(&c->accept_warned_ns))
		log_warn("accept: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		c->fd_shortage = true;
		listeners_enable(c, false);
		evtimer_add(c->resume_ev, &tv);
	}
}

/* Close the connections that wait for a first request (CONN_IDLE, never
 * served); with all, the ones reading a request too. */
static void close_unfinished(struct connections *c, bool all)
{
	for (size_t fd = 0; fd < c->n_by_fd; fd++) {
		struct conn *k = c->by_fd[fd];

		if (k != NULL &&
		    ((k->state == CONN_IDLE && !k->served) || (all && k->state == CONN_READING))) {
			stop_reading(k);
			k->state = CONN_BUSY; /* freed by on_close */
			evhttp_connection_free(k->evcon);
		}
	}
}

static void grace_over(evutil_socket_t unused, short what, void *arg)
{
	struct connections *c = arg;

	(void)unused;
	(void)what;
	c->drain_grace_ns = 0; /* whatever the clock says: the grace is over */
	close_unfinished(c, false);
	drain_progress(c);
}

struct connections *connections_new(struct event_base *base, struct evhttp *http,
				    unsigned max_connections, uint64_t request_timeout_ms)
{
	struct connections *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	TAILQ_INIT(&c->adopting);
	TAILQ_INIT(&c->reading);
	c->adopt_ev = event_new(base, -1, 0, adopt, c);
	c->deadline_ev = evtimer_new(base, deadline_passed, c);
	c->resume_ev = evtimer_new(base, resume_after_shortage, c);
	c->grace_ev = evtimer_new(base, grace_over, c);
	if (c->adopt_ev == NULL || c->deadline_ev == NULL || c->resume_ev == NULL ||
	    c->grace_ev == NULL) {
		connections_free(c);
		return NULL;
	}
	connections_set_limits(c, max_connections, request_timeout_ms);
	evhttp_set_bevcb(http, make_bufferevent, c);
	return c;
}

void connections_set_limits(struct connections *c, unsigned max_connections,
			    uint64_t request_timeout_ms)
{
	c->max = max_connections ? max_connections : 1;
	c->request_timeout_ns = request_timeout_ms * 1000000u;
	update_accepting(c);
}

void connections_set_listeners(struct connections *c, struct evconnlistener **listeners, size_t n)
{
	c->listeners = listeners;
	c->n_listeners = n;
	listener_owner = n > 0 ? c : NULL;
	for (size_t i = 0; i < n; i++)
		evconnlistener_set_error_cb(listeners[i], accept_failed);
	if (c->paused || c->fd_shortage)
		listeners_enable(c, false);
}

static struct conn *conn_of(struct connections *c, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	evutil_socket_t fd;

	if (evcon == NULL)
		return NULL;
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd < 0 || (size_t)fd >= c->n_by_fd)
		return NULL;
	return c->by_fd[fd];
}

/* The answer has been written: the connection waits for its next request,
 * whose bytes may already be here (pipelining). */
static void on_complete(struct evhttp_request *req, void *arg)
{
	struct conn *k = arg;

	(void)req;
	if (k->state != CONN_BUSY)
		return;
	k->state = CONN_IDLE;
	if (evbuffer_get_length(bufferevent_get_input(k->bev)) > 0)
		start_reading(k);
}

void connections_request_read(struct connections *c, struct evhttp_request *req)
{
	struct conn *k = conn_of(c, req);

	if (k == NULL)
		return;
	unfresh(k);
	stop_reading(k);
	k->state = CONN_BUSY;
	k->served = true;
	evhttp_request_set_on_complete_cb(req, on_complete, k);
	drain_progress(c);
}

void connections_drain(struct connections *c, uint64_t grace_ms, void (*drained)(void *arg),
		       void *arg)
{
	struct timeval tv = {(time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000) * 1000};

	c->draining = true;
	c->drained = drained;
	c->drained_arg = arg;
	c->drain_grace_ns = clock_now_ns() + grace_ms * UINT64_C(1000000);
	evtimer_add(c->grace_ev, &tv);
}

void connections_drain_abort(struct connections *c)
{
	c->drain_grace_ns = 0;
	close_unfinished(c, true);
	drain_progress(c);
}

unsigned connections_unfinished(const struct connections *c)
{
	return c->n_reading + (clock_now_ns() < c->drain_grace_ns ? c->fresh : 0);
}

void connections_get_stats(const struct connections *c, struct connections_stats *st)
{
	*st = c->stats;
}

void connections_free(struct connections *c)
{
	struct conn *k;

	if (c == NULL)
		return;
	if (listener_owner == c)
		listener_owner = NULL;
	/* after evhttp_free every adopted connection is closed; only ones
	 * accepted in this very turn can be left */
	while ((k = TAILQ_FIRST(&c->adopting)) != NULL) {
		TAILQ_REMOVE(&c->adopting, k, link);
		bufferevent_decref(k->bev);
		free(k);
	}
	if (c->adopt_ev)
		event_free(c->adopt_ev);
	if (c->deadline_ev)
		event_free(c->deadline_ev);
	if (c->resume_ev)
		event_free(c->resume_ev);
	if (c->grace_ev)
		event_free(c->grace_ev);
	free(c->by_fd);
	free(c);
}
