/* glibc malloc settings and trimming; see memory.h. */
#include "memory.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h"
#include "log.h"

/* Allocations from this size up are mmap'd, so freeing a large body or
 * document unmaps it at once. Setting it turns glibc's dynamic threshold
 * off: by default the threshold rises to the size of each mmap'd chunk
 * freed (up to 32 MiB), so after the first 2 MB body every later one came
 * from one of the per-thread arenas (up to 8 per core), which kept it.
 * 128 KiB is glibc's own starting value; small fetches (documents of a few
 * KB, curl's 16 KB buffers) never reach it. Measured with tests/soak 30
 * (RESULTS.md): idle RSS 44.3 -> 32.9 MiB with this alone (start: 13 MiB);
 * arena_max = 2 on top gave nothing more (35.3 MiB) and would serialize 16
 * workers' mallocs. Small-fetch throughput with wrk: within run-to-run
 * noise (small fetches never reach the threshold). */
#define MMAP_THRESHOLD (128 * 1024)

/* A task this large makes the next idle moment trim. The allocations
 * that stay behind in the arenas after a large task are the many small ones
 * (a parsed JSON body's tree, header lists): freed, but holes no
 * threshold returns. Small-fetch traffic never trims. */
#define TRIM_AFTER_BYTES (256 * 1024)

static atomic_bool large_since_trim;

void memory_init(void)
{
	/* mallopt returns 0 when a sanitizer's allocator stands in */
	if (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1)
		log_debug("%s: mallopt(M_MMAP_THRESHOLD) refused", __func__);
}

void memory_note_task(size_t bytes)
{
	if (bytes >= TRIM_AFTER_BYTES &&
	    !atomic_load_explicit(&large_since_trim, memory_order_relaxed))
		atomic_store(&large_since_trim, true);
}

/* malloc_trim(0) releases the free pages of every arena (madvise), which a
 * top-of-heap trim cannot reach. It holds each arena's lock while it walks
 * it, so it runs here, on the worker that left its pool idle, and only
 * after large work. With it, idle RSS after a 90 s soak came back to
 * 14.5 MiB (73.2 MiB without either setting). Its cost is real: 33-78 ms per
 * call after bursts of 8 fetches of 20000-item JSON bodies (log level debug
 * shows each). The loop thread never calls it, but while it holds an arena,
 * a free() of a mid-sized document (1-128 KB) from that arena on the loop
 * waits for it; large documents are mmap'd and small ones go to the loop's
 * tcache, neither takes the lock. */
void memory_pool_idle(void *arg)
{
	uint64_t start;

	(void)arg;
	if (!atomic_exchange(&large_since_trim, false))
		return;
	start = clock_now_ns();
	malloc_trim(0);
	log_debug("%s: malloc_trim took %.3f ms", __func__, (double)(clock_now_ns() - start) / 1e6);
}
