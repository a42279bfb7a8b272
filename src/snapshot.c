/* The running configuration as jobs see it: a config, its destination
 * rules and fetchd's own addresses, reference-counted (see snapshot.h). */
#include "snapshot.h"

#include <errno.h>
#include <ifaddrs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

/* fetchd's own address:port is always denied, and behind a wildcard
 * listen that is every address of the host's interfaces
 * (netguard_self_addrs), so they are read again on every reload.
 * getifaddrs(3) runs here on the loop thread: it is one netlink dump the
 * kernel answers from memory, without waiting on the network or a disk (34
 * us for 9 entries, measured on the dev box), and it runs only at start-up
 * and reload, which read the config file on the loop anyway. When it
 * fails, old's list is kept, or without old (at start-up) only the listen
 * addresses count. */
int snapshot_set_self(struct snapshot *snap, const struct sockaddr_storage *listen_addrs,
		      size_t n_listen, const struct snapshot *old)
{
	struct ifaddrs *ifs = NULL;
	struct sockaddr_storage *self = NULL;
	size_t n_self = 0;
	bool keep = false;
	int rc = -1;

	if (n_listen > 0 && getifaddrs(&ifs) != 0) {
		ifs = NULL;
		keep = old != NULL && old->rules.n_self > 0;
		log_warn("cannot list the network interfaces (%s); %s", strerror(errno),
			 keep ? "fetchd's own addresses stay as they were"
			      : "only the listen addresses count as fetchd's own");
	}
	if (keep) {
		self = calloc(old->rules.n_self, sizeof(*self));
		if (self == NULL)
			goto bad;
		memcpy(self, old->rules.self, old->rules.n_self * sizeof(*self));
		n_self = old->rules.n_self;
	} else if (netguard_self_addrs(listen_addrs, n_listen, ifs, &self, &n_self) != 0) {
		goto bad;
	}
	free(snap->self);
	snap->self = self;
	snap->rules.self = self;
	snap->rules.n_self = n_self;
	rc = 0;
bad:
	if (ifs != NULL)
		freeifaddrs(ifs);
	return rc;
}

struct snapshot *snapshot_new(struct fetchd_config *cfg,
			      const struct sockaddr_storage *listen_addrs, size_t n,
			      const struct snapshot *old)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));

	if (snap == NULL)
		return NULL;
	snap->cfg = cfg;
	snap->refs = 1;
	snap->rules.deny_private = cfg->deny_private;
	snap->rules.allow = cfg->allow;
	snap->rules.n_allow = cfg->n_allow;
	snap->rules.deny = cfg->deny;
	snap->rules.n_deny = cfg->n_deny;
	if (snapshot_set_self(snap, listen_addrs, n, old) != 0) {
		free(snap);
		return NULL;
	}
	return snap;
}

void snapshot_release(struct snapshot *snap)
{
	if (snap != NULL && --snap->refs == 0) {
		config_free(snap->cfg);
		free(snap->self);
		free(snap);
	}
}

void snapshot_discard(struct snapshot *snap)
{
	if (snap != NULL) {
		free(snap->self);
		free(snap);
	}
}
