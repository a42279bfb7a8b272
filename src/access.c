/* The access log line (see access.h). */
#include "access.h"

#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

const char *access_method_name(const struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

void access_client(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (conn != NULL)
		evhttp_connection_get_peer(conn, &addr, &port);
	if (addr == NULL || *addr == '\0')
		snprintf(buf, len, "-");
	else if (strchr(addr, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", addr, (unsigned)port);
	else
		snprintf(buf, len, "%s:%u", addr, (unsigned)port);
}

void access_log_request(struct evhttp_request *req, const struct access_entry *e)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	bool head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
	char client[64];

	access_client(req, client, sizeof(client));
	log_info("access id=%s client=%s method=%s path=%.64s host=%s items=%zu status=%d "
		 "error=%s bytes=%zu queue_ms=%.1f total_ms=%.1f%s",
		 e->id, client, access_method_name(req), path && *path ? path : "-",
		 e->host && *e->host ? e->host : "-", e->items, e->status,
		 e->err == ERR_NONE ? "-" : err_code_name(e->err), head ? 0 : e->bytes, e->queue_ms,
		 e->total_ms, e->gone ? " gone=true" : "");
}
