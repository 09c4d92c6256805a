/* instantd.h: libinstantd, the client library for the instantd daemon's
 * local socket (newline-delimited JSON, see PROTOCOL.md).
 *
 * The client is non-blocking and has no thread or loop of its own: put
 * instantd_fd() in your poll set (POLLIN, plus POLLOUT while
 * instantd_wants_write()), call instantd_dispatch() when readable and
 * instantd_flush() when writable. Callbacks run from instantd_dispatch()
 * (or the blocking helpers). Messages are cJSON trees lent for the call.
 * A callback may send requests (instantd_send and the helpers) but must not
 * call instantd_dispatch(), instantd_wait(), instantd_request_sync() (they
 * return -EBUSY there) or instantd_free().
 * Functions returning int return 0 (or a count) on success and a negative
 * errno on failure. Not thread-safe; use one client per thread. */
#ifndef INSTANTD_H
#define INSTANTD_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

struct instantd_client;

/* Messages over this size are refused (the connection is dropped). */
#define INSTANTD_MAX_MESSAGE ((size_t)256 << 20)

struct instantd_callbacks {
	/* Every message from the daemon, before the typed callbacks below. */
	void (*on_message)(struct instantd_client *c, const cJSON *msg, void *ud);
	/* Query results: add-query-ok, refresh-ok, query-ok. `id` is the
	 * client-event-id of the add-query / query-once; `data` the result tree. */
	void (*on_result)(struct instantd_client *c, const char *id, const cJSON *data,
	    const cJSON *msg, void *ud);
	/* Other replies to a request: init-ok, transact-queued, transact-ok,
	 * mutations, *-ok, status (with the request's id). */
	void (*on_reply)(struct instantd_client *c, const char *id, const char *op,
	    const cJSON *msg, void *ud);
	/* Pushes not tied to a request: refresh-presence, server-broadcast,
	 * status (watch-status), and anything unknown without an id. */
	void (*on_push)(struct instantd_client *c, const char *op, const cJSON *msg, void *ud);
	/* "error" replies; id is NULL when the error answers no request. */
	void (*on_error)(struct instantd_client *c, const char *id, const char *type,
	    const char *message, const cJSON *msg, void *ud);
	/* The daemon closed the connection or it broke (reason: negative errno). */
	void (*on_disconnect)(struct instantd_client *c, int reason, void *ud);
};

/* The socket path: $INSTANTD_SOCKET, else $XDG_RUNTIME_DIR/instantd/socket.
 * *ret is malloc'd. -ENOENT when neither variable is set. */
int instantd_default_socket_path(char **ret);

/* Connect to `path` (NULL: the default path). The connect itself blocks
 * briefly (a local socket); the fd is non-blocking afterwards.
 * -ENOENT/-ECONNREFUSED when no daemon listens there; -EPERM when the
 * process serving the socket runs as another user (SO_PEERCRED): the client
 * talks only to a daemon of its own uid. */
int instantd_connect(const char *path, struct instantd_client **ret);
/* Close and free; NULL-safe. Pending output is dropped. */
void instantd_free(struct instantd_client *c);

/* `cb` is copied; `ud` is passed to every callback. */
void instantd_set_callbacks(struct instantd_client *c, const struct instantd_callbacks *cb,
    void *ud);

int instantd_fd(const struct instantd_client *c);
/* Read what is available and dispatch every complete message. Returns the
 * number of messages dispatched (0 when nothing was ready), -EPIPE when the
 * daemon closed the connection, -EBADMSG on a malformed message,
 * -EMSGSIZE when one is too large; on_disconnect has then been called. */
int instantd_dispatch(struct instantd_client *c);
/* Write pending output without blocking. 0 when everything went out,
 * -EAGAIN when some is still pending (wait for POLLOUT), or an error. When
 * the daemon has stopped reading (EPIPE, e.g. after a fatal too-large error)
 * the output is dropped and 0 returned: reading then delivers the daemon's
 * last messages and -EPIPE. */
int instantd_flush(struct instantd_client *c);
bool instantd_wants_write(const struct instantd_client *c);
/* True when complete messages are already buffered (left over after
 * instantd_request_sync() returned): call instantd_dispatch() before
 * polling again, since the fd will not become readable for them. */
bool instantd_has_pending(const struct instantd_client *c);
/* poll() once for up to timeout_ms (-1: forever), then flush/dispatch.
 * Returns like instantd_dispatch(); 0 on timeout. */
int instantd_wait(struct instantd_client *c, int timeout_ms);

/* Queue a request. If msg has no "client-event-id" one is generated (a
 * UUID) and added to the copy that is sent; msg itself is not changed.
 * *ret_id (may be NULL) gets the id used, malloc'd. */
