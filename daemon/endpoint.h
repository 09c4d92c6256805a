/* endpoint.h: the Instant endpoint. Unmodified @instantdb/core apps connect
 * here (WebSocket, path /runtime/session, the server side of the Instant
 * protocol); each connection is one local-protocol client of the core. */
#ifndef INSTANTD_ENDPOINT_H
#define INSTANTD_ENDPOINT_H

#include <libwebsockets.h>

#include "ipc/ipc-server.h"

struct endpoint;

struct endpoint_options {
	const char *unix_path;		/* the Unix socket to listen on (always) */
	const char *tcp_listen;		/* "127.0.0.1:PORT" / "[::1]:PORT", NULL = no TCP */
	const char *allowed_origins;	/* blank- or comma-separated Origin values, NULL = none */
};

/* Listen (a socket-activated listener named "instant" is used instead of
 * unix_path when there is one) and serve each connection as a virtual conn
 * of ipc. Strings are copied. 0 or negative errno; the error is logged. */
int endpoint_new(struct lws_context *ctx, struct ipc_server *ipc, const struct endpoint_options *opt,
    struct endpoint **ret);
/* Closes the listeners and every connection (their virtual conns first).
 * Call before ipc_server_free(). NULL-safe. */
void endpoint_free(struct endpoint *e);

#endif
