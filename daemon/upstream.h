/* The upstream session: one WebSocket connection per profile to an Instant sync
 * server (hosted or self-hosted): connect, TLS, init, pings, backoff, state reports. */
#ifndef INSTANTD_UPSTREAM_H
#define INSTANTD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <cjson/cJSON.h>
#include <libwebsockets.h>

/*
 * State machine
 * -------------
 *
 *   DISCONNECTED --start--> RESOLVING --address--> CONNECTING --101--> OPENED
 *   OPENED --init-ok--> AUTHENTICATED                 (backoff attempts reset to 0)
 *   OPENED --init error: record-not-found app, or param-malformed/param-missing
 *        about the app-id--> APP_NOT_FOUND
 *   OPENED --any other 4xx init error (unknown/revoked token, bad admin token,
 *        validation ...)--> AUTH_FAILED
 *   RESOLVING/CONNECTING/OPENED/AUTHENTICATED --failure--> BACKOFF
 *        failures: DNS error or timeout, refused, TLS verification, handshake not
 *        101, close by peer, idle timeout (no PONG), frame too large, a transact
 *        unanswered past the watch timeout, a 5xx init error
 *   BACKOFF --timer (full-jitter exponential delay)--> RESOLVING
 *   AUTH_FAILED/APP_NOT_FOUND --timer (auth_retry_ms)--> RESOLVING
 *   BACKOFF/AUTH_FAILED/APP_NOT_FOUND --upstream_reconnect_now or
 *        network-up (netlink address/route added)--> RESOLVING
 *   AUTHENTICATED --app-status-changed leaving "disabled"--> reconnects (BACKOFF with
 *        zero delay), because the server dropped every query while disabled
 *   any --upstream_close--> STOPPED (once lws has sent Close 1000 and closed the
 *        socket, or after 2 s at most)
 *
 * A numeric host (IPv4/IPv6 literal) or a "+/path.sock" Unix address skips
 * RESOLVING's worker thread but still passes through the state.
 *
 * Every state change is reported through on_state with a detail string (the last
 * error, or NULL). Detail strings never contain the refresh token.
 *
 * Loop rules: everything runs on the lws service thread, except getaddrinfo which
 * runs in a short-lived detached worker thread whose answer comes back through a
 * socketpair adopted into lws as a raw file (so a hung resolver can be abandoned
 * without shared state). Never call upstream_free from inside one of this
 * session's callbacks; free every session before lws_context_destroy().
 */

enum upstream_state {
	UPSTREAM_DISCONNECTED,	/* created, not started */
	UPSTREAM_RESOLVING,	/* DNS lookup in the worker thread */
	UPSTREAM_CONNECTING,	/* TCP / TLS / HTTP upgrade */
	UPSTREAM_OPENED,	/* WebSocket open, init sent, waiting for init-ok */
	UPSTREAM_AUTHENTICATED,	/* init-ok received */
	UPSTREAM_BACKOFF,	/* waiting to retry after a transient failure */
	UPSTREAM_AUTH_FAILED,	/* init rejected (token); retrying slowly */
	UPSTREAM_APP_NOT_FOUND,	/* init rejected (no such app); retrying slowly */
	UPSTREAM_STOPPED,	/* closed by upstream_close; does nothing more */
};

/* "disconnected", "resolving", "connecting", "opened", "authenticated", "backoff",
 * "auth-failed", "app-not-found", "stopped"; "unknown" for anything else. */
const char *upstream_state_name(enum upstream_state s);

/* Borrowed for upstream_new's call; strings are copied. Zero / NULL fields take defaults. */
struct upstream_config {
	const char *url;		/* ws:// or wss:// URL incl. path; ?app_id=<app_id> is appended
					 * (with & when the URL already has a query) */
	const char *app_id;
	const char *refresh_token;	/* NULL = guest/anonymous; never logged or reported */
	const char *ca_file;		/* extra CA file (PEM) trusted besides the system store;
					 * the session then connects through a private client
					 * vhost of its own that has client_ssl_ca_filepath set */
	int backoff_base_ms;		/* default 500 */
	int backoff_cap_ms;		/* default 30000 */
	int auth_retry_ms;		/* retry after auth-failed/app-not-found, default 60000 */
	int ping_interval_s;		/* our PING after this much silence, default 20 */
	int idle_timeout_s;		/* hang up if nothing proves the link alive, default 35 */
	int resolve_timeout_s;		/* give up on a DNS lookup, default 20 */
	int connect_timeout_s;		/* TCP+TLS+upgrade must finish within, default
					 * UPSTREAM_DEFAULT_CONNECT_TIMEOUT_S */
	size_t max_frame;		/* largest message assembled, default 64 MiB */
	const char *core_version;	/* versions["@instantdb/core"], default "v1.0.67" */
	/* Tests only: replaces getaddrinfo in the worker thread (may block forever);
	 * its result is released with freeaddrinfo. */
	int (*getaddrinfo_hook)(const char *node, const char *service,
	    const struct addrinfo *hints, struct addrinfo **res);
};

struct upstream_callbacks {
	/* State changed (also called for BACKOFF -> BACKOFF with a new detail). */
	void (*on_state)(void *ud, enum upstream_state st, const char *detail);
	/* One server message; an element of an array frame is delivered separately.
	 * Lent for the call only. Delivered for every op, including init-ok (after the
	 * state became AUTHENTICATED), init errors (after the state became
	 * AUTH_FAILED/APP_NOT_FOUND, token redacted), unknown ops (logged once per op
	 * name, then passed on) and app-status-changed. Non-object array elements,
	 * objects without a string "op" and an init-ok outside OPENED (a duplicate)
	 * are logged and dropped. */
	void (*on_message)(void *ud, const cJSON *msg);
	/* Optional: diagnostics; prio is a syslog LOG_* level. Never contains the token. */
	void (*on_log)(void *ud, int prio, const char *msg);
};

