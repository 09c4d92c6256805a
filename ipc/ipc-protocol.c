/* ipc-protocol.c: the op table of the local protocol and the shape check
 * that every request passes before the daemon sees it. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc-protocol.h"

static const char *const ipc_protocol_op_names[_IPC_OP_MAX] = {
	[IPC_OP_INIT] = IPC_OP_NAME_INIT,
	[IPC_OP_ADD_QUERY] = IPC_OP_NAME_ADD_QUERY,
	[IPC_OP_REMOVE_QUERY] = IPC_OP_NAME_REMOVE_QUERY,
	[IPC_OP_QUERY_ONCE] = IPC_OP_NAME_QUERY_ONCE,
	[IPC_OP_TRANSACT] = IPC_OP_NAME_TRANSACT,
	[IPC_OP_LIST_MUTATIONS] = IPC_OP_NAME_LIST_MUTATIONS,
	[IPC_OP_RETRY_MUTATION] = IPC_OP_NAME_RETRY_MUTATION,
	[IPC_OP_DISCARD_MUTATION] = IPC_OP_NAME_DISCARD_MUTATION,
	[IPC_OP_JOIN_ROOM] = IPC_OP_NAME_JOIN_ROOM,
	[IPC_OP_LEAVE_ROOM] = IPC_OP_NAME_LEAVE_ROOM,
	[IPC_OP_SET_PRESENCE] = IPC_OP_NAME_SET_PRESENCE,
	[IPC_OP_CLIENT_BROADCAST] = IPC_OP_NAME_CLIENT_BROADCAST,
	[IPC_OP_STATUS] = IPC_OP_NAME_STATUS,
	[IPC_OP_WATCH_STATUS] = IPC_OP_NAME_WATCH_STATUS,
	[IPC_OP_SEND_MAGIC_CODE] = IPC_OP_NAME_SEND_MAGIC_CODE,
	[IPC_OP_SIGN_IN] = IPC_OP_NAME_SIGN_IN,
	[IPC_OP_SIGN_OUT] = IPC_OP_NAME_SIGN_OUT,
	[IPC_OP_WHOAMI] = IPC_OP_NAME_WHOAMI,
	[IPC_OP_LIST_PROFILES] = IPC_OP_NAME_LIST_PROFILES,
	[IPC_OP_FORGET_PROFILE] = IPC_OP_NAME_FORGET_PROFILE,
	[IPC_OP_EXPORT_CACHE] = IPC_OP_NAME_EXPORT_CACHE,
	[IPC_OP_CLEAR_CACHE] = IPC_OP_NAME_CLEAR_CACHE,
	[IPC_OP_SET_LOG_LEVEL] = IPC_OP_NAME_SET_LOG_LEVEL,
};

const char *const ipc_protocol_error_types[] = {
	IPC_ERR_INVALID_JSON, IPC_ERR_TOO_LARGE, IPC_ERR_TOO_DEEP, IPC_ERR_INVALID_UTF8,
	IPC_ERR_INVALID_OP, IPC_ERR_INVALID_REQUEST, IPC_ERR_NOT_INITIALIZED,
	IPC_ERR_INVALID_QUERY, IPC_ERR_INVALID_TRANSACTION, IPC_ERR_STORAGE_FULL,
	IPC_ERR_OFFLINE, IPC_ERR_NOT_FOUND, IPC_ERR_PERMISSION_DENIED, IPC_ERR_SERVER_ERROR,
	IPC_ERR_AUTH_FAILED, IPC_ERR_APP_NOT_FOUND, IPC_ERR_APP_READ_ONLY,
	IPC_ERR_TOO_MANY_SUBSCRIPTIONS, IPC_ERR_TOO_MANY_CONNECTIONS, IPC_ERR_TIMEOUT,
	IPC_ERR_INTERNAL,
	NULL,
};

const char *const ipc_protocol_reply_names[] = {
	IPC_REPLY_INIT_OK, IPC_REPLY_ADD_QUERY_OK, IPC_REPLY_REFRESH_OK,
	IPC_REPLY_REMOVE_QUERY_OK, IPC_REPLY_QUERY_OK, IPC_REPLY_TRANSACT_QUEUED,
	IPC_REPLY_TRANSACT_OK, IPC_REPLY_MUTATIONS, IPC_REPLY_RETRY_MUTATION_OK,
	IPC_REPLY_DISCARD_MUTATION_OK, IPC_REPLY_JOIN_ROOM_OK, IPC_REPLY_LEAVE_ROOM_OK,
	IPC_REPLY_SET_PRESENCE_OK, IPC_REPLY_CLIENT_BROADCAST_OK, IPC_REPLY_REFRESH_PRESENCE,
	IPC_REPLY_SERVER_BROADCAST, IPC_REPLY_STATUS, IPC_REPLY_ERROR,
	IPC_REPLY_SEND_MAGIC_CODE_OK, IPC_REPLY_SIGN_IN_OK, IPC_REPLY_SIGN_OUT_OK, IPC_REPLY_WHOAMI,
	IPC_REPLY_PROFILES, IPC_REPLY_FORGET_PROFILE_OK, IPC_REPLY_CACHE, IPC_REPLY_CLEAR_CACHE_OK,
	IPC_REPLY_SET_LOG_LEVEL_OK,
	NULL,
};

enum ipc_op
ipc_op_from_string(const char *s)
{
	if (s == NULL)
		return _IPC_OP_INVALID;
	for (int i = 0; i < _IPC_OP_MAX; i++)
		if (strcmp(ipc_protocol_op_names[i], s) == 0)
			return (enum ipc_op)i;
	return _IPC_OP_INVALID;
}

const char *
ipc_op_to_string(enum ipc_op op)
{
	if ((int)op < 0 || op >= _IPC_OP_MAX)
		return NULL;
	return ipc_protocol_op_names[op];
}

const char *
ipc_protocol_error_type(int r)
{
	switch (r) {
	case -EBADMSG:
	case -EOPNOTSUPP:
		return IPC_ERR_INVALID_OP;
	case -EINVAL:
		return IPC_ERR_INVALID_REQUEST;
	default:
		return IPC_ERR_INTERNAL;
	}
}

/* Exact-key member lookup; cJSON's plain lookup ignores case. */
static const cJSON *
member(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int __attribute__((format(printf, 3, 4)))
fail(int r, char **ret_err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (ret_err == NULL)
		return r;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		va_end(ap);
		return -ENOMEM;
	}
	va_end(ap);
	*ret_err = s;
	return r;
}

