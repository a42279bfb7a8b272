/* The private network namespace of the security suites (netns.c). */
#ifndef FETCHD_TESTS_NETNS_H
#define FETCHD_TESTS_NETNS_H

#include <stdbool.h>

/* Call first in main. Outside the namespace: re-execute this program under
 * `unshare -n` (FETCHD_IN_NETNS set) when that can work, and do not return.
 * Inside: bring lo up and return true when lo is the only interface.
 * Otherwise (not root, no unshare, ...) return false after saying on stderr
 * that the cases described by skipped do not run, and why. */
bool netns_enter_private(char **argv, const char *skipped);

#endif
