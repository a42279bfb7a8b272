/* The process series (see procstat.h). Parsing follows proc(5): the
 * fields of /proc/self/stat after the command name, which is in
 * parentheses and may itself hold spaces and parentheses, so the scan
 * starts after the last ')'. */
#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* btime of /proc/stat: the boot time, seconds since the epoch. 0 when
 * unreadable. */
static unsigned long long boot_time(void)
{
	static unsigned long long btime;
	char line[256];
	FILE *f;

	if (btime != 0)
		return btime;
	if ((f = fopen("/proc/stat", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "btime ", 6) == 0) {
			btime = strtoull(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return btime;
}

static int read_stat(struct process_stats *ps)
{
	char buf[1024];
	unsigned long utime, stime;
	unsigned long long starttime, vsize;
	long rss, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	const char *p;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || ticks <= 0 || page <= 0)
		return -1;
	/* fields 3 (state) .. 24 (rss); utime 14, stime 15, starttime 22,
	 * vsize 23, rss 24 */
	if (sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
		   "%llu %llu %ld",
		   &utime, &stime, &starttime, &vsize, &rss) != 5)
		return -1;
	ps->cpu_seconds = (double)(utime + stime) / (double)ticks;
	ps->start_time_seconds = (double)boot_time() + (double)starttime / (double)ticks;
	ps->virtual_bytes = vsize;
	ps->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	ps->have_stat = true;
	return 0;
}

/* Linux 6.2 and later give the count as st_size of /proc/self/fd (no
 * readdir); earlier kernels say 0 there, and the entries are counted. */
static int count_fds(struct process_stats *ps)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	uint64_t n = 0;

	if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) {
		ps->open_fds = (uint64_t)st.st_size;
		ps->have_fds = true;
		return 0;
	}
	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while (n < PROCSTAT_MAX_FDS_COUNTED && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	/* the directory's own descriptor, open while it was read */
	ps->open_fds = n > 0 ? n - 1 : 0;
	ps->have_fds = true;
	return 0;
}

int procstat_read(struct process_stats *ps)
{
	struct rlimit rl;
	int got = 0;

	memset(ps, 0, sizeof(*ps));
	if (read_stat(ps) == 0)
		got++;
	if (count_fds(ps) == 0)
		got++;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		ps->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
		got++;
	}
	return got > 0 ? 0 : -1;
}
