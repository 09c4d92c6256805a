/* ipc-server.h: the daemon's Unix-socket server. Newline-delimited JSON
 * framing, limits and peer checks, running inside the libwebsockets loop. */
#ifndef INSTANTD_IPC_SERVER_H
#define INSTANTD_IPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>
#include <libwebsockets.h>

struct ipc_server;
struct ipc_conn;

#define IPC_DEFAULT_MAX_MESSAGE		((size_t)16 << 20)
#define IPC_DEFAULT_MAX_DEPTH		64
#define IPC_DEFAULT_MAX_OUTPUT		((size_t)64 << 20)
#define IPC_DEFAULT_MAX_CONNS		4096
#define IPC_DEFAULT_MAX_SUBS_PER_CONN	1024

/* A zero field means "use the default". */
struct ipc_limits {
	size_t	max_message;		/* longest request line, bytes without '\n' */
	int	max_depth;		/* deepest JSON nesting of a request */
	size_t	max_output;		/* bytes queued to one reader before it is disconnected */
	size_t	max_conns;		/* further connections are accepted and closed at once */
	size_t	max_subs_per_conn;	/* not enforced here: the daemon reads it back */
};

/* Fill *lim with the defaults. */
void ipc_limits_default(struct ipc_limits *lim);

struct ipc_callbacks {
	/* A peer with our uid has connected. */
	void (*on_open)(void *ud, struct ipc_conn *c);
	/* One complete, parsed, depth-checked request that passed
	 * ipc_protocol_check() (a JSON object with a known request "op" and
	 * that op's required fields; anything else was already answered with
	 * an error). `msg` is lent for the call only. The callback may send,
	 * and may ipc_conn_close(c). */
	void (*on_request)(void *ud, struct ipc_conn *c, const cJSON *msg);
	/* The conn is about to be freed; do not send to it any more. */
	void (*on_close)(void *ud, struct ipc_conn *c);
	/* Optional: a peer running as another uid (SO_PEERCRED) connected and
	 * was closed at once, unanswered; pid is 0 when unknown. For the log. */
	void (*on_refused)(void *ud, uid_t uid, pid_t pid);
};

/* The entries the daemon must put in its vhost's protocols array (in this
 * order, names "ipc-listen" and "ipc-client"; the vhost's array ends with a
 * zeroed entry as usual). Copy them by value:
 *	static struct lws_protocols protos[] = { ..., {0} };
 *	protos[i] = ipc_server_protocols[0]; protos[i+1] = ipc_server_protocols[1]; */
extern const struct lws_protocols ipc_server_protocols[2];
#define IPC_SERVER_PROTOCOL_LISTEN	"ipc-listen"
#define IPC_SERVER_PROTOCOL_CLIENT	"ipc-client"

/* Raise the RLIMIT_NOFILE soft limit to the hard limit. Call it before
 * lws_create_context(): lws sizes its fd table from the limit at that time.
 * ipc_server_new() calls it too. 0 or negative errno. */
int ipc_raise_nofile_limit(void);

/* Create the listening socket at `path`: create its parent directory 0700
 * if missing, unlink a stale socket, bind under umask 077 (socket 0600),
 * listen. Non-blocking and close-on-exec. *ret_fd is the caller's.
 * -EADDRINUSE when a live server already answers on `path`; -EEXIST when
 * something other than a socket is there; -EPERM when the directory belongs
 * to another user or group/others may write it (its mode is never changed). */
int ipc_server_open_socket(const char *path, int *ret_fd);
/* The socket-activated listener: the fd named "ipc", or the single one.
 * Made non-blocking. -ENOENT when not socket-activated. */
int ipc_server_inherited_fd(int *ret_fd);
/* The socket-activated listener named `name` (FileDescriptorName=), or with
 * or_single the only one passed. Made non-blocking. -ENOENT when there is
 * none. The environment is kept for further look-ups: call
 * ipc_server_forget_inherited() once every listener is taken. */
int ipc_server_inherited_fd_named(const char *name, bool or_single, int *ret_fd);
void ipc_server_forget_inherited(void);

