/* ops-auth.h: the sign-in ops (whoami, send-magic-code, sign-in, sign-out)
 * and the auth calls they leave in flight (s->auth_calls). */
#ifndef INSTANTD_OPS_AUTH_H
#define INSTANTD_OPS_AUTH_H

#include "daemon/core.h"

/* Handlers of the op table (ops.c); c has run init. */
void op_whoami(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid);
void op_auth(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid);

/* Unlink a from s->auth_calls and free it; the caller cancels a->req first
 * when the call is still running. */
void auth_call_free(struct auth_call *a);

#endif
