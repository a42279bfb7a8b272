/*
 * probe: GET one path over one keep-alive connection at a fixed interval and
 * print "t_ms<TAB>latency_us" per answer (t_ms: when the request was sent,
 * from the start of the run). A request that stalls delays the next one; the
 * next is then sent at once. Bounded: stops after DURATION_MS, and gives up a
 * request after TIMEOUT_MS (default 30000): it is then printed with its
 * latency so far and a third column "timeout", and the connection is redone.
 *
 * usage: probe PORT PATH INTERVAL_US DURATION_MS [TIMEOUT_MS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static long timeout_ms = 30000;

static int dial(int port)
{
	struct sockaddr_in sin;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request/response; 0 on success. */
static int exchange(int fd, const char *req, size_t reqlen)
{
	char buf[16384];
	size_t have = 0;
	long clen = -1;
	char *end = NULL;

	if (write(fd, req, reqlen) != (ssize_t)reqlen)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			char *p = strcasestr(buf, "\r\ncontent-length:");

			if (p == NULL || p > end)
				return -1;
			clen = strtol(p + 17, NULL, 10);
		}
		if (end != NULL && have >= (size_t)(end + 4 - buf) + (size_t)clen)
			return 0;
		if (have == sizeof(buf) - 1)
			return -1;
	}
}

int main(int argc, char **argv)
{
	char req[512];
	double start, next, interval, duration;
	int port, fd, reqlen;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: probe PORT PATH INTERVAL_US DURATION_MS [TIMEOUT_MS]\n");
		return 2;
	}
	if (argc == 6)
		timeout_ms = atol(argv[5]);
	port = atoi(argv[1]);
	interval = atof(argv[3]);
	duration = atof(argv[4]) * 1000;
	reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", argv[2]);
	if ((fd = dial(port)) < 0) {
		perror("probe: connect");
		return 1;
	}
	start = next = now_us();
	while (now_us() - start < duration) {
		double t0, t1;

		while ((t0 = now_us()) < next)
			usleep((useconds_t)(next - t0 > 1000 ? next - t0 - 200 : 50));
		t0 = now_us();
		if (exchange(fd, req, (size_t)reqlen) != 0) {
			t1 = now_us();
			printf("%.3f\t%.1f\ttimeout\n", (t0 - start) / 1000, t1 - t0);
			fflush(stdout);
			fprintf(stderr, "probe: request failed at %.0f ms\n", (t0 - start) / 1000);
			close(fd);
			if ((fd = dial(port)) < 0)
				return 1;
			next = now_us() + interval;
			continue;
		}
		t1 = now_us();
		printf("%.3f\t%.1f\n", (t0 - start) / 1000, t1 - t0);
		fflush(stdout);
		next += interval;
		if (next < t1)
			next = t1;
	}
	close(fd);
	return 0;
}
