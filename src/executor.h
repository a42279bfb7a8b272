#ifndef FETCHD_EXECUTOR_H
#define FETCHD_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct executor;
struct lane;

/* A unit of work. Embed it in your own struct and recover that with
 * offsetof. The executor knows nothing of what the task does. */
struct executor_task {
	/* Runs on a worker thread (or on the loop thread in inline mode).
	 * worker_ctx is what worker_init returned for that worker. */
	void (*run)(struct executor_task *t, void *worker_ctx, unsigned worker_id);
	/* Runs on the loop thread after run has returned, exactly once,
	 * unless executor_cancel removed the task first. */
	void (*done)(struct executor_task *t);

	/* The admission key, set by the caller before executor_submit: tasks
	 * whose keys are equal strings share the per-key rules
	 * (executor_params.per_key_limit and per_key_interval_ms,
	 * executor_pause_key). NULL: no key, no rule. The string must stay
	 * unchanged until done runs or executor_cancel removes the task; the
	 * executor never interprets it. Ignored in inline mode. */
	const char *key;

	/* Filled by the executor, CLOCK_MONOTONIC nanoseconds: when submitted
	 * and when a worker took the task. */
	uint64_t submitted_ns;
	uint64_t started_ns;

	/* Owned by the executor. */
	struct executor_task *next;
	struct executor_task *prev;
	struct lane *lane;
	int state;
};

struct executor_stats {
	unsigned threads;     /* the most workers (executor_params.threads) */
	unsigned min_threads; /* workers kept when idle */
	unsigned live;	      /* workers running now, not told to leave */
	unsigned busy;
	unsigned idle; /* workers waiting for a task */
	unsigned queued;
	unsigned queue_limit;
	uint64_t completed;
	uint64_t rejected;
	uint64_t cancelled;
	uint64_t spawned;      /* workers started past executor_new */
	uint64_t retired;      /* workers that left after thread_idle_timeout */
	uint64_t spawn_failed; /* pthread_create refused (the task waited on) */
	/* keyed admission */
	unsigned keys;		  /* keys with a task queued, running or a pause */
	unsigned keys_at_limit;	  /* keys with tasks waiting at per_key_limit */
	unsigned keys_paced;	  /* keys whose next start waits for a time */
	unsigned key_waiting;	  /* tasks held back by their key's rules */
	uint64_t key_limit_waits; /* times a key's tasks began to wait at its limit */
	uint64_t key_pace_waits;  /* times a key's tasks began to wait for a time */
	uint64_t key_pauses;	  /* executor_pause_key calls that took effect */
};

/* The most workers of one pool. */
#define EXECUTOR_MAX_THREADS 65536

/* The shape of a pool. threads = 0 is inline mode (the rest is ignored).
 * Workers beyond min_threads start on demand (a task arrives and no worker
 * is idle) and leave after idle_timeout_ms without a task; min_threads =
 * threads is a fixed pool. */
struct executor_params {
	unsigned threads;     /* 0..EXECUTOR_MAX_THREADS */
	unsigned min_threads; /* <= threads */
	unsigned queue_limit;
	size_t stack_size;	  /* of each worker; 0: the C library's default */
	uint64_t idle_timeout_ms; /* 0: workers above min_threads never leave */
	/* Keyed admission (tasks with a key; the rest are never held back):
	 * at most per_key_limit tasks of one key run at once (0: no limit),
	 * and successive starts of one key's tasks are at least
	 * per_key_interval_ms apart (0: no pacing). */
	unsigned per_key_limit;
	uint64_t per_key_interval_ms;
};

/* Per-worker state, created on the worker thread before it takes tasks
 * (in inline mode: once, on the loop thread, id 0). */
typedef void *(*executor_worker_init_fn)(unsigned worker_id, void *arg);
typedef void (*executor_worker_fini_fn)(void *worker_ctx, void *arg);

/* Start a pool shaped by p: its min_threads workers now, each with a stack
 * of p->stack_size, and one helper thread that starts the others on demand
 * and joins the ones that leave, so neither ever blocks the loop. With
 * threads = 0 (inline mode) tasks run on the caller's thread inside
 * executor_submit. Completions are delivered on base's thread through one
 * wake-up channel. Returns NULL on failure. */
struct executor *executor_start(struct event_base *base, const struct executor_params *p,
				executor_worker_init_fn init, executor_worker_fini_fn fini,
				void *arg);

/* executor_start of a fixed pool of threads workers (0: inline mode) with
 * the default stack. */
struct executor *executor_new(struct event_base *base, unsigned threads, unsigned queue_limit,
			      executor_worker_init_fn init, executor_worker_fini_fn fini,
			      void *arg);

/* Called on the worker whose task left the pool with nothing running or
 * queued, without the lock, after the task's completion is posted; arg is
 * executor_new's. Not in inline mode. Call before submitting tasks. */
typedef void (*executor_idle_fn)(void *arg);
void executor_set_idle(struct executor *ex, executor_idle_fn idle);

/* Queue a task. Call on the loop thread. Returns -1 when the queue is full
 * (the caller answers 503). Tasks wait in one queue per key (one more for
 * the tasks without a key) and workers take them round-robin over the
 * queues whose key may start a task now, so a key held back by its rules
 * holds back no other; within a queue, first come first served. A task
 * held back holds no worker: it waits in its queue, and capacity
 * (threads + queue_limit) counts it as queued. t->done runs later on the loop thread, exactly
 * once, unless executor_cancel() removed the task first. In inline mode the
 * task runs before this returns, and done still runs later from the loop. */
int executor_submit(struct executor *ex, struct executor_task *t);

/* Remove a task that is still queued. Returns 0 if removed (done will not
 * run), -1 if a worker already has it or it has finished (then done will
 * run or has run; abort the work through its own cancel flag). */
int executor_cancel(struct executor *ex, struct executor_task *t);

/* Start no task of key for ms from now (later if already paused longer);
 * tasks already running go on. Safe from any thread; nothing in inline
 * mode. The key is copied. Returns -1 on out of memory, else 0. */
int executor_pause_key(struct executor *ex, const char *key, uint64_t ms);

/* Reshape the pool live (a reload). Shrinking below the live workers tells
 * the highest-numbered ones to leave after their current task; growing to
 * a higher min_threads has the helper start the missing ones; never waits
 * for a thread. stack_size applies to workers started from now on. Call
 * on the loop thread. Returns -1 when it would switch between inline mode
 * and threads (that needs a restart), else 0. */
int executor_reconfigure(struct executor *ex, const struct executor_params *p);

/* executor_reconfigure to a fixed pool of threads workers. */
int executor_resize(struct executor *ex, unsigned threads, unsigned queue_limit);

void executor_get_stats(struct executor *ex, struct executor_stats *out);

/* Stop the workers after their current task, and join them. Tasks still
 * queued are dropped without done (call executor_cancel on the ones you
 * own, or drain first). Completions not yet delivered are delivered
 * (their done runs) before this returns. Call on the loop thread. */
void executor_free(struct executor *ex);

#endif
