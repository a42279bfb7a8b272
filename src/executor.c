/* The bounded worker pool: a queue of tasks, up to N threads that run them,
 * and completions handed back to the event loop through one eventfd. It
 * knows nothing of HTTP or curl: server.c submits tasks, their done
 * callbacks run on the loop thread.
 *
 * The pool is elastic between min_threads and threads: a task that finds
 * no idle worker asks the spawner (one helper thread per pool) for a new
 * one, and a worker above min_threads that waits idle_timeout for a task
 * leaves. The spawner also joins the workers that left, so the loop thread
 * never calls pthread_create or pthread_join (a pthread_create with a
 * 256 KiB stack took 15-40 us on the 2-vCPU test VM, a burst of a thousand
 * would have stalled every client for tens of milliseconds). */
#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "lanes.h"

/* t->state. A task is in at most one list: its lane's queue (QUEUED,
 * src/lanes.h) or the completion list (FINISHED), both linked through
 * t->next/t->prev. */
enum executor_task_state {
	EXECUTOR_TASK_IDLE = 0,
	EXECUTOR_TASK_QUEUED,
	EXECUTOR_TASK_RUNNING,
	EXECUTOR_TASK_FINISHED,
	EXECUTOR_TASK_DONE,
	EXECUTOR_TASK_CANCELLED
};

struct executor_worker {
	struct executor *ex;
	pthread_t thread; /* valid once created; under ex->lock */
	int created;	  /* pthread_create returned; under ex->lock */
	unsigned id;
	int stop;   /* leave after the current task; under ex->lock */
	int exited; /* fini has run, ready to join; under ex->lock */
	struct executor_worker *next;
	pthread_cond_t cond;	/* it waits here for work, alone */
	int idle;		/* on ex->idle; under ex->lock */
	uint64_t idle_since_ns; /* when it went on ex->idle; under ex->lock */
	struct executor_worker *idle_next;
};

#define EXECUTOR_ID_WORDS (EXECUTOR_MAX_THREADS / 64)

struct executor {
	struct event_base *base;
	struct event *wake_ev;
	int wake_fd;

	executor_worker_init_fn init;
	executor_worker_fini_fn fini;
	executor_idle_fn idle_fn; /* guarded by lock */
	void *arg;
	int inline_mode;
	int inline_ready; /* init(0, arg) has run */
	void *inline_ctx;

	/* One lock for the queue, the completion list, the workers and the
	 * counters; every critical section is a few pointer moves. */
	pthread_mutex_t lock;
	/* Workers waiting for work, the one that went idle last on top: a new
	 * task wakes that one (LIFO), whose cache, CPU and upstream connection
	 * are the warmest. Measured on a 2-vCPU VM with one client sending
	 * fetches one after another: 16 workers woken first-in-first-out added
	 * 78-103 us to a fetch, one worker 66-72 us; LIFO gives the second.
	 * LIFO also makes the elastic pool shrink: the workers at the bottom
	 * of the stack are the ones that stay idle long enough to leave. */
	struct executor_worker *idle;
	unsigned n_idle;
	int running;
	/* the queue: a lane per admission key, the ready ones served
	 * round-robin; a worker takes a task only from a ready lane */
	struct lanes lanes;
	struct executor_task *done_head, *done_tail;
	struct executor_worker *workers;
	unsigned threads;	  /* live: workers not told to stop; under lock */
	unsigned max_threads;	  /* under lock */
	unsigned min_threads;	  /* under lock */
	uint64_t idle_timeout_ns; /* under lock; 0: never leave */
	size_t stack_size;	  /* for workers started next; under lock */
	/* Workers the spawner owes: reserved by executor_submit (a task and
	 * no idle worker) or by a reconfigure below min_threads; threads +
	 * to_start <= max_threads. Under lock. */
	unsigned to_start;
	/* ids held by workers not told to stop, bit id - 1: the lowest free
	 * one is handed out in a few word scans (the linear search it
	 * replaces was quadratic: 16384 workers took minutes to start). */
	uint64_t ids[EXECUTOR_ID_WORDS];
	unsigned queue_limit;
	unsigned busy;
	unsigned exited;
	uint64_t completed;
	uint64_t rejected;
	uint64_t cancelled;
	uint64_t spawned;
	uint64_t retired;
	uint64_t spawn_failed;

