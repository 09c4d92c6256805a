/* ipc-protocol.h: names of the local protocol (ipc/PROTOCOL.md is the
 * reference): ops, replies and pushes, error types, and request validation.
 * Shared by the daemon, the server and libinstantd's tests. */
#ifndef INSTANTD_IPC_PROTOCOL_H
#define INSTANTD_IPC_PROTOCOL_H

#include <stdbool.h>
#include <cjson/cJSON.h>

/* Bump when a request or reply changes incompatibly (a removed or renamed
 * op or field, a changed type or meaning). Adding optional fields or new
 * ops does not bump it. Sent in init-ok as "protocol-version". */
#define IPC_PROTOCOL_VERSION 1

/* Requests (app → daemon). Keep the enum, the table in ipc-protocol.c and
 * PROTOCOL.md in step. */
enum ipc_op {
	IPC_OP_INIT,
	IPC_OP_ADD_QUERY,
	IPC_OP_REMOVE_QUERY,
	IPC_OP_QUERY_ONCE,
	IPC_OP_TRANSACT,
	IPC_OP_LIST_MUTATIONS,
	IPC_OP_RETRY_MUTATION,
	IPC_OP_DISCARD_MUTATION,
	IPC_OP_JOIN_ROOM,
	IPC_OP_LEAVE_ROOM,
	IPC_OP_SET_PRESENCE,
	IPC_OP_CLIENT_BROADCAST,
	IPC_OP_STATUS,
	IPC_OP_WATCH_STATUS,
	IPC_OP_SEND_MAGIC_CODE,
	IPC_OP_SIGN_IN,
	IPC_OP_SIGN_OUT,
	IPC_OP_WHOAMI,
	IPC_OP_LIST_PROFILES,
	IPC_OP_FORGET_PROFILE,
	IPC_OP_EXPORT_CACHE,
	IPC_OP_CLEAR_CACHE,
	IPC_OP_SET_LOG_LEVEL,
	_IPC_OP_MAX,
	_IPC_OP_INVALID = -1,
};

#define IPC_OP_NAME_INIT		"init"
#define IPC_OP_NAME_ADD_QUERY		"add-query"
#define IPC_OP_NAME_REMOVE_QUERY	"remove-query"
#define IPC_OP_NAME_QUERY_ONCE		"query-once"
#define IPC_OP_NAME_TRANSACT		"transact"
#define IPC_OP_NAME_LIST_MUTATIONS	"list-mutations"
#define IPC_OP_NAME_RETRY_MUTATION	"retry-mutation"
#define IPC_OP_NAME_DISCARD_MUTATION	"discard-mutation"
#define IPC_OP_NAME_JOIN_ROOM		"join-room"
#define IPC_OP_NAME_LEAVE_ROOM		"leave-room"
#define IPC_OP_NAME_SET_PRESENCE	"set-presence"
#define IPC_OP_NAME_CLIENT_BROADCAST	"client-broadcast"
#define IPC_OP_NAME_STATUS		"status"
#define IPC_OP_NAME_WATCH_STATUS	"watch-status"
#define IPC_OP_NAME_SEND_MAGIC_CODE	"send-magic-code"
#define IPC_OP_NAME_SIGN_IN		"sign-in"
#define IPC_OP_NAME_SIGN_OUT		"sign-out"
#define IPC_OP_NAME_WHOAMI		"whoami"
#define IPC_OP_NAME_LIST_PROFILES	"list-profiles"
#define IPC_OP_NAME_FORGET_PROFILE	"forget-profile"
#define IPC_OP_NAME_EXPORT_CACHE	"export-cache"
#define IPC_OP_NAME_CLEAR_CACHE		"clear-cache"
#define IPC_OP_NAME_SET_LOG_LEVEL	"set-log-level"

