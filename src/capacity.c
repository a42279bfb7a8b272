/* The machine's limits on tasks and descriptors, and whether a
 * configuration fits them (capacity.h). Everything but capacity_read_machine is
 * pure arithmetic. */
#include "capacity.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* A number from a one-line /proc file; UINT64_MAX when unreadable. */
static uint64_t capacity_read_proc(const char *path)
{
	unsigned long long v;
	FILE *f = fopen(path, "re");
	int n;

	if (f == NULL)
		return UINT64_MAX;
	n = fscanf(f, "%llu", &v);
	fclose(f);
	return n == 1 ? (uint64_t)v : UINT64_MAX;
}

static uint64_t capacity_rlim(rlim_t v)
{
	return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

void capacity_read_machine(struct capacity_machine *m)
{
	struct rlimit rl;
	uint64_t nr_open = capacity_read_proc("/proc/sys/fs/nr_open");

	m->threads_max = capacity_read_proc("/proc/sys/kernel/threads-max");
	m->pid_max = capacity_read_proc("/proc/sys/kernel/pid_max");
	/* RLIMIT_NPROC binds neither root nor a holder of CAP_SYS_RESOURCE;
	 * counting it for root would refuse what runs */
	m->nproc = UINT64_MAX;
	if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0)
		m->nproc = capacity_rlim(rl.rlim_cur);
	m->fd_soft = m->fd_hard = UINT64_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		m->fd_soft = capacity_rlim(rl.rlim_cur);
		m->fd_hard = capacity_rlim(rl.rlim_max);
	}
	if (m->fd_hard > nr_open)
		m->fd_hard = nr_open;
}

int capacity_check_threads(uint64_t workers, const struct capacity_machine *m, char *msg,
			   size_t msglen)
{
	uint64_t need = workers * CAPACITY_TASKS_PER_WORKER + CAPACITY_TASKS_RESERVE;
	uint64_t limit = m->threads_max;
	const char *what = "kernel.threads-max";

	if (m->pid_max < limit) {
		limit = m->pid_max;
		what = "kernel.pid_max";
	}
	if (m->nproc < limit) {
		limit = m->nproc;
		what = "RLIMIT_NPROC (ulimit -u)";
	}
	if (need <= limit)
		return 0;
	snprintf(msg, msglen,
		 "%" PRIu64 " worker threads over every pool need up to %" PRIu64
		 " kernel tasks (%d each: the worker and its resolver thread, and %d more), "
		 "more than %s = %" PRIu64 " allows: at most %" PRIu64 " threads",
		 workers, need, CAPACITY_TASKS_PER_WORKER, CAPACITY_TASKS_RESERVE, what, limit,
		 limit > CAPACITY_TASKS_RESERVE
			 ? (limit - CAPACITY_TASKS_RESERVE) / CAPACITY_TASKS_PER_WORKER
			 : 0);
	return -1;
}

int capacity_fd_budget(uint64_t max_connections, uint64_t workers, uint64_t max_idle,
		       uint64_t fd_limit, struct capacity_fd_budget *b, char *msg, size_t msglen)
{
	uint64_t fixed, room;

	if (workers == 0)
		workers = 1; /* inline mode: the loop's own handle */
	b->clients = max_connections;
	b->worker_fds = workers * CAPACITY_FDS_PER_WORKER;
	b->reserve = CAPACITY_FDS_RESERVE;
	fixed = b->clients + b->worker_fds + b->reserve;
	if (max_idle == 0) {
		room = fd_limit > fixed ? (fd_limit - fixed) / 2 : 0;
		max_idle = workers * CAPACITY_IDLE_PER_WORKER_MAX;
		if (max_idle > room)
			max_idle = room;
	}
	b->idle_per_worker = max_idle / workers > 0 ? max_idle / workers : 1;
	b->idle = b->idle_per_worker * workers;
	b->total = fixed + b->idle;
	if (b->total <= fd_limit)
		return 0;
	snprintf(msg, msglen,
		 "the configuration needs %" PRIu64 " file descriptors: max_connections = %" PRIu64
		 ", %" PRIu64 " worker%s x %d = %" PRIu64 ", %" PRIu64
		 " idle upstream connection%s (%" PRIu64 " per worker), %d of fetchd's own; "
		 "the limit (RLIMIT_NOFILE hard, fs.nr_open) is %" PRIu64,
		 b->total, b->clients, workers, workers == 1 ? "" : "s", CAPACITY_FDS_PER_WORKER,
		 b->worker_fds, b->idle, b->idle == 1 ? "" : "s", b->idle_per_worker,
		 CAPACITY_FDS_RESERVE, fd_limit);
	return -1;
}