	pthread_t spawner;
	int spawner_started;
	/* to_start or exited went up, a lane's time is earlier than
	 * spawner_due, or !running. Before the spawner runs, executor_start
	 * waits here for its workers to go idle. CLOCK_MONOTONIC: the spawner
	 * also wakes the timed lanes when their time comes. */
	pthread_cond_t spawner_cond;
	uint64_t spawner_due; /* when the spawner wakes by itself, 0: never */
	int started;	      /* executor_start has returned; under lock */
};

/* Wake the worker that went idle last, if any is idle. Under ex->lock.
 * Returns 1 if one was woken. */
static int executor_wake_worker_locked(struct executor *ex)
{
	struct executor_worker *w = ex->idle;

	if (w == NULL)
		return 0;
	ex->idle = w->idle_next;
	ex->n_idle--;
	w->idle = 0;
	pthread_cond_signal(&w->cond);
	return 1;
}

/* The lanes may have a time earlier than the spawner's wake-up: tell it.
 * Under ex->lock. */
static void executor_timer_check_locked(struct executor *ex)
{
	uint64_t due = lanes_next_due(&ex->lanes);

	if (due != 0 && (ex->spawner_due == 0 || due < ex->spawner_due))
		pthread_cond_signal(&ex->spawner_cond);
}

/* A task is ready: wake an idle worker, or have the spawner start one
 * when none is idle and the pool may grow. Under ex->lock. */
static void executor_want_worker_locked(struct executor *ex)
{
	if (!executor_wake_worker_locked(ex) && ex->threads + ex->to_start < ex->max_threads) {
		ex->to_start++;
		pthread_cond_signal(&ex->spawner_cond);
	}
}

/* Wake every worker (to make those told to stop leave, or to have idle
 * ones look at a new timeout). Under ex->lock. */
static void executor_wake_all_locked(struct executor *ex)
{
	for (struct executor_worker *w = ex->workers; w != NULL; w = w->next)
		pthread_cond_signal(&w->cond);
}

/* Take w off the idle stack if it is there. Under ex->lock. */
static void executor_unidle_locked(struct executor *ex, struct executor_worker *w)
{
	struct executor_worker **pw;

	if (!w->idle)
		return;
	for (pw = &ex->idle; *pw != w; pw = &(*pw)->idle_next)
		;
	*pw = w->idle_next;
	ex->n_idle--;
	w->idle = 0;
}

/* The lowest id no staying worker holds, marked taken. Under ex->lock;
 * there is one, as threads <= EXECUTOR_MAX_THREADS. */
static unsigned executor_take_id_locked(struct executor *ex)
{
	for (unsigned i = 0; i < EXECUTOR_ID_WORDS; i++) {
		if (ex->ids[i] != UINT64_MAX) {
			unsigned bit = (unsigned)__builtin_ctzll(~ex->ids[i]);

			ex->ids[i] |= UINT64_C(1) << bit;
			return i * 64 + bit + 1;
		}
	}
	return 0;
}

static void executor_release_id_locked(struct executor *ex, unsigned id)
{
	ex->ids[(id - 1) / 64] &= ~(UINT64_C(1) << ((id - 1) % 64));
}

/* w no longer counts as live: it leaves after its current task. Under
 * ex->lock. */
static void executor_retire_locked(struct executor *ex, struct executor_worker *w)
{
	w->stop = 1;
	ex->threads--;
	executor_release_id_locked(ex, w->id);
}

/* Make the eventfd readable. The counter cannot reach its maximum, so the
 * only failure to retry is EINTR. */
static void executor_wake(struct executor *ex)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(ex->wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

/* Append a finished task under ex->lock. Returns 1 when the list was empty,
 * that is when the caller must wake the loop after unlocking: one wake-up
 * per batch, as h2o's multithread.c and memcached's thread.c do. */
static int executor_push_done_locked(struct executor *ex, struct executor_task *t)
{
	int was_empty = ex->done_head == NULL;

	t->state = EXECUTOR_TASK_FINISHED;
	t->next = NULL;
	t->prev = NULL;
	if (ex->done_tail != NULL)
		ex->done_tail->next = t;
	else
		ex->done_head = t;
	ex->done_tail = t;
	ex->completed++;
	return was_empty;
}

/* Swap the completion list out and run every done without the lock, as
 * redis's bio.c does. Returns how many ran. */
static unsigned executor_deliver(struct executor *ex)
{
	struct executor_task *t, *next, *i;
	unsigned n = 0;

	pthread_mutex_lock(&ex->lock);
	t = ex->done_head;
	ex->done_head = NULL;
	ex->done_tail = NULL;
	for (i = t; i != NULL; i = i->next)
		i->state = EXECUTOR_TASK_DONE;
	pthread_mutex_unlock(&ex->lock);

	for (; t != NULL; t = next) {
		next = t->next;
		t->next = NULL;
		t->done(t);
		n++;
	}
	return n;
}

static void executor_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct executor *ex = arg;
	uint64_t count;
	ssize_t n;

	(void)what;
	/* Read before the swap: a completion pushed after the read finds
	 * either a non-empty list we are about to take, or an empty one and
	 * writes again. */
	do
		n = read(fd, &count, sizeof(count));
	while (n < 0 && errno == EINTR);
	executor_deliver(ex);
}

