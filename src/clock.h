#ifndef FETCHD_CLOCK_H
#define FETCHD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* The one clock of fetchd's deadlines, timings and timeouts:
 * CLOCK_MONOTONIC in nanoseconds (never jumps with the wall clock; a vDSO
 * call, no system call). Safe from any thread. */
static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

#endif