/* Serve `listen_fd` (ownership passes to the server, also on failure) on
 * the vhost `vh`, whose protocols include ipc_server_protocols. `lim` may
 * be NULL (defaults); `cb` and `ud` must outlive the server. Raises the
 * RLIMIT_NOFILE soft limit to the hard limit. *ret is freed with
 * ipc_server_free(). */
int ipc_server_new(struct lws_vhost *vh, int listen_fd, const struct ipc_limits *lim,
    const struct ipc_callbacks *cb, void *ud, struct ipc_server **ret);
/* Closes the listener and every conn (on_close is called for each).
 * NULL-safe. Must not be called from inside one of this server's callbacks.
 * Call it before lws_context_destroy(); otherwise lws closes the conns
 * itself during the destroy and on_close runs from there. */
void ipc_server_free(struct ipc_server *s);
size_t ipc_server_conn_count(const struct ipc_server *s);
/* The effective limits (defaults filled in). */
const struct ipc_limits *ipc_server_limits(const struct ipc_server *s);

/* Serialise msg compactly plus '\n' and queue it. 0 on success; -ENOBUFS
 * when the queued output would pass max_output (the conn is then closed);
 * -ENOMEM; -EPIPE when the conn is already closing (silently dropped). */
int ipc_conn_send(struct ipc_conn *c, const cJSON *msg);
/* Queue an already serialised JSON text (no '\n'; one is appended). */
int ipc_conn_send_text(struct ipc_conn *c, const char *json, size_t len);
/* {"op":"error","client-event-id":id,"type":type,"message":message}; the
 * id member is left out when NULL. Same returns as ipc_conn_send(). */
int ipc_conn_send_error(struct ipc_conn *c, const char *client_event_id,
    const char *type, const char *message);
/* Close without flushing queued output. Safe anywhere, including inside a
 * callback for this conn; on_close runs later from the loop. Idempotent. */
void ipc_conn_close(struct ipc_conn *c);
/* Close after the queued output has been written (used after a fatal
 * protocol error reply). */
void ipc_conn_close_after_flush(struct ipc_conn *c);

/* Virtual conns: a local-protocol client with no socket of its own (a
 * protocol adapter inside the daemon). Everything sent to the conn is handed
 * to sink at once, as one serialised JSON text without '\n' (borrowed for
 * the call; return 0 or a negative errno, which the sender sees); sink(ud,
 * NULL, 0) says the daemon closed the conn: the owner must then stop
 * delivering and free it with ipc_conn_free_virtual() (not from inside the
 * sink call). A sink must not deliver requests itself. */
typedef int (*ipc_sink_fn)(void *ud, const char *json, size_t len);
/* A new conn of server s for a peer the caller has checked to run as uid;
 * on_open runs before it returns. -EMFILE when the server is at max_conns,
 * -ENOMEM, -EINVAL. */
int ipc_conn_new_virtual(struct ipc_server *s, ipc_sink_fn sink, void *ud, uid_t uid,
    struct ipc_conn **ret);
/* One request, as if it had arrived on a socket: ipc_protocol_check() then
 * on_request (a failed check is answered with an error to the sink). msg
 * is borrowed. -EPIPE once the conn is closed. */
int ipc_conn_deliver(struct ipc_conn *c, const cJSON *msg);
/* on_close, then free. NULL-safe. Not from inside this conn's callbacks. */
void ipc_conn_free_virtual(struct ipc_conn *c);

void ipc_conn_set_data(struct ipc_conn *c, void *data);
void *ipc_conn_get_data(const struct ipc_conn *c);
uid_t ipc_conn_uid(const struct ipc_conn *c);
pid_t ipc_conn_pid(const struct ipc_conn *c);
/* Unique per server for its lifetime, starting at 1. */
uint64_t ipc_conn_id(const struct ipc_conn *c);
/* Bytes queued and not yet written. */
size_t ipc_conn_queued(const struct ipc_conn *c);
struct ipc_server *ipc_conn_server(const struct ipc_conn *c);

#endif
