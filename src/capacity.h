#ifndef FETCHD_CAPACITY_H
#define FETCHD_CAPACITY_H

#include <stddef.h>
#include <stdint.h>

/* What the machine allows fetchd: kernel tasks and file descriptors, and
 * the arithmetic that says whether a configuration fits. The arithmetic
 * functions are pure (numbers in, numbers and a sentence out) and need no
 * locks; capacity_read_machine reads /proc and getrlimit. */

/* Descriptors one worker holds besides its idle connections, measured with
 * 100 workers holding fetches (ls /proc/PID/fd): the socket pair of the
 * multi handle inside its easy handle (libcurl 7.88 makes one per handle
 * for curl_multi_wakeup), the socket pair of the threaded resolver while a
 * name resolves, and the connection in use. */
#define CAPACITY_FDS_PER_WORKER 5
/* fetchd's own: listeners, eventfds, the log, the config and token files,
 * libevent's and the C library's, with room. */
#define CAPACITY_FDS_RESERVE 64
/* Kernel tasks per worker: the worker and, while a name resolves, the
 * thread of libcurl's threaded resolver. */
#define CAPACITY_TASKS_PER_WORKER 2
/* The loop thread, the pools' spawners, and room for the rest of the
 * machine. */
#define CAPACITY_TASKS_RESERVE 64
/* libcurl's own connection cache per easy handle (DEFAULT_CONNCACHE_SIZE)
 * and the most a derived max_idle_connections gives a worker. */
#define CAPACITY_IDLE_PER_WORKER_MAX 5

struct capacity_machine {
	uint64_t threads_max; /* /proc/sys/kernel/threads-max; UINT64_MAX: unknown */
	uint64_t pid_max;     /* /proc/sys/kernel/pid_max; UINT64_MAX: unknown */
	uint64_t nproc;	      /* RLIMIT_NPROC; UINT64_MAX: none, or root */
	uint64_t fd_soft;     /* RLIMIT_NOFILE */
	uint64_t fd_hard;     /* the most the soft limit can be raised to (the
			       * hard limit, at most fs.nr_open) */
};

void capacity_read_machine(struct capacity_machine *m);

/* Do workers worker threads (over every pool) fit the kernel's task
 * limits? 0, or -1 with a sentence naming the numbers in msg. */
int capacity_check_threads(uint64_t workers, const struct capacity_machine *m, char *msg,
			   size_t msglen);

/* The descriptor budget of a configuration. */
struct capacity_fd_budget {
	uint64_t clients;	  /* max_connections */
	uint64_t worker_fds;	  /* workers x CAPACITY_FDS_PER_WORKER */
	uint64_t idle;		  /* idle upstream connections: per worker x workers */
	uint64_t idle_per_worker; /* CURLOPT_MAXCONNECTS of each worker's handle */
	uint64_t reserve;	  /* CAPACITY_FDS_RESERVE */
	uint64_t total;
};

/* Count the descriptors of max_connections clients and workers workers
 * (0: inline mode, counted as one) keeping max_idle idle connections in
 * all (0: derived, the smaller of CAPACITY_IDLE_PER_WORKER_MAX per worker and
 * half of what fd_limit leaves, at least one per worker), spread as
 * max(1, max_idle / workers) per worker. Returns 0 when the total fits
 * fd_limit, else -1 with a sentence naming the numbers in msg. b is
 * filled either way. */
int capacity_fd_budget(uint64_t max_connections, uint64_t workers, uint64_t max_idle,
		       uint64_t fd_limit, struct capacity_fd_budget *b, char *msg, size_t msglen);

#endif
