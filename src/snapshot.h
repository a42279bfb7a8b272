#ifndef FETCHD_SNAPSHOT_H
#define FETCHD_SNAPSHOT_H

#include <stddef.h>
#include <sys/socket.h>

#include "netguard.h"

struct fetchd_config;

/* One configuration with the destination rules built from it. Every job
 * holds a reference, so a reload never frees what a worker still reads:
 * workers read cfg and rules, never refs. Counted on the loop thread only. */
struct snapshot {
	struct fetchd_config *cfg;
	struct netguard_rules rules;
	struct sockaddr_storage *self; /* owned; rules.self */
	unsigned refs;
};

/* A snapshot of cfg (taken over only on success), one reference held.
 * fetchd's own addresses are always denied (no fetch loops): the n
 * listen_addrs as bound (none before server_start), widened to the host's
 * interfaces behind a wildcard; when those cannot be listed, old's list is
 * kept (old may be NULL). NULL when out of memory. */
struct snapshot *snapshot_new(struct fetchd_config *cfg,
			      const struct sockaddr_storage *listen_addrs, size_t n,
			      const struct snapshot *old);

/* Build snap's self list again, as snapshot_new does (start-up, once the
 * listen addresses are bound). Returns 0, or -1 when out of memory. */
int snapshot_set_self(struct snapshot *snap, const struct sockaddr_storage *listen_addrs, size_t n,
		      const struct snapshot *old);

/* Drop a reference; the last frees the snapshot and its config. */
void snapshot_release(struct snapshot *snap);

/* Free a snapshot that never took its config over (start-up failure). */
void snapshot_discard(struct snapshot *snap);

#endif
