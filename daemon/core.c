/* core.c: the replies every op and push of the sync core sends to programs
 * (see core.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/log.h"
#include "ipc/ipc-server.h"

char *
xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

cJSON *
reply_new(const char *op, const char *ceid)
{
	cJSON *r = cJSON_CreateObject();

	if (r == NULL)
		return NULL;
	cJSON_AddStringToObject(r, "op", op);
	if (ceid)
		cJSON_AddStringToObject(r, "client-event-id", ceid);
	return r;
}

void
client_send(struct client *c, cJSON *msg)
{
	int r;

	if (c == NULL || msg == NULL)
		return;
	r = ipc_conn_send(c->conn, msg);
	if (r < 0 && r != -ENOBUFS)
		log_debug("send to program failed: %s", strerror(-r));
}

void
client_error(struct client *c, const char *ceid, const char *type, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ipc_conn_send_error(c->conn, ceid, type, msg);
}
