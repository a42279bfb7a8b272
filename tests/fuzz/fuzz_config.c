/* libFuzzer harness: the input is a configuration file. It goes into one
 * memfd (rewritten per input) that config_load reads through
 * /proc/self/fd/N, as it would read /etc/fetchd/fetchd.conf; then
 * config_check runs the cross-key checks as main.c does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int conf_fd = -1;
static char conf_path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	conf_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (conf_fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
	devnull = fopen("/dev/null", "w");
	if (devnull == NULL) {
		perror("/dev/null");
		abort();
	}
	return 0;
}

static void write_all(int fd, const uint8_t *data, size_t size)
{
	size_t off = 0;

	if (ftruncate(fd, 0) != 0)
		abort();
	while (off < size) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

		if (n <= 0)
			abort();
		off += (size_t)n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetchd_config *cfg;
	int problems;

	write_all(conf_fd, data, size);
	cfg = config_new();
	if (cfg == NULL)
		abort();
	problems = config_load(cfg, conf_path, devnull);
	if (problems < 0)
		abort();
	(void)config_check(cfg, conf_path, devnull);
	config_free(cfg);
	return 0;
}
