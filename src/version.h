#ifndef FETCHD_VERSION_H
#define FETCHD_VERSION_H

/* The versions of fetchd and of the libraries it runs with, for
 * fetchd --version and fetchd_build_info. Static strings; any thread. */

/* "7.88.1": the libcurl loaded at run time (curl_version_info). */
const char *version_libcurl(void);

/* "2.1.12-stable": the libevent loaded at run time (event_get_version). */
const char *version_libevent(void);

/* "2.14": jansson's, at build time (it has no run-time call). */
const char *version_jansson(void);

/* The libcurl TLS backend and its version, "OpenSSL/3.0.11", or "none". */
const char *version_tls(void);

#endif
