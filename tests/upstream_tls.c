/*
 * upstream_tls: the test upstream's TLS side (see upstream_tls.h). The
 * upstream is single-threaded: the counters need no lock.
 */
#include "upstream_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct upstream_tls {
	SSL_CTX *ctx;
	unsigned long full;
	unsigned long resumed;
};

/* Sessions are only resumed within this context (OpenSSL refuses to cache
 * server sessions without one when client certificates are verified). */
static const unsigned char session_id_context[] = "fetchd-test-upstream";

/* A connection's state, as its SSL's app data: its upstream_tls until its
 * first handshake is counted, then one of these. SSL_CB_HANDSHAKE_DONE may
 * come more than once per connection (a TLS 1.3 server signals it again
 * after sending tickets), and only the first one counts. */
static char counted, excluded;

static void info_cb(const SSL *ssl, int where, int ret)
{
	void *state = SSL_get_app_data(ssl);
	struct upstream_tls *t = state;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE) || state == &counted || state == &excluded)
		return;
	SSL_set_app_data((SSL *)ssl, &counted);
	if (SSL_session_reused((SSL *)ssl))
		t->resumed++;
	else
		t->full++;
}

void upstream_tls_exclude(struct upstream_tls *t, struct bufferevent *bev)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	if (ssl == NULL || SSL_get_app_data(ssl) == &excluded)
		return;
	if (SSL_get_app_data(ssl) == &counted) {
		if (SSL_session_reused(ssl))
			t->resumed--;
		else
			t->full--;
	}
	SSL_set_app_data(ssl, &excluded);
}

static void openssl_error(const char *what, const char *file, char *err, size_t errlen)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, file != NULL ? file : "", buf);
	ERR_clear_error();
}

struct upstream_tls *upstream_tls_new(const struct upstream_tls_opts *o, char *err, size_t errlen)
{
	struct upstream_tls *t = calloc(1, sizeof(*t));
	STACK_OF(X509_NAME) *names = NULL;

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	if ((t->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		openssl_error("SSL_CTX_new", NULL, err, errlen);
		goto bad;
	}
	if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert) != 1) {
		openssl_error("certificate", o->cert, err, errlen);
		goto bad;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(t->ctx) != 1) {
		openssl_error("private key", o->key, err, errlen);
		goto bad;
	}
	if (o->max_version != NULL) {
		int v = strcmp(o->max_version, "1.2") == 0   ? TLS1_2_VERSION
			: strcmp(o->max_version, "1.3") == 0 ? TLS1_3_VERSION
							     : 0;

		if (v == 0 || SSL_CTX_set_max_proto_version(t->ctx, v) != 1) {
			snprintf(err, errlen, "--tls-max %s: want 1.2 or 1.3", o->max_version);
			goto bad;
		}
	}
	if (o->client_ca != NULL) {
		if (SSL_CTX_load_verify_locations(t->ctx, o->client_ca, NULL) != 1 ||
		    (names = SSL_load_client_CA_file(o->client_ca)) == NULL) {
			openssl_error("client CA", o->client_ca, err, errlen);
			goto bad;
		}
		SSL_CTX_set_client_CA_list(t->ctx, names);
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	/* resumption: a server-side session cache (TLS 1.2 session IDs) and
	 * tickets (TLS 1.2 and 1.3; OpenSSL's default, stated here) */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(t->ctx, session_id_context, sizeof(session_id_context) - 1);
	SSL_CTX_clear_options(t->ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_info_callback(t->ctx, info_cb);
	return t;
bad:
	upstream_tls_free(t);
	return NULL;
}

struct bufferevent *upstream_tls_bufferevent(struct upstream_tls *t, struct event_base *base)
{
	struct bufferevent *bev;
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL)
		return NULL;
	SSL_set_app_data(ssl, t);
	/* frees ssl on failure too (BEV_OPT_CLOSE_ON_FREE) */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	/* a client closing without close_notify is not an error here */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

void upstream_tls_counts(const struct upstream_tls *t, unsigned long *full, unsigned long *resumed)
{
	*full = t->full;
	*resumed = t->resumed;
}

void upstream_tls_free(struct upstream_tls *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	free(t);
}