/* The protocols the daemon must copy, in this order, into the "net" vhost's
 * protocols[] array (before its terminator): the ws client and the raw-file
 * handler for the resolver socketpair and the netlink socket. Their callbacks
 * ignore anything that is not theirs. The vhost needs DO_SSL_GLOBAL_INIT (else
 * wss fails with "SSL_new failed") and should have VALIDATE_UTF8; see
 * tests/upstream/upstream-test.c for the setup the daemon mirrors. */
#define UPSTREAM_PROTOCOL_COUNT 2
extern const struct lws_protocols upstream_protocols[UPSTREAM_PROTOCOL_COUNT];
/* They must come first: lws reports every freed wsi (LWS_CALLBACK_WSI_DESTROY) only
 * to protocols[0], and the session uses that as its backstop for forgetting a wsi.
 *
 * lws has its own per-stage client timeouts: the context's timeout_secs (default
 * 5 s) for the TCP connect, the TLS handshake and the wait for the 101, and the
 * vhost's connect_timeout_secs (default 20 s). Set both to
 * UPSTREAM_LWS_TIMEOUT_S(longest connect_timeout_s) so the session's own connect
 * timer, which names the stuck step, always fires first; lws's remain a backstop
 * (the session survives them too). */
#define UPSTREAM_LWS_TIMEOUT_S(connect_timeout_s)	((connect_timeout_s) + 10)
#define UPSTREAM_DEFAULT_CONNECT_TIMEOUT_S		20

/* Owns its copies of the config strings, its connection, timers and fds. */
struct upstream;

/* 0, -EINVAL (bad URL / missing app id / negative numbers), -ENOMEM. ctx and vh are
 * borrowed and must outlive the session. */
int upstream_new(struct lws_context *ctx, struct lws_vhost *vh, const struct upstream_config *cfg,
    const struct upstream_callbacks *cb, void *ud, struct upstream **ret);
/* Begin connecting (DISCONNECTED -> RESOLVING). Also opens the netlink watcher
 * (best effort). 0 or -EALREADY / -ESHUTDOWN (stopped). */
int upstream_start(struct upstream *u);
/* Queue one message (printed now; msg stays the caller's). 0, -ENOTCONN unless
 * OPENED/AUTHENTICATED (the daemon should wait for AUTHENTICATED; init is sent by
 * upstream itself), -EINVAL, -ENOMEM. Queued frames are dropped on disconnect: the
 * daemon replays from its outbox after the next init-ok. A "transact" with a
 * client-event-id is tracked for upstream_transact_watch. */
int upstream_send(struct upstream *u, const cJSON *msg);
/* Bytes queued and not yet written. */
size_t upstream_queued_bytes(const struct upstream *u);
/* Backpressure: stop (true) or resume (false) reading server frames while the
 * store is behind. Keep pauses short: a paused session reads no PINGs either, and
 * the server closes a socket silent for 15 s. Reset to reading on every connect. */
void upstream_pause_rx(struct upstream *u, bool pause);
/* Copy a new token (NULL = guest); it takes effect on the next connect. 0 or -ENOMEM. */
int upstream_set_token(struct upstream *u, const char *refresh_token);
/* Skip the wait: in BACKOFF/AUTH_FAILED/APP_NOT_FOUND connect now; when
 * connected, drop the connection and connect again at once (config changed). */
void upstream_reconnect_now(struct upstream *u);
/* Graceful: Close 1000, wait <= 2 s for the socket to close, then STOPPED and
 * done(ud) (called from the loop, never from inside this call). A stopped session
 * never reconnects; free it with upstream_free (e.g. from done). */
void upstream_close(struct upstream *u, void (*done)(void *ud), void *ud);
/* NULL-safe. Abrupt if still connected. Not from inside this session's callbacks. */
void upstream_free(struct upstream *u);

enum upstream_state upstream_get_state(const struct upstream *u);
/* Status without the token: {"state","last-error","server","app-id","session-id",
 * "app-status","user-id","connected-at","authenticated-at","last-message-at",
 * "retry-at","attempts","unknown-ops","malformed-frames","queued-bytes","guest"}.
 * "attempts" counts consecutive failed attempts since the last init-ok.
 * Times are ms since the epoch or null. A new object the caller frees, NULL on ENOMEM. */
cJSON *upstream_status_json(const struct upstream *u);
/* "active", "read-only", "disabled", or NULL before the first init-ok. */
const char *upstream_app_status(const struct upstream *u);

/* A transact sent through upstream_send that gets neither transact-ok nor error
 * within timeout_s makes the session reconnect (the daemon then replays its
 * outbox; nothing is dropped). 0 disables (the default). */
void upstream_transact_watch(struct upstream *u, int timeout_s);

/* Full-jitter exponential backoff, pure: a delay in [0, min(cap, base * 2^attempt)]
 * chosen by rnd (uniform over uint32). attempt 0 is the first retry. */
int upstream_backoff_delay_ms(unsigned attempt, int base_ms, int cap_ms, uint32_t rnd);

/* Replace every occurrence of token in string values of v (recursively), and the
 * value of any "refresh-token" member, by "[redacted]". For tests and the daemon. */
void upstream_redact(cJSON *v, const char *token);

#endif