int instantd_send(struct instantd_client *c, const cJSON *msg, char **ret_id);

/* Send msg (as instantd_send) and wait up to timeout_ms (-1: forever) for
 * the first message carrying its client-event-id. Other messages meanwhile
 * go to the callbacks. *ret_reply (the caller's, cJSON_Delete) is set on 0;
 * it may be an "error" message (see instantd_is_error()). -ETIMEDOUT,
 * -EPIPE, ... otherwise. */
int instantd_request_sync(struct instantd_client *c, const cJSON *msg, int timeout_ms,
    cJSON **ret_reply);
/* A new random UUID (version 4) in out, 36 characters and a NUL: entity ids
 * for transact, client-event-ids. 0, or a negative errno from getrandom. */
int instantd_uuid(char out[37]);

/* A query result's parts (add-query-ok, refresh-ok, query-ok): its result
 * tree (borrowed from msg; NULL when absent), and its flags (false when
 * absent): the result came from the local mirror before the server answered
 * for it in this session; unconfirmed local writes contributed to it; the
 * query was never answered by the server, so the daemon (offline, or with
 * cache-only) answered it from every mirrored triple, which may miss what
 * only the server has. */
const cJSON *instantd_result_data(const cJSON *msg);
bool instantd_result_from_cache(const cJSON *msg);
bool instantd_result_has_pending_writes(const cJSON *msg);
bool instantd_result_partial(const cJSON *msg);

/* True when msg is {"op":"error",...}. */
bool instantd_is_error(const cJSON *msg);
/* Convenience accessors; NULL when absent or not a string. */
const char *instantd_msg_op(const cJSON *msg);
const char *instantd_msg_id(const cJSON *msg);

/* Request helpers. Each queues one request and returns its client-event-id
 * in *ret_id (malloc'd; may be NULL). Optional string arguments may be NULL. */
int instantd_init(struct instantd_client *c, const char *app_id, const char *api_uri,
    const char *refresh_token, char **ret_id);
/* init with every choice: a configured profile by name, or an app id, and
 * optionally the server's sync URL (ws:// or wss://). Fields may be NULL;
 * app_id or profile is required (-EINVAL otherwise). Strings are borrowed. */
struct instantd_init_options {
	const char *app_id;
	const char *profile;
	const char *server;
	const char *api_uri;
	const char *refresh_token;
	const char *client_name;
};
int instantd_init_with(struct instantd_client *c, const struct instantd_init_options *o,
    char **ret_id);
int instantd_add_query(struct instantd_client *c, const cJSON *q, char **ret_id);
/* Ends the subscription made by the add-query whose id was `query_id`. */
int instantd_remove_query(struct instantd_client *c, const char *query_id, char **ret_id);
/* policy: "cache-first" (default when NULL), "network-only", "cache-only". */
int instantd_query_once(struct instantd_client *c, const cJSON *q, const char *policy,
    char **ret_id);
/* ops: InstaML ops, e.g. [["update","goals","<uuid>",{"title":"x"}]]. */
int instantd_transact(struct instantd_client *c, const cJSON *ops, char **ret_id);
/* steps: raw tx-steps. */
int instantd_transact_steps(struct instantd_client *c, const cJSON *steps, char **ret_id);
int instantd_list_mutations(struct instantd_client *c, char **ret_id);
int instantd_retry_mutation(struct instantd_client *c, const char *mutation_id, char **ret_id);
int instantd_discard_mutation(struct instantd_client *c, const char *mutation_id,
    char **ret_id);
/* presence may be NULL. room_type may be NULL. */
int instantd_join_room(struct instantd_client *c, const char *room_id, const char *room_type,
    const cJSON *presence, char **ret_id);
int instantd_leave_room(struct instantd_client *c, const char *room_id, char **ret_id);
int instantd_set_presence(struct instantd_client *c, const char *room_id, const cJSON *data,
    char **ret_id);
int instantd_broadcast(struct instantd_client *c, const char *room_id, const char *topic,
    const cJSON *data, char **ret_id);
/* Signing in (after init); the daemon keeps the refresh token. */
int instantd_send_magic_code(struct instantd_client *c, const char *email, char **ret_id);
int instantd_sign_in_magic_code(struct instantd_client *c, const char *email, const char *code,
    char **ret_id);
int instantd_sign_in_guest(struct instantd_client *c, char **ret_id);
int instantd_sign_in_token(struct instantd_client *c, const char *refresh_token, char **ret_id);
int instantd_sign_out(struct instantd_client *c, char **ret_id);
int instantd_whoami(struct instantd_client *c, char **ret_id);
int instantd_status(struct instantd_client *c, char **ret_id);
int instantd_watch_status(struct instantd_client *c, bool enabled, char **ret_id);

#ifdef __cplusplus
}
#endif

#endif
