/* The private network namespace of the security suites: re-executing the
 * test program under `unshare -n`, where lo is the only interface, so that
 * cases naming an off-machine address cannot reach one whatever fetchd's
 * guard does. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static bool loopback_is_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool up_ = false;

	if (fd == -1)
		return false;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		up_ = (ifr.ifr_flags & IFF_UP) != 0;
	close(fd);
	return up_;
}

/* ip(8) is optional: the same with SIOCSIFFLAGS. */
static int loopback_up_ioctl(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd == -1)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) == 0)
			rc = 0;
	}
	close(fd);
	return rc;
}

/* Is lo the only interface here (a namespace with no way off the machine)? */
static bool only_loopback_interface(void)
{
	struct ifaddrs *ifs, *i;
	bool only = true;

	if (getifaddrs(&ifs) != 0)
		return false;
	for (i = ifs; i != NULL; i = i->ifa_next)
		if (strcmp(i->ifa_name, "lo") != 0)
			only = false;
	freeifaddrs(ifs);
	return only;
}

/* Does `unshare -n -- true` work here (root, unshare installed, and the
 * kernel or container lets us make a network namespace)? */
static bool unshare_works(void)
{
	pid_t pid = fork();
	int status;

	if (pid == -1)
		return false;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null != -1) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execlp("unshare", "unshare", "-n", "--", "true", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool netns_enter_private(char **argv, const char *skipped)
{
	const char *why = NULL;
	bool in_netns = false;

	if (getenv("FETCHD_IN_NETNS") == NULL) {
		char self[4096], a0[] = "unshare", a1[] = "-n", a2[] = "--";
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *args[5];

		if (geteuid() != 0) {
			why = "not root";
		} else if (!unshare_works()) {
			why = "`unshare -n` is missing or not permitted here";
		} else {
			if (n > 0)
				self[n] = '\0';
			args[0] = a0;
			args[1] = a1;
			args[2] = a2;
			args[3] = n > 0 ? self : argv[0];
			args[4] = NULL;
			setenv("FETCHD_IN_NETNS", "1", 1);
			fflush(NULL);
			execvp("unshare", args);
			unsetenv("FETCHD_IN_NETNS");
			why = "exec unshare failed";
		}
	} else {
		if (system("ip link set lo up") != 0 && loopback_up_ioctl() != 0)
			fprintf(stderr, "%s: cannot bring lo up: %s\n", argv[0], strerror(errno));
		if (!loopback_is_up()) {
			fprintf(stderr, "%s: lo is down in the namespace\n", argv[0]);
			exit(EXIT_FAILURE);
		}
		if (only_loopback_interface())
			in_netns = true;
		else
			why = "FETCHD_IN_NETNS is set but this namespace has interfaces besides lo";
	}
	if (!in_netns)
		fprintf(stderr,
			"%s: SKIPPING %s: %s; they run only in a private network namespace\n",
			argv[0], skipped, why);
	return in_netns;
}
