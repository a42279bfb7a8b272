/*
 * nodelay.so: LD_PRELOADed into the test upstream by the HTTPS scenario
 * only, it sets TCP_NODELAY on every accepted socket.
 *
 * Why: in --tls mode, evhttp's reply leaves the upstream as two TLS records
 * (headers, then body), two write()s on a socket with Nagle on; the second
 * waits for the client's ACK of the first, which the client delays by about
 * 40 ms. Every keep-alive request then takes ~45 ms and the bench would
 * measure that stall, not fetchd or nginx. Real HTTPS servers (nginx's
 * tcp_nodelay on keep-alive connections) do not wait. Plain-HTTP mode writes
 * one buffer and is unaffected. To drop once tests/upstream sets
 * TCP_NODELAY itself.
 */
#define _GNU_SOURCE
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dlfcn.h>
#include <stddef.h>

static void
nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
accept4(int s, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	int fd;

	if (real == NULL)
		real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	fd = real(s, addr, len, flags);
	nodelay(fd);
	return fd;
}

int
accept(int s, struct sockaddr *addr, socklen_t *len)
{
	static int (*real)(int, struct sockaddr *, socklen_t *);
	int fd;

	if (real == NULL)
		real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	fd = real(s, addr, len);
	nodelay(fd);
	return fd;
}
