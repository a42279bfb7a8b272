/* systemd socket activation, the protocol of sd_listen_fds(3). */
#include "activation.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

static int parse_positive(const char *s, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*out = v;
	return 0;
}

int activation_listen_fds(void)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	long pid, n;
	int ret;

	if (pid_s == NULL)
		return 0;
	if (parse_positive(pid_s, &pid) != 0 || fds_s == NULL)
		ret = -1;
	else if (pid != (long)getpid())
		ret = 0; /* meant for another process */
	else if (parse_positive(fds_s, &n) != 0 || n > INT_MAX - ACTIVATION_FD_START)
		ret = -1;
	else
		ret = (int)n;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return ret;
}
