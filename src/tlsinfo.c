/* OpenSSL's view of a fetch's connection (see tlsinfo.h). Everything here
 * is a pure function of its arguments: no locks, no globals. */
#include "tlsinfo.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
/* 1.1.1's name for it (also one reference taken) */
#define SSL_get1_peer_certificate SSL_get_peer_certificate
#endif

void tlsinfo_capture(struct tls_capture *c, void *ssl)
{
	SSL *s = ssl;

	tlsinfo_release(c);
	if (s == NULL)
		return;
	c->taken = true;
	c->version = SSL_get_version(s);
	c->cipher = SSL_get_cipher_name(s);
	c->resumed = SSL_session_reused(s) == 1;
	/* a reference, no copy (a resumed session keeps its peer too) */
	c->peer = SSL_get1_peer_certificate(s);
}

void tlsinfo_release(struct tls_capture *c)
{
	X509_free(c->peer);
	memset(c, 0, sizeof(*c));
}

/* name as RFC 2253 text (malloc'd), or NULL when out of memory. */
static char *name_text(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long len;

	if (b == NULL)
		return NULL;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &data);
		s = len >= 0 ? strndup(data, (size_t)len) : NULL;
	}
	BIO_free(b);
	return s;
}

/* One GENERAL_NAME as "DNS:name", "IP:address", ... (malloc'd). */
static char *san_text(const GENERAL_NAME *gn)
{
	const unsigned char *p;
	char addr[64];
	char *s = NULL;
	int len;

	switch (gn->type) {
	case GEN_DNS:
	case GEN_EMAIL:
	case GEN_URI:
		p = ASN1_STRING_get0_data(gn->d.ia5);
		len = ASN1_STRING_length(gn->d.ia5);
		if (asprintf(&s, "%s:%.*s",
			     gn->type == GEN_DNS     ? "DNS"
			     : gn->type == GEN_EMAIL ? "email"
						     : "URI",
			     len, (const char *)p) < 0)
			s = NULL;
		return s;
	case GEN_IPADD:
		p = ASN1_STRING_get0_data(gn->d.ip);
		len = ASN1_STRING_length(gn->d.ip);
		if (len == 4) {
			snprintf(addr, sizeof(addr), "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
		} else if (len == 16) {
			/* OpenSSL's own spelling (X509V3_EXT_print): eight groups */
			int off = 0;

			for (int i = 0; i < 16; i += 2)
				off += snprintf(addr + off, sizeof(addr) - (size_t)off, "%s%X",
						i ? ":" : "", (unsigned)(p[i] << 8 | p[i + 1]));
		} else {
			snprintf(addr, sizeof(addr), "<invalid>");
		}
		return asprintf(&s, "IP:%s", addr) < 0 ? NULL : s;
	default: return strdup("othername:<unsupported>");
	}
}

/* The subjectAltName extension's entries. Returns -1 when out of memory. */
static int peer_sans(X509 *x, struct tls_peer *peer)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n, rc = 0;

	if (names == NULL)
		return 0;
	n = sk_GENERAL_NAME_num(names);
	peer->san = n > 0 ? calloc((size_t)n, sizeof(*peer->san)) : NULL;
	if (n > 0 && peer->san == NULL)
		rc = -1;
	for (int i = 0; rc == 0 && i < n; i++) {
		char *s = san_text(sk_GENERAL_NAME_value(names, i));

		if (s == NULL)
			rc = -1;
		else
			peer->san[peer->n_san++] = s;
	}
	GENERAL_NAMES_free(names);
	return rc;
}

static void peer_not_after(X509 *x, struct tls_peer *peer)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		strftime(peer->not_after, sizeof(peer->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int tlsinfo_describe(const struct tls_capture *c, bool new_connection, struct tls_info *info)
{
	X509 *x = c->peer;

	memset(info, 0, sizeof(*info));
	info->version = c->version;
	info->cipher = c->cipher;
	info->resumed = c->resumed;
	info->new_connection = new_connection;
	if (x == NULL)
		return 0;
	info->has_peer = true;
	info->peer.subject = name_text(X509_get_subject_name(x));
	info->peer.issuer = name_text(X509_get_issuer_name(x));
	if (info->peer.subject == NULL || info->peer.issuer == NULL ||
	    peer_sans(x, &info->peer) != 0) {
		tlsinfo_clear(info);
		return -1;
	}
	peer_not_after(x, &info->peer);
	return 0;
}

void tlsinfo_clear(struct tls_info *info)
{
	free(info->peer.subject);
	free(info->peer.issuer);
	for (size_t i = 0; i < info->peer.n_san; i++)
		free(info->peer.san[i]);
	free(info->peer.san);
	memset(info, 0, sizeof(*info));
}