/* Wait on w->cond for a task. Above min_threads with a timeout, the wait
 * ends at idle_since + timeout; the caller then leaves if the pool is
 * still above min_threads and w still idle. Under ex->lock. Returns 1 when
 * w should leave. */
static int executor_wait_locked(struct executor *ex, struct executor_worker *w)
{
	uint64_t deadline, now;
	struct timespec ts;

	if (!w->idle) {
		w->idle = 1;
		w->idle_next = ex->idle;
		ex->idle = w;
		ex->n_idle++;
		w->idle_since_ns = clock_now_ns();
		if (!ex->started)
			pthread_cond_signal(&ex->spawner_cond);
	}
	if (ex->threads <= ex->min_threads || ex->idle_timeout_ns == 0) {
		pthread_cond_wait(&w->cond, &ex->lock);
		return 0;
	}
	deadline = w->idle_since_ns + ex->idle_timeout_ns;
	now = clock_now_ns();
	if (now >= deadline)
		return 1;
	ts.tv_sec = (time_t)(deadline / UINT64_C(1000000000));
	ts.tv_nsec = (long)(deadline % UINT64_C(1000000000));
	pthread_cond_timedwait(&w->cond, &ex->lock, &ts);
	return 0;
}

static void *executor_worker_main(void *arg)
{
	struct executor_worker *w = arg;
	struct executor *ex = w->ex;
	struct executor_task *t;
	void *ctx = NULL;
	executor_idle_fn idle_fn;
	uint64_t now;
	int wake;

	/* SCHED_BATCH: a worker whose fetch becomes ready does not preempt the
	 * thread running on its CPU (the loop, most often); it runs when that
	 * one sleeps or its slice ends. Lowering one's own policy needs no
	 * privilege; if it fails, nothing changes. */
	{
		struct sched_param sp = {.sched_priority = 0};

		pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	}
	if (ex->init != NULL)
		ctx = ex->init(w->id, ex->arg);

	pthread_mutex_lock(&ex->lock);
	for (;;) {
		while (!lanes_any_ready(&ex->lanes) && !w->stop) {
			if (executor_wait_locked(ex, w) && !lanes_any_ready(&ex->lanes) &&
			    !w->stop) {
				executor_unidle_locked(ex, w);
				executor_retire_locked(ex, w);
				ex->retired++;
			}
		}
		executor_unidle_locked(ex, w);
		if (w->stop)
			break;
		now = clock_now_ns();
		t = lanes_pop(&ex->lanes, now);
		executor_timer_check_locked(ex); /* its lane may be paced now */
		ex->busy++;
		t->state = EXECUTOR_TASK_RUNNING;
		t->started_ns = now;
		pthread_mutex_unlock(&ex->lock);

		t->run(t, ctx, w->id);

		pthread_mutex_lock(&ex->lock);
		ex->busy--;
		/* a lane this frees is ready for this worker's next turn */
		lanes_finished(&ex->lanes, t, clock_now_ns());
		executor_timer_check_locked(ex);
		idle_fn = ex->busy == 0 && ex->lanes.queued == 0 ? ex->idle_fn : NULL;
		wake = executor_push_done_locked(ex, t);
		if (wake || idle_fn != NULL) {
			pthread_mutex_unlock(&ex->lock);
			if (wake)
				executor_wake(ex);
			if (idle_fn != NULL)
				idle_fn(ex->arg);
			pthread_mutex_lock(&ex->lock);
		}
	}
	/* Hand on a wake-up this stopping worker may have taken from a
	 * signal meant for a worker that stays. */
	if (lanes_any_ready(&ex->lanes))
		executor_wake_worker_locked(ex);
	pthread_mutex_unlock(&ex->lock);

	if (ex->fini != NULL)
		ex->fini(ctx, ex->arg);

	pthread_mutex_lock(&ex->lock);
	w->exited = 1;
	ex->exited++;
	pthread_cond_signal(&ex->spawner_cond);
	pthread_mutex_unlock(&ex->lock);
	return NULL;
}

