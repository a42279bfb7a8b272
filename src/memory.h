/* How fetchd's freed memory goes back to the system (issue 10, "Memory that
 * returns"): glibc malloc settings made at start-up, and malloc_trim on a
 * worker when a pool goes idle after large work. The figures behind each
 * choice are in bench/results/RESULTS.md ("Memory that returns"). */
#ifndef FETCHD_MEMORY_H
#define FETCHD_MEMORY_H

#include <stddef.h>

/* Fix glibc's mmap threshold. Call once at start-up, before any thread. */
void memory_init(void);

/* A task handled this many bytes (body received plus document built).
 * Any thread, lock-free. */
void memory_note_task(size_t bytes);

/* A pool has gone idle: give freed memory back when large work ran since
 * the last time. Call on a worker, never on the loop thread (it takes
 * every malloc arena's lock in turn). */
void memory_pool_idle(void *arg);

#endif
