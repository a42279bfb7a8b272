/* The executor's queue by admission key (lanes.h): a hash table of
 * lanes, the ready ring the workers serve round-robin, and the timed list
 * of lanes waiting for a time. Every change of a lane's counts ends in
 * lane_place(), the one place that decides where the lane belongs and
 * keeps the totals the stats show. */
#include "lanes.h"

#include <stdlib.h>
#include <string.h>

#define LANES_FIRST_BUCKETS 64

/* FNV-1a, 64 bits: keys are short host names. */
static uint64_t lanes_hash(const char *key)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
		h ^= *p;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static struct lane *lane_new(const char *key, uint64_t hash, bool keyed)
{
	size_t len = strlen(key);
	struct lane *l = calloc(1, sizeof(*l) + len + 1);

	if (l == NULL)
		return NULL;
	memcpy(l->key, key, len + 1);
	l->hash = hash;
	l->keyed = keyed;
	return l;
}

int lanes_init(struct lanes *ls)
{
	memset(ls, 0, sizeof(*ls));
	ls->buckets = calloc(LANES_FIRST_BUCKETS, sizeof(*ls->buckets));
	ls->unkeyed = lane_new("", 0, false);
	if (ls->buckets == NULL || ls->unkeyed == NULL) {
		free(ls->buckets);
		free(ls->unkeyed);
		memset(ls, 0, sizeof(*ls)); /* executor_free sees no lanes */
		return -1;
	}
	ls->n_buckets = LANES_FIRST_BUCKETS;
	return 0;
}

void lanes_fini(struct lanes *ls)
{
	for (size_t i = 0; i < ls->n_buckets; i++) {
		struct lane *l, *next;

		for (l = ls->buckets[i]; l != NULL; l = next) {
			next = l->hnext;
			free(l);
		}
	}
	free(ls->buckets);
	free(ls->unkeyed);
	memset(ls, 0, sizeof(*ls));
}

/* Double the buckets when there are more lanes than buckets; on out of
 * memory the chains just grow longer. */
