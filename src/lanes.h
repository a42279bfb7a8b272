#ifndef FETCHD_LANES_H
#define FETCHD_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor.h"

/* The executor's queue, one lane per admission key: a first-come queue of
 * tasks for each key (and one for the tasks without a key), and which
 * lanes may start a task now. No locks and no clock of its own: the
 * executor calls every function under its lock with the current
 * CLOCK_MONOTONIC time.
 *
 * A lane is in one of four places:
 *   ready  - it has tasks and may start one now: on the ready ring, which
 *            lanes_pop serves round-robin;
 *   full   - it has tasks and per-key limit running: on no list, it comes
 *            back when one of its tasks finishes (lanes_finished);
 *   timed  - its next start waits for a time (pacing or a pause): on the
 *            timed list, sorted by that time, which lanes_due visits;
 *   idle   - no task waits: on no list, freed once nothing runs either.
 * The lane without a key is never full, timed or freed. */

enum lane_place { LANE_IDLE, LANE_READY, LANE_FULL, LANE_TIMED };

struct lane {
	struct lane *hnext;	    /* in its hash bucket */
	struct lane *next, *prev;   /* on the ready ring or the timed list */
	struct executor_task *head; /* waiting tasks, linked by next/prev */
	struct executor_task *tail;
	unsigned waiting;
	unsigned running;
	uint64_t not_before_ns; /* no start before; 0: none */
	uint64_t listed_ns;	/* the time it is sorted by on the timed list */
	enum lane_place place;
	unsigned held; /* its tasks counted in lanes.held */
	bool paced;    /* counted in lanes.n_paced: timed, tasks waiting */
	uint64_t hash;
	bool keyed;
	char key[]; /* "" for the lane without a key */
};

struct lanes {
	struct lane **buckets; /* keyed lanes by hash */
	size_t n_buckets;      /* a power of two */
	unsigned n_keyed;
	struct lane *unkeyed;
	struct lane *ready_head, *ready_tail;
	struct lane *timed_head, *timed_tail;

	/* the rules of keyed lanes (lanes_set_rules) */
	unsigned limit;	      /* 0: none */
	uint64_t interval_ns; /* 0: none */

	unsigned queued; /* tasks waiting in every lane */
	unsigned held;	 /* of them, in full or timed lanes */
	unsigned n_full;
	unsigned n_paced; /* timed lanes with tasks waiting */
	/* times a lane began to hold tasks back: at the limit, for a time;
	 * pauses that took effect */
	uint64_t limit_waits, pace_waits, pauses;
};

/* Returns 0, or -1 on out of memory. */
int lanes_init(struct lanes *ls);

/* Free every lane. Take the tasks still waiting out first (lanes_drain):
 * they are not touched here. */
void lanes_fini(struct lanes *ls);

/* The first waiting task of any lane, removed (for dropping them all at
 * shutdown; rules ignored), or NULL. */
struct executor_task *lanes_drain(struct lanes *ls);

/* Queue t in the lane of t->key. Returns 1 when that lane is ready (a
 * worker should be woken), 0 when its rules hold it back, -1 on out of
 * memory (t is not queued). */
int lanes_push(struct lanes *ls, struct executor_task *t, uint64_t now);

/* Take the first task of the lane at the head of the ready ring, which
 * then goes to the ring's tail (or wherever its rules put it), and count
 * it running. NULL when no lane is ready. */
struct executor_task *lanes_pop(struct lanes *ls, uint64_t now);

/* t, taken by lanes_pop, has finished. Returns 1 when its lane became
 * ready. */
int lanes_finished(struct lanes *ls, struct executor_task *t, uint64_t now);

/* Remove t, still waiting, from its lane. */
void lanes_remove(struct lanes *ls, struct executor_task *t, uint64_t now);

/* Start no task of key before until_ns. Returns 1 when that took effect,
 * 0 when the lane was paused as long already, -1 on out of memory. */
int lanes_pause(struct lanes *ls, const char *key, uint64_t until_ns, uint64_t now);

/* Move the timed lanes whose time has come. Returns how many tasks of
 * the lanes that became ready may start now (the limit and pacing
 * allowing): one worker is wanted for each. */
unsigned lanes_due(struct lanes *ls, uint64_t now);

/* When lanes_due next has something to do; 0 when nothing is timed. */
uint64_t lanes_next_due(const struct lanes *ls);

/* New rules for keyed lanes; every lane is placed again under them.
 * Returns, as lanes_due does, how many tasks of the lanes they made ready
 * may start now. */
unsigned lanes_set_rules(struct lanes *ls, unsigned limit, uint64_t interval_ns, uint64_t now);

static inline bool lanes_any_ready(const struct lanes *ls)
{
	return ls->ready_head != NULL;
}

#endif