enum field_type { F_STRING, F_OBJECT, F_ARRAY, F_BOOL, F_NUMBER, F_ANY };

static const char *
type_name(enum field_type t)
{
	switch (t) {
	case F_STRING: return "a string";
	case F_OBJECT: return "an object";
	case F_ARRAY: return "an array";
	case F_BOOL: return "a boolean";
	case F_NUMBER: return "a number";
	default: return "a value";
	}
}

static bool
has_type(const cJSON *v, enum field_type t)
{
	switch (t) {
	case F_STRING: return cJSON_IsString(v) && v->valuestring != NULL;
	case F_OBJECT: return cJSON_IsObject(v);
	case F_ARRAY: return cJSON_IsArray(v);
	case F_BOOL: return cJSON_IsBool(v);
	case F_NUMBER: return cJSON_IsNumber(v);
	default: return v != NULL;
	}
}

/* A field of `msg`: required or optional, of type t. Returns 1 present,
 * 0 absent (optional), negative on error. */
static int
field(const cJSON *msg, const char *op, const char *key, enum field_type t, bool required,
    char **ret_err)
{
	const cJSON *v = member(msg, key);

	if (v == NULL) {
		if (required)
			return fail(-EINVAL, ret_err, "%s: \"%s\" is required (%s)", op, key,
			    type_name(t));
		return 0;
	}
	if (!has_type(v, t))
		return fail(-EINVAL, ret_err, "%s: \"%s\" must be %s", op, key, type_name(t));
	if (t == F_STRING && v->valuestring[0] == '\0' && required)
		return fail(-EINVAL, ret_err, "%s: \"%s\" must not be empty", op, key);
	return 1;
}

