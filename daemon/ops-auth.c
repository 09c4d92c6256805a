/* ops-auth.c: the sign-in ops (protocol.md 9.1): whoami, send-magic-code,
 * sign-in and sign-out, and the auth calls in flight for programs (see ops-auth.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/log.h"
#include "daemon/ops-auth.h"
#include "daemon/profile.h"
#include "daemon/upstream.h"
#include "store/util.h"

void
auth_call_free(struct auth_call *a)
{
	LIST_REMOVE(a, entry);
	free(a->ceid);
	free(a);
}

/* The user object without its refresh token, which never goes to a program. */
static cJSON *
user_public(const cJSON *user)
{
	cJSON *u = cJSON_IsObject(user) ? cJSON_Duplicate(user, 1) : cJSON_CreateNull();

	if (cJSON_IsObject(u)) {
		cJSON_DeleteItemFromObjectCaseSensitive(u, "refresh_token");
		cJSON_DeleteItemFromObjectCaseSensitive(u, "refresh-token");
	}
	return u;
}

static void
auth_reply_error(struct auth_call *a, int status, const cJSON *body)
{
	const char *type = status == 429 || status == -EAGAIN ? "rate-limited" : status == 400 ? "auth-failed" :
	    status == -ETIMEDOUT ? "timeout" : status == -EBADMSG || status == -EMSGSIZE ? "server-error" :
	    status < 0 ? "offline" : "server-error";
	const char *message = json_get_string(body, "message");
	char buf[256];
	_cleanup_json_ cJSON *out = reply_new("error", a->ceid);

	if (message == NULL) {
		if (status < 0)
			snprintf(buf, sizeof(buf), "%s: %s", a->p->api_uri ? a->p->api_uri : "the server's API",
			    a->p->api_uri ? auth_strerror(status) : "the profile has no api-uri");
		else
			snprintf(buf, sizeof(buf), "the server answered HTTP %d", status);
		message = buf;
	}
	cJSON_AddStringToObject(out, "type", type);
	cJSON_AddStringToObject(out, "message", message);
	if (json_get_string(body, "type"))
		cJSON_AddStringToObject(out, "server-type", json_get_string(body, "type"));
	if (status > 0)
		cJSON_AddNumberToObject(out, "status", status);
	/* Hints may echo the token back (protocol.md 9.2): never relay them as they are. */
	if (a->p->token && json_get(body, "hint")) {
		cJSON *hint = cJSON_Duplicate(json_get(body, "hint"), 1);

		upstream_redact(hint, a->p->token);
		cJSON_AddItemToObject(out, "hint", hint);
	}
	client_send(a->c, out);
}

static void
auth_done(void *ud, int status, const cJSON *body)
{
	struct auth_call *a = ud;
	struct profile *p = a->p;

	if (a->op == IPC_OP_SIGN_OUT) {
		/* Forgotten here whatever the server said; the reply tells which. */
		_cleanup_json_ cJSON *out = reply_new("sign-out-ok", a->ceid);

		cJSON_AddBoolToObject(out, "server-signed-out", status == 200);
		client_send(a->c, out);
	} else if (status != 200) {
		auth_reply_error(a, status, body);
	} else if (a->op == IPC_OP_SEND_MAGIC_CODE) {
		_cleanup_json_ cJSON *out = reply_new("send-magic-code-ok", a->ceid);

		cJSON_AddBoolToObject(out, "sent", true);
		client_send(a->c, out);
	} else {
		const cJSON *user = json_get(body, "user");
		const char *token = json_get_string(user, "refresh_token");
		_cleanup_json_ cJSON *out = NULL;
		int r;

		if (token == NULL) {
			auth_reply_error(a, 502, NULL);
			auth_call_free(a);
			return;
		}
		r = profile_set_token(p, token);
		if (r < 0) {
			client_error(a->c, a->ceid, "internal", "cannot keep the token: %s", strerror(-r));
			auth_call_free(a);
			return;
		}
		cJSON_Delete(p->user);
		p->user = user_public(user);
		log_notice("%s: signed in%s", p->name, cJSON_IsTrue(json_get(user, "isGuest")) ? " as a guest" : "");
		out = reply_new("sign-in-ok", a->ceid);
		cJSON_AddItemToObject(out, "user", user_public(user));
		if (json_get(body, "created"))
			cJSON_AddBoolToObject(out, "created", cJSON_IsTrue(json_get(body, "created")));
		client_send(a->c, out);
		profile_status_changed(p);
	}
	auth_call_free(a);
}