static void lanes_grow(struct lanes *ls)
{
	size_t n = ls->n_buckets * 2;
	struct lane **b;

	if (ls->n_keyed <= ls->n_buckets || (b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < ls->n_buckets; i++) {
		struct lane *l, *next;

		for (l = ls->buckets[i]; l != NULL; l = next) {
			next = l->hnext;
			l->hnext = b[l->hash & (n - 1)];
			b[l->hash & (n - 1)] = l;
		}
	}
	free(ls->buckets);
	ls->buckets = b;
	ls->n_buckets = n;
}

/* The lane of key, made when create and there is none. NULL when there
 * is none (or out of memory). */
static struct lane *lanes_find(struct lanes *ls, const char *key, bool create)
{
	uint64_t h;
	struct lane *l;

	if (key == NULL)
		return ls->unkeyed;
	h = lanes_hash(key);
	for (l = ls->buckets[h & (ls->n_buckets - 1)]; l != NULL; l = l->hnext)
		if (l->hash == h && strcmp(l->key, key) == 0)
			return l;
	if (!create || (l = lane_new(key, h, true)) == NULL)
		return NULL;
	l->hnext = ls->buckets[h & (ls->n_buckets - 1)];
	ls->buckets[h & (ls->n_buckets - 1)] = l;
	ls->n_keyed++;
	lanes_grow(ls);
	return l;
}

static void lanes_forget(struct lanes *ls, struct lane *l)
{
	struct lane **pl = &ls->buckets[l->hash & (ls->n_buckets - 1)];

	while (*pl != l)
		pl = &(*pl)->hnext;
	*pl = l->hnext;
	ls->n_keyed--;
	free(l);
}

/* Take l off the ready ring or the timed list. */
static void lane_unlist(struct lanes *ls, struct lane *l)
{
	struct lane **head, **tail;

	if (l->place == LANE_READY) {
		head = &ls->ready_head;
		tail = &ls->ready_tail;
	} else if (l->place == LANE_TIMED) {
		head = &ls->timed_head;
		tail = &ls->timed_tail;
	} else {
		return;
	}
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		*head = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	else
		*tail = l->prev;
	l->next = l->prev = NULL;
}

/* Put l on the timed list in order of not_before_ns, searched from the
 * tail: with one interval for every key, the newest time is the latest. */
static void lane_list_timed(struct lanes *ls, struct lane *l)
{
	struct lane *after = ls->timed_tail;

	while (after != NULL && after->listed_ns > l->not_before_ns)
		after = after->prev;
	l->listed_ns = l->not_before_ns;
	l->prev = after;
	l->next = after != NULL ? after->next : ls->timed_head;
	if (l->next != NULL)
		l->next->prev = l;
	else
		ls->timed_tail = l;
	if (after != NULL)
		after->next = l;
	else
		ls->timed_head = l;
}

static void lane_list_ready(struct lanes *ls, struct lane *l)
{
	l->next = NULL;
	l->prev = ls->ready_tail;
	if (ls->ready_tail != NULL)
		ls->ready_tail->next = l;
	else
		ls->ready_head = l;
	ls->ready_tail = l;
}

/* Where l belongs now, from its counts, the rules and the time. */
static enum lane_place lane_where(const struct lanes *ls, const struct lane *l, uint64_t now)
{
	if (l->keyed && l->not_before_ns > now)
		return LANE_TIMED; /* with no task waiting too: the time is kept */
	if (l->waiting == 0)
		return LANE_IDLE;
	if (l->keyed && ls->limit != 0 && l->running >= ls->limit)
		return LANE_FULL;
	return LANE_READY;
}

/* Move l where it belongs and keep the totals. A ready lane keeps its
 * turn on the ring, a timed one its place if its time is unchanged. An
 * idle keyed lane with nothing running is freed: returns 0 then (l is
 * gone), else 1. Returns 2 when l became ready. */
static int lane_place(struct lanes *ls, struct lane *l, uint64_t now)
{
	enum lane_place was = l->place, to = lane_where(ls, l, now);

	ls->held -= l->held;
	l->held = to == LANE_FULL || to == LANE_TIMED ? l->waiting : 0;
	ls->held += l->held;
	ls->n_full += (to == LANE_FULL) - (was == LANE_FULL);
	if (to == LANE_IDLE && l->keyed && l->running == 0) {
		lane_unlist(ls, l);
		lanes_forget(ls, l);
		return 0;
	}
	if (to == was && (to != LANE_TIMED || l->listed_ns == l->not_before_ns))
		return 1;
	lane_unlist(ls, l);
	l->place = to;
	if (to == LANE_READY) {
		lane_list_ready(ls, l);
		return 2;
	}
	if (to == LANE_TIMED)
		lane_list_timed(ls, l);
	return 1;
}

/* lane_place with n_paced (the timed lanes that hold tasks) and the wait
 * counters kept: a wait is counted when a lane starts holding tasks back,
 * at its limit or for a time. Whether l was counted is l->paced, set at
 * its last placing: the callers have changed l->waiting already. */
static int lane_settle(struct lanes *ls, struct lane *l, uint64_t now)
{
	bool paced = l->paced, full = l->place == LANE_FULL;
	int r;

	ls->n_paced -= paced;
	r = lane_place(ls, l, now);
	if (r == 0)
		return 0;
	/* a wait begins: the lane holds tasks back that it did not */
	l->paced = l->place == LANE_TIMED && l->waiting > 0;
	ls->n_paced += l->paced;
	ls->pace_waits += l->paced && !paced;
	ls->limit_waits += l->place == LANE_FULL && !full;
	return r;
}

/* How many of the waiting tasks of l, just made ready, may start now:
 * one when paced (its lane is timed again once it starts), else up to the
 * limit. The caller finds a worker for each. */
static unsigned lane_startable(const struct lanes *ls, const struct lane *l)
{
	unsigned n = l->waiting;

	if (!l->keyed)
		return n;
	if (ls->interval_ns != 0)
		return 1;
	if (ls->limit != 0 && ls->limit - l->running < n)
		n = ls->limit - l->running;
	return n;
}

/* Take l's first waiting task off its queue (l has one). */
static struct executor_task *lane_shift(struct lanes *ls, struct lane *l)
{
	struct executor_task *t = l->head;

	l->head = t->next;
	if (l->head != NULL)
		l->head->prev = NULL;
	else
		l->tail = NULL;
	t->next = t->prev = NULL;
	l->waiting--;
	ls->queued--;
	return t;
}

struct executor_task *lanes_drain(struct lanes *ls)
{
	struct executor_task *t;
	struct lane *l = ls->unkeyed;

	if (l->head == NULL) {
		l = NULL;
		for (size_t i = 0; i < ls->n_buckets && l == NULL; i++)
			for (struct lane *k = ls->buckets[i]; k != NULL && l == NULL; k = k->hnext)
				if (k->head != NULL)
					l = k;
		if (l == NULL)
			return NULL;
	}
	t = lane_shift(ls, l);
	t->lane = NULL;
	/* counts only: the lanes are freed next */
	ls->held -= l->held;
	l->held = 0;
	return t;
}

int lanes_push(struct lanes *ls, struct executor_task *t, uint64_t now)
{
	struct lane *l = lanes_find(ls, t->key, true);

	if (l == NULL)
		return -1;
	t->lane = l;
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
	l->waiting++;
	ls->queued++;
	lane_settle(ls, l, now);
	return l->place == LANE_READY;
}

struct executor_task *lanes_pop(struct lanes *ls, uint64_t now)
{
	struct lane *l = ls->ready_head;
	struct executor_task *t;

	if (l == NULL)
		return NULL;
	t = lane_shift(ls, l);
	l->running++;
	if (l->keyed && ls->interval_ns != 0)
		l->not_before_ns = now + ls->interval_ns;
	/* to the ring's tail: the next task is another lane's */
	lane_unlist(ls, l);
	l->place = LANE_IDLE;
	lane_settle(ls, l, now);
	return t;
}

int lanes_finished(struct lanes *ls, struct executor_task *t, uint64_t now)
{
	struct lane *l = t->lane;

	t->lane = NULL;
	if (l == NULL)
		return 0;
	l->running--;
	return lane_settle(ls, l, now) == 2;
}

void lanes_remove(struct lanes *ls, struct executor_task *t, uint64_t now)
{
	struct lane *l = t->lane;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->next = t->prev = NULL;
	t->lane = NULL;
	l->waiting--;
	ls->queued--;
	lane_settle(ls, l, now);
}

int lanes_pause(struct lanes *ls, const char *key, uint64_t until_ns, uint64_t now)
{
	struct lane *l = lanes_find(ls, key, true);

	if (l == NULL)
		return -1;
	if (!l->keyed || until_ns <= now || until_ns <= l->not_before_ns) {
		lane_settle(ls, l, now); /* a new lane that is not paused goes */
		return 0;
	}
	l->not_before_ns = until_ns;
	lane_settle(ls, l, now);
	ls->pauses++;
	return 1;
}

unsigned lanes_due(struct lanes *ls, uint64_t now)
{
	unsigned ready = 0;
	struct lane *l;

	while ((l = ls->timed_head) != NULL && l->listed_ns <= now) {
		l->not_before_ns = 0;
		if (lane_settle(ls, l, now) == 2)
			ready += lane_startable(ls, l);
	}
	return ready;
}

uint64_t lanes_next_due(const struct lanes *ls)
{
	return ls->timed_head != NULL ? ls->timed_head->listed_ns : 0;
}

unsigned lanes_set_rules(struct lanes *ls, unsigned limit, uint64_t interval_ns, uint64_t now)
{
	unsigned ready = 0;

	ls->limit = limit;
	ls->interval_ns = interval_ns;
	for (size_t i = 0; i < ls->n_buckets; i++) {
		struct lane *l, *next;

		for (l = ls->buckets[i]; l != NULL; l = next) {
			next = l->hnext;
			if (lane_settle(ls, l, now) == 2)
				ready += lane_startable(ls, l);
		}
	}
	return ready;
}