/* A worker with the lowest free id, in the list and counted live, its
 * thread not yet created. Under ex->lock. NULL on out of memory. */
static struct executor_worker *executor_add_worker_locked(struct executor *ex)
{
	struct executor_worker *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int err;

	if (w == NULL)
		return NULL;
	/* CLOCK_MONOTONIC, the clock of idle_since_ns */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0) {
		free(w);
		return NULL;
	}
	w->ex = ex;
	w->id = executor_take_id_locked(ex);
	w->next = ex->workers;
	ex->workers = w;
	ex->threads++;
	return w;
}

/* Undo executor_add_worker_locked for a thread that could not start. */
static void executor_drop_worker_locked(struct executor *ex, struct executor_worker *w)
{
	struct executor_worker **pw;

	for (pw = &ex->workers; *pw != w; pw = &(*pw)->next)
		;
	*pw = w->next;
	ex->threads--;
	executor_release_id_locked(ex, w->id);
	pthread_cond_destroy(&w->cond);
	free(w);
}

/* Create w's thread with a stack of stack_size (0: the default), born
 * with every signal blocked, as redis's bio.c threads are, so no signal
 * meant for the loop can land on it. Call without ex->lock. Returns 0 and
 * the thread in *out, or an errno. */
static int executor_create_thread(struct executor_worker *w, size_t stack_size, pthread_t *out)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int err;

	long floor = sysconf(_SC_THREAD_STACK_MIN);

	/* PTHREAD_STACK_MIN is a floor the C library may raise at run time
	 * (it grows with the CPU's signal frame) */
	if (stack_size != 0 && floor > 0 && stack_size < (size_t)floor)
		stack_size = (size_t)floor;
	if (pthread_attr_init(&attr) != 0)
		return ENOMEM;
	if (stack_size != 0 && (err = pthread_attr_setstacksize(&attr, stack_size)) != 0) {
		pthread_attr_destroy(&attr);
		return err;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(out, &attr, executor_worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

/* Join the workers that have left. Under ex->lock, dropped while joining:
 * their fini has run, so each join waits at most for the thread's last
 * instructions. */
static void executor_reap_locked(struct executor *ex)
{
	struct executor_worker **pw, *w, *gone = NULL;

	if (ex->exited == 0)
		return;
	for (pw = &ex->workers; (w = *pw) != NULL;) {
		if (w->exited && w->created) {
			*pw = w->next;
			w->next = gone;
			gone = w;
			ex->exited--;
		} else {
			pw = &w->next;
		}
	}
	pthread_mutex_unlock(&ex->lock);
	while ((w = gone) != NULL) {
		gone = w->next;
		pthread_join(w->thread, NULL);
		pthread_cond_destroy(&w->cond);
		free(w);
	}
	pthread_mutex_lock(&ex->lock);
}

/* The spawner: starts the workers executor_submit and executor_reconfigure
 * ask for, one at a time without the lock, and joins those that left. */
static void *executor_spawner_main(void *arg)
{
	struct executor *ex = arg;
	struct executor_worker *w;
	pthread_t thread;
	size_t stack_size;
	int err;

	pthread_mutex_lock(&ex->lock);
	while (ex->running) {
		uint64_t now = clock_now_ns(), due;

		/* lanes whose time came: a worker for each task that may start */
		for (unsigned n = lanes_due(&ex->lanes, now); n > 0; n--)
			executor_want_worker_locked(ex);
		if (ex->to_start == 0 && ex->exited == 0) {
			due = lanes_next_due(&ex->lanes);
			ex->spawner_due = due;
			if (due == 0) {
				pthread_cond_wait(&ex->spawner_cond, &ex->lock);
			} else {
				struct timespec ts = {
					.tv_sec = (time_t)(due / UINT64_C(1000000000)),
					.tv_nsec = (long)(due % UINT64_C(1000000000))};

				pthread_cond_timedwait(&ex->spawner_cond, &ex->lock, &ts);
			}
			continue;
		}
		executor_reap_locked(ex);
		if (ex->to_start == 0 || !ex->running)
			continue;
		ex->to_start--;
		w = executor_add_worker_locked(ex);
		if (w == NULL) {
			ex->spawn_failed++;
			continue;
		}
		/* counted now: its task may be done before this thread has
		 * the lock again */
		ex->spawned++;
		stack_size = ex->stack_size;
		pthread_mutex_unlock(&ex->lock);
		err = executor_create_thread(w, stack_size, &thread);
		pthread_mutex_lock(&ex->lock);
		if (err != 0) {
			/* Its task waits for a busy worker; when none is live
			 * (min_threads = 0) the next submit asks again. */
			executor_drop_worker_locked(ex, w);
			ex->spawned--;
			ex->spawn_failed++;
			continue;
		}
		w->thread = thread;
		w->created = 1;
	}
	pthread_mutex_unlock(&ex->lock);
	return NULL;
}

/* Tell the highest-numbered working threads to leave after their current
 * task. Call with ex->lock held. Never waits for them. */
static void executor_stop_workers_locked(struct executor *ex, unsigned n)
{
	struct executor_worker *w, *top;

	for (; n > 0; n--) {
		top = NULL;
		for (w = ex->workers; w != NULL; w = w->next)
			if (!w->stop && (top == NULL || w->id > top->id))
				top = w;
		if (top == NULL)
			break;
		executor_retire_locked(ex, top);
	}
}

/* Take p's numbers, and set to_start so that min_threads <= threads +
 * to_start <= max_threads. Under ex->lock. */
static void executor_apply_params_locked(struct executor *ex, const struct executor_params *p)
{
	unsigned released;

	ex->max_threads = p->threads;
	ex->min_threads = p->min_threads < p->threads ? p->min_threads : p->threads;
	ex->queue_limit = p->queue_limit;
	ex->stack_size = p->stack_size;
	ex->idle_timeout_ns = p->idle_timeout_ms * UINT64_C(1000000);
	if (ex->threads > ex->max_threads)
		executor_stop_workers_locked(ex, ex->threads - ex->max_threads);
	if (ex->threads + ex->to_start > ex->max_threads)
		ex->to_start = ex->max_threads - ex->threads;
	if (ex->threads + ex->to_start < ex->min_threads)
		ex->to_start = ex->min_threads - ex->threads;
	released = lanes_set_rules(&ex->lanes, p->per_key_limit,
				   p->per_key_interval_ms * UINT64_C(1000000), clock_now_ns());
	/* tasks the new rules release asked for no worker when submitted */
	for (; released > 0; released--)
		executor_want_worker_locked(ex);
	executor_timer_check_locked(ex);
}

/* A zeroed executor with its lock and the spawner's condition variable,
 * or NULL. */
static struct executor *executor_alloc(void)
{
	struct executor *ex = calloc(1, sizeof(*ex));
	pthread_condattr_t ca;
	int err;

	if (ex == NULL)
		return NULL;
	ex->wake_fd = -1;
	if (pthread_mutex_init(&ex->lock, NULL) != 0) {
		free(ex);
		return NULL;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&ex->spawner_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0) {
		pthread_mutex_destroy(&ex->lock);
		free(ex);
		return NULL;
	}
	return ex;
}

struct executor *executor_start(struct event_base *base, const struct executor_params *p,
				executor_worker_init_fn init, executor_worker_fini_fn fini,
				void *arg)
{
	struct executor *ex = NULL;
	struct executor_worker *w;
	pthread_t thread;
	sigset_t all, old;
	unsigned i;

	if (p->threads > EXECUTOR_MAX_THREADS || (ex = executor_alloc()) == NULL)
		return NULL;
	ex->base = base;
	ex->init = init;
	ex->fini = fini;
	ex->arg = arg;
	ex->queue_limit = p->queue_limit;
	ex->inline_mode = p->threads == 0;
	ex->running = 1;
	if (lanes_init(&ex->lanes) != 0)
		goto bad;

	ex->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ex->wake_fd < 0)
		goto bad;
	ex->wake_ev = event_new(base, ex->wake_fd, EV_READ | EV_PERSIST, executor_wake_cb, ex);
	if (ex->wake_ev == NULL || event_add(ex->wake_ev, NULL) < 0)
		goto bad;

	if (ex->inline_mode) {
		ex->inline_ctx = init != NULL ? init(0, arg) : NULL;
		ex->inline_ready = 1;
		return ex;
	}
	/* The first min_threads start here, at start-up, so the pool is
	 * whole when the first request comes; the lock is held so they wait
	 * for the list to be complete before touching the queue. */
	pthread_mutex_lock(&ex->lock);
	executor_apply_params_locked(ex, p);
	ex->to_start = 0;
	for (i = 0; i < ex->min_threads; i++) {
		w = executor_add_worker_locked(ex);
		if (w == NULL || executor_create_thread(w, ex->stack_size, &thread) != 0) {
			if (w != NULL)
				executor_drop_worker_locked(ex, w);
			pthread_mutex_unlock(&ex->lock);
			goto bad;
		}
		w->thread = thread;
		w->created = 1;
	}
	/* Return with every one of them idle: a task submitted while one
	 * was still starting would have found none idle and asked for one
	 * more. */
	while (ex->n_idle < ex->min_threads)
		pthread_cond_wait(&ex->spawner_cond, &ex->lock);
	ex->started = 1;
	pthread_mutex_unlock(&ex->lock);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&ex->spawner, NULL, executor_spawner_main, ex) == 0)
		ex->spawner_started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ex->spawner_started)
		goto bad;
	return ex;