static bool
user_is_guest(const cJSON *user)
{
	const char *type = json_get_string(user, "type");

	return cJSON_IsTrue(json_get(user, "isGuest")) || (type && strcmp(type, "guest") == 0);
}

void
op_whoami(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
{
	struct profile *p = c->p;
	_cleanup_json_ cJSON *out = reply_new("whoami", ceid);

	cJSON_AddItemToObject(out, "user", user_public(p->user));
	cJSON_AddBoolToObject(out, "signed-in", p->token != NULL && !p->signed_out);
	cJSON_AddStringToObject(out, "state", profile_state(p));
	client_send(c, out);
}

/* send-magic-code, sign-in and sign-out: a call to the server's auth API. */
void
op_auth(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
{
	struct profile *p = c->p;
	_cleanup_json_ cJSON *body = cJSON_CreateObject();
	const char *path, *method = json_get_string(msg, "method");
	struct auth_call *a;
	int r;

	if (op == IPC_OP_SEND_MAGIC_CODE) {
		path = "/runtime/auth/send_magic_code";
		cJSON_AddStringToObject(body, "app-id", p->app_id);
		cJSON_AddStringToObject(body, "email", json_get_string(msg, "email"));
	} else if (op == IPC_OP_SIGN_OUT) {
		_cleanup_free_ char *token = p->token ? strdup(p->token) : NULL;

		if (p->token == NULL) {
			client_error(c, ceid, "invalid-request", "this profile is not signed in");
			return;
		}
		path = "/runtime/signout";
		cJSON_AddStringToObject(body, "app_id", p->app_id);
		cJSON_AddStringToObject(body, "refresh_token", token);
		/* The token is forgotten at once; the server call only revokes it there. */
		r = profile_set_token(p, NULL);
		cJSON_Delete(p->user);
		p->user = NULL;
		if (r < 0) {
			client_error(c, ceid, "internal", "%s", strerror(-r));
			return;
		}
	} else if (method && strcmp(method, "magic-code") == 0) {
		path = "/runtime/auth/verify_magic_code";
		cJSON_AddStringToObject(body, "app-id", p->app_id);
		cJSON_AddStringToObject(body, "email", json_get_string(msg, "email"));
		cJSON_AddStringToObject(body, "code", json_get_string(msg, "code"));
		/* Upgrading a guest keeps the same user, cache and queue. */
		if (p->token && user_is_guest(p->user))
			cJSON_AddStringToObject(body, "refresh-token", p->token);
	} else if (method && strcmp(method, "guest") == 0) {
		path = "/runtime/auth/sign_in_guest";
		cJSON_AddStringToObject(body, "app-id", p->app_id);
	} else {
		path = "/runtime/auth/verify_refresh_token";
		cJSON_AddStringToObject(body, "app-id", p->app_id);
		cJSON_AddStringToObject(body, "refresh-token", json_get_string(msg, "refresh-token"));
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || (ceid && (a->ceid = strdup(ceid)) == NULL)) {
		free(a);
		client_error(c, ceid, "internal", "out of memory");
		return;
	}
	a->s = c->s;
	a->op = op;
	a->p = p;
	a->c = c;
	LIST_INSERT_HEAD(&c->s->auth_calls, a, entry);
	if (p->api_uri == NULL) {
		auth_done(a, -EINVAL, NULL);
		return;
	}
	r = auth_post(c->s->vh, p->api_uri, path, body, p->ca_file, auth_done, a, &a->req);
	if (r < 0)
		auth_done(a, r, NULL);
}
