/* The memory budget: one atomic counter against one limit, shared by the
 * loop and every worker. See budget.h for what is charged. */
#include "budget.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>

struct budget {
	_Atomic uint64_t used;
	_Atomic uint64_t limit;
};

struct budget *budget_new(uint64_t limit)
{
	struct budget *b = calloc(1, sizeof(*b));

	if (b != NULL) {
		atomic_init(&b->used, 0);
		atomic_init(&b->limit, limit);
	}
	return b;
}

void budget_free(struct budget *b)
{
	free(b);
}

void budget_set_limit(struct budget *b, uint64_t limit)
{
	atomic_store(&b->limit, limit);
}

uint64_t budget_limit(const struct budget *b)
{
	return atomic_load(&((struct budget *)b)->limit);
}

uint64_t budget_used(const struct budget *b)
{
	return atomic_load(&((struct budget *)b)->used);
}

bool budget_charge(struct budget *b, size_t n)
{
	uint64_t used, limit;

	if (b == NULL || n == 0)
		return true;
	limit = atomic_load_explicit(&b->limit, memory_order_relaxed);
	used = atomic_load_explicit(&b->used, memory_order_relaxed);
	do {
		if (n > limit || used > limit - n)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&b->used, &used, used + n, memory_order_relaxed, memory_order_relaxed));
	return true;
}

void budget_force(struct budget *b, size_t n)
{
	if (b != NULL)
		atomic_fetch_add_explicit(&b->used, n, memory_order_relaxed);
}

void budget_release(struct budget *b, size_t n)
{
	if (b == NULL || n == 0)
		return;
	uint64_t before = atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);

	assert(before >= n);
	(void)before;
}

bool budget_hold_charge(struct budget_hold *h, size_t n)
{
	if (h == NULL || h->budget == NULL)
		return true;
	if (!budget_charge(h->budget, n)) {
		h->failed = true;
		if (n > budget_limit(h->budget) || h->held > budget_limit(h->budget) - n)
			h->never_fits = true;
		return false;
	}
	h->held += n;
	return true;
}

void budget_hold_force(struct budget_hold *h, size_t n)
{
	if (h == NULL || h->budget == NULL)
		return;
	budget_force(h->budget, n);
	h->held += n;
}

void budget_hold_release(struct budget_hold *h, size_t n)
{
	if (h == NULL || h->budget == NULL)
		return;
	assert(n <= h->held);
	h->held -= n;
	budget_release(h->budget, n);
}
