/* ipc-protocol.c: the op table of the local protocol (each op's name, the
 * fields it takes, whether it needs init) and the shape check it drives,
 * which every request passes before the daemon sees it. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc-protocol.h"

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


/* One field an op takes. */
struct ipc_field {
	const char *key;
	enum field_type type;
	bool required;
	const char *unless;		/* required unless this field is present */
	const char *const *one_of;	/* NULL-terminated: the values a string may take */
};

/* One op: the protocol part of the op table (the daemon's handlers are
 * indexed by the same enum). */
struct ipc_op_spec {
	const char *name;
	bool needs_init;		/* answered "not-initialized" before init */
	const struct ipc_field *fields;	/* checked in order; ends at a NULL key; NULL = none */
	int (*check)(const cJSON *msg, const char *name, char **ret_err);	/* then this, if set */
};

/* One field: 1 present, 0 absent, negative on error (with *ret_err). */
static int
check_field(const cJSON *msg, const char *name, const struct ipc_field *f, char **ret_err)
{
	bool required = f->required || (f->unless && member(msg, f->unless) == NULL);
	const char *v;
	char list[160] = "";
	int r;

	r = field(msg, name, f->key, f->type, required, ret_err);
	if (r <= 0 || f->one_of == NULL)
		return r;
	v = member(msg, f->key)->valuestring;
	for (const char *const *o = f->one_of; *o; o++)
		if (strcmp(v, *o) == 0)
			return 1;
	for (const char *const *o = f->one_of; *o; o++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
		    o == f->one_of ? "" : ", ", *o);
	return fail(-EINVAL, ret_err, "%s: \"%s\" must be one of %s (got \"%.64s\")", name, f->key,
	    list, v);
}

static int
check_remove_query(const cJSON *msg, const char *name, char **ret_err)
{
	int r;

	if (member(msg, "q") != NULL)
		return 0;
	r = field(msg, name, "query-event-id", F_STRING, false, ret_err);
	if (r < 0)
		return r;
	if (r == 0 && member(msg, "client-event-id") == NULL)
		return fail(-EINVAL, ret_err, "%s: needs \"q\" or the add-query's "
		    "client-event-id (as \"client-event-id\" or \"query-event-id\")", name);
	return 0;
}

static int
check_transact(const cJSON *msg, const char *name, char **ret_err)
{
	const cJSON *v;
	int has_ops, has_steps;

	has_ops = field(msg, name, "ops", F_ARRAY, false, ret_err);
	if (has_ops < 0)
		return has_ops;
	has_steps = field(msg, name, "tx-steps", F_ARRAY, false, ret_err);
	if (has_steps < 0)
		return has_steps;
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
	return 0;
}

/* What each sign-in method needs besides "method". */
static int
check_sign_in(const cJSON *msg, const char *name, char **ret_err)
{
	const char *m = member(msg, "method")->valuestring;
	int r = 0;

	if (strcmp(m, "magic-code") == 0) {
		if ((r = field(msg, name, "email", F_STRING, true, ret_err)) < 0 ||
		    (r = field(msg, name, "code", F_STRING, true, ret_err)) < 0)
			return r;
	} else if (strcmp(m, "token") == 0) {
		if ((r = field(msg, name, "refresh-token", F_STRING, true, ret_err)) < 0)
			return r;
	}
	return 0;
}

static const char *const policies[] = {
	IPC_POLICY_CACHE_FIRST, IPC_POLICY_NETWORK_ONLY, IPC_POLICY_CACHE_ONLY, NULL,
};
static const char *const result_formats[] = { "data", "triples", NULL };
static const char *const sign_in_methods[] = { "magic-code", "guest", "token", NULL };
static const char *const log_levels[] = { "error", "warning", "notice", "info", "debug", NULL };

#define OPT(k, t) { .key = (k), .type = (t) }
#define REQ(k, t) { .key = (k), .type = (t), .required = true }
#define FIELDS(...) ((const struct ipc_field[]){ __VA_ARGS__, { .key = NULL } })

