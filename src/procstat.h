#ifndef FETCHD_PROCSTAT_H
#define FETCHD_PROCSTAT_H

/* The process series of /metrics (process_*), as the Prometheus client
 * libraries export them on Linux: read from /proc/self and getrlimit.
 * Loop thread (or any single thread): the boot time is read once and kept. */

#include <stdbool.h>
#include <stdint.h>

/* The open descriptors are counted on the loop thread (/metrics), so
 * the count is bounded. On Linux 6.2 and later st_size of /proc/self/fd is
 * the count: all of procstat_read took 14 us with 100, 1,000 or 10,000
 * descriptors open (kernel 6.18, 2 shared cores, best of 50). Earlier
 * kernels (Debian 12's 6.1) need a readdir, about 0.2 us a descriptor: 42
 * us with 100, 257 us with 1,000, 2.2 ms with 10,000 (measured the same
 * way, on the readdir path). The readdir stops at this cap, about 3.5 ms;
 * a count at the cap means "at least". */
#define PROCSTAT_MAX_FDS_COUNTED 16384

struct process_stats {
	double cpu_seconds;	   /* user + system */
	double start_time_seconds; /* since the Unix epoch */
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	uint64_t open_fds;
	uint64_t max_fds; /* RLIMIT_NOFILE, soft */
	bool have_stat;	  /* /proc/self/stat was read */
	bool have_fds;	  /* /proc/self/fd was read */
};

/* Fill ps; a part that cannot be read is left 0 with its have_ flag false.
 * Returns 0, or -1 when nothing could be read. */
int procstat_read(struct process_stats *ps);

#endif