/* Replies and pushes (daemon → app). */
#define IPC_REPLY_INIT_OK		"init-ok"
#define IPC_REPLY_ADD_QUERY_OK		"add-query-ok"
#define IPC_REPLY_REFRESH_OK		"refresh-ok"
#define IPC_REPLY_REMOVE_QUERY_OK	"remove-query-ok"
#define IPC_REPLY_QUERY_OK		"query-ok"
#define IPC_REPLY_TRANSACT_QUEUED	"transact-queued"
#define IPC_REPLY_TRANSACT_OK		"transact-ok"
#define IPC_REPLY_MUTATIONS		"mutations"
#define IPC_REPLY_RETRY_MUTATION_OK	"retry-mutation-ok"
#define IPC_REPLY_DISCARD_MUTATION_OK	"discard-mutation-ok"
#define IPC_REPLY_JOIN_ROOM_OK		"join-room-ok"
#define IPC_REPLY_LEAVE_ROOM_OK		"leave-room-ok"
#define IPC_REPLY_SET_PRESENCE_OK	"set-presence-ok"
#define IPC_REPLY_CLIENT_BROADCAST_OK	"client-broadcast-ok"
#define IPC_REPLY_REFRESH_PRESENCE	"refresh-presence"
#define IPC_REPLY_SERVER_BROADCAST	"server-broadcast"
#define IPC_REPLY_STATUS		"status"
#define IPC_REPLY_SEND_MAGIC_CODE_OK	"send-magic-code-ok"
#define IPC_REPLY_SIGN_IN_OK		"sign-in-ok"
#define IPC_REPLY_SIGN_OUT_OK		"sign-out-ok"
#define IPC_REPLY_WHOAMI		"whoami"
#define IPC_REPLY_PROFILES		"profiles"
#define IPC_REPLY_FORGET_PROFILE_OK	"forget-profile-ok"
#define IPC_REPLY_CACHE			"cache"
#define IPC_REPLY_CLEAR_CACHE_OK	"clear-cache-ok"
#define IPC_REPLY_SET_LOG_LEVEL_OK	"set-log-level-ok"
#define IPC_REPLY_ERROR			"error"

/* Error types ("type" of an "error" message). */
#define IPC_ERR_INVALID_JSON		"invalid-json"	/* fatal: connection closed */
#define IPC_ERR_TOO_LARGE		"too-large"	/* fatal: connection closed */
#define IPC_ERR_TOO_DEEP		"too-deep"	/* fatal: connection closed */
#define IPC_ERR_INVALID_UTF8		"invalid-utf8"	/* fatal: connection closed */
#define IPC_ERR_INVALID_OP		"invalid-op"
#define IPC_ERR_INVALID_REQUEST		"invalid-request"
#define IPC_ERR_NOT_INITIALIZED		"not-initialized"
#define IPC_ERR_INVALID_QUERY		"invalid-query"
#define IPC_ERR_INVALID_TRANSACTION	"invalid-transaction"
#define IPC_ERR_STORAGE_FULL		"storage-full"
#define IPC_ERR_OFFLINE			"offline"
#define IPC_ERR_NOT_FOUND		"not-found"
#define IPC_ERR_PERMISSION_DENIED	"permission-denied"
#define IPC_ERR_SERVER_ERROR		"server-error"
#define IPC_ERR_AUTH_FAILED		"auth-failed"
#define IPC_ERR_APP_NOT_FOUND		"app-not-found"
#define IPC_ERR_APP_READ_ONLY		"app-read-only"
#define IPC_ERR_TOO_MANY_SUBSCRIPTIONS	"too-many-subscriptions"
#define IPC_ERR_TOO_MANY_CONNECTIONS	"too-many-connections"	/* fatal */
#define IPC_ERR_TIMEOUT			"timeout"
#define IPC_ERR_INTERNAL		"internal"

/* query-once "policy" values. */
#define IPC_POLICY_CACHE_FIRST		"cache-first"
#define IPC_POLICY_NETWORK_ONLY		"network-only"
#define IPC_POLICY_CACHE_ONLY		"cache-only"

/* NULL-terminated lists, for docs, tests and completion. */
extern const char *const ipc_protocol_error_types[];
extern const char *const ipc_protocol_reply_names[];

/* "add-query" → IPC_OP_ADD_QUERY; _IPC_OP_INVALID when unknown or NULL. */
enum ipc_op ipc_op_from_string(const char *s);
/* The name, or NULL when out of range. */
const char *ipc_op_to_string(enum ipc_op op);
/* Whether the op is answered "not-initialized" until init has run on the
 * connection (false for init, status, the ops on stored profiles, the
 * daemon's own ops, and out of range). */
bool ipc_op_needs_init(enum ipc_op op);

/* Check a request's shape: an object, a known string "op", and the required
 * fields of that op with the right types (see PROTOCOL.md). Returns:
 *   0		valid;
 *   -EBADMSG	not an object, or "op" missing or not a string  → "invalid-op";
 *   -EOPNOTSUPP	"op" names no request                         → "invalid-op";
 *   -EINVAL	a field is missing or has the wrong type/value     → "invalid-request";
 *   -ENOMEM.
 * On -EBADMSG/-EOPNOTSUPP/-EINVAL, *ret_err (when ret_err is not NULL) gets
 * a malloc'd human-readable message the caller frees. */
int ipc_protocol_check(const cJSON *msg, char **ret_err);
/* The error type for a negative return of ipc_protocol_check(). */
const char *ipc_protocol_error_type(int r);

#endif