static const struct ipc_op_spec ipc_ops[_IPC_OP_MAX] = {
	[IPC_OP_INIT] = { IPC_OP_NAME_INIT, false, FIELDS(
		/* A configured profile may be named instead of giving an app id. */
		OPT("profile", F_STRING),
		{ .key = "app-id", .type = F_STRING, .unless = "profile" },
		OPT("server", F_STRING), OPT("api-uri", F_STRING), OPT("refresh-token", F_STRING),
		OPT("client-name", F_STRING), OPT("protocol-version", F_NUMBER),
		OPT("with-attrs", F_BOOL), OPT("token-profile", F_BOOL)), NULL },
	[IPC_OP_ADD_QUERY] = { IPC_OP_NAME_ADD_QUERY, true, FIELDS(
		REQ("q", F_OBJECT), OPT("allow-partial", F_BOOL),
		{ .key = "format", .type = F_STRING, .one_of = result_formats }), NULL },
	[IPC_OP_REMOVE_QUERY] = { IPC_OP_NAME_REMOVE_QUERY, true, FIELDS(
		OPT("q", F_OBJECT)), check_remove_query },
	[IPC_OP_QUERY_ONCE] = { IPC_OP_NAME_QUERY_ONCE, true, FIELDS(
		REQ("q", F_OBJECT), { .key = "policy", .type = F_STRING, .one_of = policies },
		OPT("timeout-ms", F_NUMBER), OPT("allow-partial", F_BOOL)), NULL },
	[IPC_OP_TRANSACT] = { IPC_OP_NAME_TRANSACT, true, NULL, check_transact },
	[IPC_OP_LIST_MUTATIONS] = { IPC_OP_NAME_LIST_MUTATIONS, true, FIELDS(
		OPT("attr-names", F_BOOL)), NULL },
	[IPC_OP_RETRY_MUTATION] = { IPC_OP_NAME_RETRY_MUTATION, true, FIELDS(
		REQ("mutation-id", F_STRING)), NULL },
	[IPC_OP_DISCARD_MUTATION] = { IPC_OP_NAME_DISCARD_MUTATION, true, FIELDS(
		REQ("mutation-id", F_STRING)), NULL },
	[IPC_OP_JOIN_ROOM] = { IPC_OP_NAME_JOIN_ROOM, true, FIELDS(
		REQ("room-id", F_STRING), OPT("room-type", F_STRING), OPT("data", F_OBJECT)), NULL },
	[IPC_OP_LEAVE_ROOM] = { IPC_OP_NAME_LEAVE_ROOM, true, FIELDS(
		REQ("room-id", F_STRING)), NULL },
	[IPC_OP_SET_PRESENCE] = { IPC_OP_NAME_SET_PRESENCE, true, FIELDS(
		REQ("room-id", F_STRING), REQ("data", F_OBJECT)), NULL },
	[IPC_OP_CLIENT_BROADCAST] = { IPC_OP_NAME_CLIENT_BROADCAST, true, FIELDS(
		REQ("room-id", F_STRING), REQ("topic", F_STRING), REQ("data", F_ANY)), NULL },
	[IPC_OP_STATUS] = { IPC_OP_NAME_STATUS, false, NULL, NULL },
	[IPC_OP_WATCH_STATUS] = { IPC_OP_NAME_WATCH_STATUS, false, FIELDS(
		OPT("enabled", F_BOOL)), NULL },
	[IPC_OP_SEND_MAGIC_CODE] = { IPC_OP_NAME_SEND_MAGIC_CODE, true, FIELDS(
		REQ("email", F_STRING)), NULL },
	[IPC_OP_SIGN_IN] = { IPC_OP_NAME_SIGN_IN, true, FIELDS(
		{ .key = "method", .type = F_STRING, .required = true, .one_of = sign_in_methods }),
		check_sign_in },
	[IPC_OP_SIGN_OUT] = { IPC_OP_NAME_SIGN_OUT, true, NULL, NULL },
	[IPC_OP_WHOAMI] = { IPC_OP_NAME_WHOAMI, true, NULL, NULL },
	/* The ops on stored profiles name a profile, so need no init. */
	[IPC_OP_LIST_PROFILES] = { IPC_OP_NAME_LIST_PROFILES, false, NULL, NULL },
	[IPC_OP_FORGET_PROFILE] = { IPC_OP_NAME_FORGET_PROFILE, false, FIELDS(
		REQ("profile", F_STRING), OPT("discard-queued", F_BOOL)), NULL },
	[IPC_OP_EXPORT_CACHE] = { IPC_OP_NAME_EXPORT_CACHE, false, FIELDS(
		REQ("profile", F_STRING)), NULL },
	[IPC_OP_CLEAR_CACHE] = { IPC_OP_NAME_CLEAR_CACHE, false, FIELDS(
		REQ("profile", F_STRING)), NULL },
	/* The daemon's own, about no profile. */
	[IPC_OP_SET_LOG_LEVEL] = { IPC_OP_NAME_SET_LOG_LEVEL, false, FIELDS(
		{ .key = "level", .type = F_STRING, .required = true, .one_of = log_levels }), NULL },
};

#undef FIELDS
#undef REQ
#undef OPT

enum ipc_op
ipc_op_from_string(const char *s)
{
	if (s == NULL)
		return _IPC_OP_INVALID;
	for (int i = 0; i < _IPC_OP_MAX; i++)
		if (strcmp(ipc_ops[i].name, s) == 0)
			return (enum ipc_op)i;
	return _IPC_OP_INVALID;
}

const char *
ipc_op_to_string(enum ipc_op op)
{
	if ((int)op < 0 || op >= _IPC_OP_MAX)
		return NULL;
	return ipc_ops[op].name;
}

bool
ipc_op_needs_init(enum ipc_op op)
{
	return (int)op >= 0 && op < _IPC_OP_MAX && ipc_ops[op].needs_init;
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

int
ipc_protocol_check(const cJSON *msg, char **ret_err)
{
	const struct ipc_op_spec *spec;
	const cJSON *opv;
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
	spec = &ipc_ops[op];

	r = field(msg, name, "client-event-id", F_STRING, false, ret_err);
	if (r < 0)
		return r;
	for (const struct ipc_field *f = spec->fields; f && f->key; f++)
		if ((r = check_field(msg, name, f, ret_err)) < 0)
			return r;
	return spec->check ? spec->check(msg, name, ret_err) : 0;
}
