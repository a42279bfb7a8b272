#ifndef FETCHD_TLSINFO_H
#define FETCHD_TLSINFO_H

#include <stdbool.h>
#include <stddef.h>

/* The TLS side of a fetch's final connection, for the document's "tls"
 * field. The only module that includes OpenSSL's headers: libcurl hands
 * out its SSL * (CURLINFO_TLS_SSL_PTR, backend CURLSSLBACKEND_OPENSSL),
 * and everything here is read from it. Pure functions of their
 * arguments: no locks, no globals. */

/* What is taken while the connection is alive (in libcurl's pre-request
 * callback, where the transfer still has its connection; after
 * curl_easy_perform it has none): a few words and one reference to the
 * peer's certificate, no parsing. Zero-initialised: nothing taken. */
struct tls_capture {
	bool taken;
	const char *version; /* "TLSv1.3": OpenSSL's static strings */
	const char *cipher;
	bool resumed;
	void *peer; /* X509 *, one reference held; NULL: none */
};

/* Take ssl's (an SSL *) state into c, replacing what c held. */
void tlsinfo_capture(struct tls_capture *c, void *ssl);

/* Drop what c holds and zero it. */
void tlsinfo_release(struct tls_capture *c);

/* The peer certificate's fields as valid-or-not UTF-8 (the document's
 * writer repairs them): RFC 2253 names, SANs as "DNS:name" or
 * "IP:address" (other kinds as OpenSSL prints them), notAfter in RFC
 * 3339 UTC. */
struct tls_peer {
	char *subject, *issuer;
	char **san;
	size_t n_san;
	char not_after[sizeof("2027-01-01T00:00:00Z")]; /* "": unknown */
};

/* The document's "tls" object, filled from a capture. */
struct tls_info {
	const char *version, *cipher; /* NULL: unknown */
	bool resumed;
	bool new_connection; /* the final hop opened its connection */
	bool has_peer;
	struct tls_peer peer;
};

/* Fill info from c (taken). Returns 0, or -1 when out of memory (info is
 * then empty). Free with tlsinfo_clear. */
int tlsinfo_describe(const struct tls_capture *c, bool new_connection, struct tls_info *info);
void tlsinfo_clear(struct tls_info *info);

#endif