int
ipc_protocol_check(const cJSON *msg, char **ret_err)
{
	const cJSON *opv, *v;
	enum ipc_op op;
	const char *name;
	int r;

	if (!cJSON_IsObject(msg))
		return fail(-EBADMSG, ret_err, "a request must be a JSON object");
	opv = member(msg, "op");
	if (opv == NULL)
		return fail(-EBADMSG, ret_err, "the request has no \"op\"");
	if (!cJSON_IsString(opv) || opv->valuestring == NULL)
		return fail(-EBADMSG, ret_err, "\"op\" must be a string");
	op = ipc_op_from_string(opv->valuestring);
	if (op == _IPC_OP_INVALID)
		return fail(-EOPNOTSUPP, ret_err, "unknown op \"%.64s\"", opv->valuestring);
	name = opv->valuestring;

	r = field(msg, name, "client-event-id", F_STRING, false, ret_err);
	if (r < 0)
		return r;

#define FIELD(key, type, req) do { \
	r = field(msg, name, (key), (type), (req), ret_err); \
	if (r < 0) \
		return r; \
} while (0)

	switch (op) {
	case IPC_OP_INIT:
		/* A configured profile may be named instead of giving an app id. */
		FIELD("profile", F_STRING, false);
		FIELD("app-id", F_STRING, r == 0);
		FIELD("server", F_STRING, false);
		FIELD("api-uri", F_STRING, false);
		FIELD("refresh-token", F_STRING, false);
		FIELD("client-name", F_STRING, false);
		FIELD("protocol-version", F_NUMBER, false);
		break;
	case IPC_OP_ADD_QUERY:
		FIELD("q", F_OBJECT, true);
		FIELD("allow-partial", F_BOOL, false);
		break;
	case IPC_OP_REMOVE_QUERY:
		FIELD("q", F_OBJECT, false);
		if (r == 0) {
			FIELD("query-event-id", F_STRING, false);
			if (r == 0 && member(msg, "client-event-id") == NULL)
				return fail(-EINVAL, ret_err, "%s: needs \"q\" or the add-query's "
				    "client-event-id (as \"client-event-id\" or \"query-event-id\")",
				    name);
		}
		break;
	case IPC_OP_QUERY_ONCE:
		FIELD("q", F_OBJECT, true);
		FIELD("policy", F_STRING, false);
		if (r > 0) {
			const char *p = member(msg, "policy")->valuestring;

			if (strcmp(p, IPC_POLICY_CACHE_FIRST) != 0 &&
			    strcmp(p, IPC_POLICY_NETWORK_ONLY) != 0 &&
			    strcmp(p, IPC_POLICY_CACHE_ONLY) != 0)
				return fail(-EINVAL, ret_err, "%s: \"policy\" must be one of "
				    "cache-first, network-only, cache-only (got \"%.64s\")", name, p);
		}
		FIELD("timeout-ms", F_NUMBER, false);
		FIELD("allow-partial", F_BOOL, false);
		break;
	case IPC_OP_TRANSACT: {
		int has_ops, has_steps;

		FIELD("ops", F_ARRAY, false);
		has_ops = r;
		FIELD("tx-steps", F_ARRAY, false);
		has_steps = r;
		if (has_ops == has_steps)
			return fail(-EINVAL, ret_err,
			    "%s: exactly one of \"ops\" (InstaML) or \"tx-steps\" is required", name);
		v = member(msg, has_ops ? "ops" : "tx-steps");
		if (cJSON_GetArraySize(v) == 0)
			return fail(-EINVAL, ret_err, "%s: \"%s\" must not be empty", name,
			    has_ops ? "ops" : "tx-steps");
		for (const cJSON *e = v->child; e != NULL; e = e->next)
			if (!cJSON_IsArray(e))
				return fail(-EINVAL, ret_err, "%s: every element of \"%s\" must be "
				    "an array", name, has_ops ? "ops" : "tx-steps");
		break;
	}
	case IPC_OP_LIST_MUTATIONS:
		FIELD("attr-names", F_BOOL, false);
		break;
	case IPC_OP_RETRY_MUTATION:
	case IPC_OP_DISCARD_MUTATION:
		FIELD("mutation-id", F_STRING, true);
		break;
	case IPC_OP_JOIN_ROOM:
		FIELD("room-id", F_STRING, true);
		FIELD("room-type", F_STRING, false);
		FIELD("data", F_OBJECT, false);
		break;
	case IPC_OP_LEAVE_ROOM:
		FIELD("room-id", F_STRING, true);
		break;
	case IPC_OP_SET_PRESENCE:
		FIELD("room-id", F_STRING, true);
		FIELD("data", F_OBJECT, true);
		break;
	case IPC_OP_CLIENT_BROADCAST:
		FIELD("room-id", F_STRING, true);
		FIELD("topic", F_STRING, true);
		FIELD("data", F_ANY, true);
		break;
	case IPC_OP_STATUS:
		break;
	case IPC_OP_WATCH_STATUS:
		FIELD("enabled", F_BOOL, false);
		break;
	case IPC_OP_SEND_MAGIC_CODE:
		FIELD("email", F_STRING, true);
		break;
	case IPC_OP_SIGN_IN:
		FIELD("method", F_STRING, true);
		if (r > 0) {
			const char *m = member(msg, "method")->valuestring;

			if (strcmp(m, "magic-code") == 0) {
				FIELD("email", F_STRING, true);
				FIELD("code", F_STRING, true);
			} else if (strcmp(m, "token") == 0) {
				FIELD("refresh-token", F_STRING, true);
			} else if (strcmp(m, "guest") != 0)
				return fail(-EINVAL, ret_err, "%s: \"method\" must be one of "
				    "magic-code, guest, token (got \"%.64s\")", name, m);
		}
		break;
	case IPC_OP_SIGN_OUT:
	case IPC_OP_WHOAMI:
	case IPC_OP_LIST_PROFILES:
		break;
	case IPC_OP_FORGET_PROFILE:
		FIELD("profile", F_STRING, true);
		FIELD("discard-queued", F_BOOL, false);
		break;
	case IPC_OP_EXPORT_CACHE:
	case IPC_OP_CLEAR_CACHE:
		FIELD("profile", F_STRING, true);
		break;
	case IPC_OP_SET_LOG_LEVEL: {
		static const char *const levels[] = { "error", "warning", "notice", "info", "debug" };
		const char *l;
		bool known = false;

		FIELD("level", F_STRING, true);
		l = member(msg, "level")->valuestring;
		for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			known = known || strcmp(l, levels[i]) == 0;
		if (!known)
			return fail(-EINVAL, ret_err, "%s: \"level\" must be one of error, warning, "
			    "notice, info, debug (got \"%.64s\")", name, l);
		break;
	}
	default:
		return fail(-EOPNOTSUPP, ret_err, "unknown op \"%.64s\"", name);
	}
#undef FIELD
	return 0;
}
