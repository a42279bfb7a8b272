#ifndef FETCHD_ACTIVATION_H
#define FETCHD_ACTIVATION_H

/* systemd socket activation (sd_listen_fds(3), without needing
 * libsystemd): when LISTEN_PID is this process, the number of listening
 * sockets passed from descriptor 3 on (LISTEN_FDS), else 0. The variables
 * are removed from the environment, so children do not inherit them.
 * Returns -1 when they are malformed. */
int activation_listen_fds(void);

/* The first passed descriptor (SD_LISTEN_FDS_START). */
#define ACTIVATION_FD_START 3

#endif
