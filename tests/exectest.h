/* Helpers of the executor's unit tests (check_executor, _elastic, _keys):
 * a gate that tasks wait at until the test opens it (the test can wait for
 * a number of arrivals, so nothing waits on a clock), a sleep, and the
 * pool's stats by value. */
#ifndef FETCHD_TESTS_EXECTEST_H
#define FETCHD_TESTS_EXECTEST_H

#include <pthread.h>

#include "executor.h"

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int open;
	unsigned arrived;
};

void gate_init(struct gate *g);
void gate_destroy(struct gate *g);
/* On a worker: count the arrival, then wait until the gate is open. */
void gate_pass(struct gate *g);
/* On the test's thread: wait until n tasks have arrived. */
void gate_wait_arrivals(struct gate *g, unsigned n);
unsigned gate_arrivals(struct gate *g);
void gate_open(struct gate *g);

void sleep_ms(unsigned ms);
struct executor_stats stats(struct executor *ex);

#endif