bad:
	executor_free(ex);
	return NULL;
}

struct executor *executor_new(struct event_base *base, unsigned threads, unsigned queue_limit,
			      executor_worker_init_fn init, executor_worker_fini_fn fini, void *arg)
{
	struct executor_params p = {
		.threads = threads, .min_threads = threads, .queue_limit = queue_limit};

	return executor_start(base, &p, init, fini, arg);
}

int executor_submit(struct executor *ex, struct executor_task *t)
{
	int wake, ready;

	t->next = NULL;
	t->prev = NULL;
	t->submitted_ns = clock_now_ns();

	if (ex->inline_mode) {
		t->lane = NULL;
		pthread_mutex_lock(&ex->lock);
		if (!ex->running) {
			ex->rejected++;
			pthread_mutex_unlock(&ex->lock);
			return -1;
		}
		ex->busy++;
		pthread_mutex_unlock(&ex->lock);

		t->state = EXECUTOR_TASK_RUNNING;
		t->started_ns = clock_now_ns();
		t->run(t, ex->inline_ctx, 0);

		pthread_mutex_lock(&ex->lock);
		ex->busy--;
		wake = executor_push_done_locked(ex, t);
		pthread_mutex_unlock(&ex->lock);
		if (wake)
			executor_wake(ex);
		return 0;
	}

	pthread_mutex_lock(&ex->lock);
	/* Capacity is max_threads + queue_limit, counted as busy + queued so
	 * a task not yet picked up by a worker does not count as waiting. */
	if (!ex->running || ex->busy + ex->lanes.queued >= ex->max_threads + ex->queue_limit ||
	    (ready = lanes_push(&ex->lanes, t, t->submitted_ns)) < 0) {
		ex->rejected++;
		pthread_mutex_unlock(&ex->lock);
		return -1;
	}
	t->state = EXECUTOR_TASK_QUEUED;
	/* A worker for it, unless its key's rules hold it back (then the
	 * task that frees its lane, or the spawner when its time comes,
	 * finds one). No idle worker: the spawner starts one, not here. */
	if (ready)
		executor_want_worker_locked(ex);
	executor_timer_check_locked(ex);
	pthread_mutex_unlock(&ex->lock);
	return 0;
}

int executor_cancel(struct executor *ex, struct executor_task *t)
{
	pthread_mutex_lock(&ex->lock);
	if (t->state != EXECUTOR_TASK_QUEUED) {
		pthread_mutex_unlock(&ex->lock);
		return -1;
	}
	lanes_remove(&ex->lanes, t, clock_now_ns());
	t->state = EXECUTOR_TASK_CANCELLED;
	ex->cancelled++;
	pthread_mutex_unlock(&ex->lock);
	return 0;
}

int executor_pause_key(struct executor *ex, const char *key, uint64_t ms)
{
	uint64_t now = clock_now_ns();
	int r = 0;

	if (ex->inline_mode || key == NULL)
		return 0;
	pthread_mutex_lock(&ex->lock);
	if (ex->running) {
		r = lanes_pause(&ex->lanes, key, now + ms * UINT64_C(1000000), now);
		/* the spawner wakes the lane when the pause is over */
		executor_timer_check_locked(ex);
	}
	pthread_mutex_unlock(&ex->lock);
	return r < 0 ? -1 : 0;
}

void executor_set_idle(struct executor *ex, executor_idle_fn idle)
{
	pthread_mutex_lock(&ex->lock);
	ex->idle_fn = idle;
	pthread_mutex_unlock(&ex->lock);
}

int executor_reconfigure(struct executor *ex, const struct executor_params *p)
{
	if (ex->inline_mode != (p->threads == 0) || p->threads > EXECUTOR_MAX_THREADS)
		return -1;
	pthread_mutex_lock(&ex->lock);
	if (ex->inline_mode) {
		ex->queue_limit = p->queue_limit;
		pthread_mutex_unlock(&ex->lock);
		return 0;
	}
	executor_apply_params_locked(ex, p);
	/* those told to stop leave, idle ones look at the new timeout and
	 * at lanes the new rules made ready */
	executor_wake_all_locked(ex);
	pthread_cond_signal(&ex->spawner_cond);
	pthread_mutex_unlock(&ex->lock);
	return 0;
}

int executor_resize(struct executor *ex, unsigned threads, unsigned queue_limit)
{
	struct executor_params p;

	pthread_mutex_lock(&ex->lock);
	p.stack_size = ex->stack_size;
	p.idle_timeout_ms = ex->idle_timeout_ns / UINT64_C(1000000);
	p.per_key_limit = ex->lanes.limit;
	p.per_key_interval_ms = ex->lanes.interval_ns / UINT64_C(1000000);
	pthread_mutex_unlock(&ex->lock);
	p.threads = threads;
	p.min_threads = threads;
	p.queue_limit = queue_limit;
	return executor_reconfigure(ex, &p);
}

void executor_get_stats(struct executor *ex, struct executor_stats *out)
{
	pthread_mutex_lock(&ex->lock);
	out->threads = ex->max_threads;
	out->min_threads = ex->min_threads;
	out->live = ex->threads;
	out->busy = ex->busy;
	out->idle = ex->n_idle;
	out->queued = ex->lanes.queued;
	out->queue_limit = ex->queue_limit;
	out->completed = ex->completed;
	out->rejected = ex->rejected;
	out->cancelled = ex->cancelled;
	out->spawned = ex->spawned;
	out->retired = ex->retired;
	out->spawn_failed = ex->spawn_failed;
	out->keys = ex->lanes.n_keyed;
	out->keys_at_limit = ex->lanes.n_full;
	out->keys_paced = ex->lanes.n_paced;
	out->key_waiting = ex->lanes.held;
	out->key_limit_waits = ex->lanes.limit_waits;
	out->key_pace_waits = ex->lanes.pace_waits;
	out->key_pauses = ex->lanes.pauses;
	pthread_mutex_unlock(&ex->lock);
}

void executor_free(struct executor *ex)
{
	struct executor_worker *w;
	struct executor_task *t;

	if (ex == NULL)
		return;

	pthread_mutex_lock(&ex->lock);
	ex->running = 0;
	pthread_cond_signal(&ex->spawner_cond);
	pthread_mutex_unlock(&ex->lock);
	/* After this, every worker in the list has its thread. */
	if (ex->spawner_started)
		pthread_join(ex->spawner, NULL);

	pthread_mutex_lock(&ex->lock);
	for (w = ex->workers; w != NULL; w = w->next)
		w->stop = 1;
	ex->threads = 0;
	executor_wake_all_locked(ex);
	pthread_mutex_unlock(&ex->lock);

	while ((w = ex->workers) != NULL) {
		ex->workers = w->next;
		pthread_join(w->thread, NULL);
		pthread_cond_destroy(&w->cond);
		free(w);
	}

	if (ex->lanes.unkeyed != NULL) {
		while ((t = lanes_drain(&ex->lanes)) != NULL)
			t->state = EXECUTOR_TASK_CANCELLED;
		lanes_fini(&ex->lanes);
	}

	/* A done may submit again; running is 0 so that is refused, and the
	 * list stays empty once drained. */
	while (executor_deliver(ex) > 0)
		;

	if (ex->inline_ready && ex->fini != NULL)
		ex->fini(ex->inline_ctx, ex->arg);
	if (ex->wake_ev != NULL)
		event_free(ex->wake_ev);
	if (ex->wake_fd >= 0)
		close(ex->wake_fd);
	pthread_cond_destroy(&ex->spawner_cond);
	pthread_mutex_destroy(&ex->lock);
	free(ex);
}
