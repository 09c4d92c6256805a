/* The upstream session: one WebSocket connection to an Instant server per profile,
 * with off-loop DNS, TLS, init, keepalive, backoff and network-change reconnects. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "daemon/frame.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "store/util.h"

#define UPSTREAM_WS_PROTOCOL	"instantd-upstream"
#define UPSTREAM_RAW_PROTOCOL	"instantd-upstream-raw"
#define UPSTREAM_TX_CHUNK	(32 * 1024)	/* bytes per outgoing fragment */
#define UPSTREAM_MAX_ADDRS	8
#define UPSTREAM_CLOSE_WAIT_US	(2 * LWS_US_PER_SEC)
#define UPSTREAM_MAX_UNKNOWN	32	/* distinct unknown op names remembered */

/* One queued outgoing message; payload at buf + LWS_PRE. Bytes before the
 * current offset may be overwritten by lws's frame header once sent. */
struct upstream_frame {
	struct upstream_frame *next;
	size_t len, off;
	unsigned char buf[];
};

/* A transact waiting for transact-ok or error. */
struct upstream_pending_tx {
	struct upstream_pending_tx *next;
	int64_t sent_us;
	char ceid[];
};

enum upstream_raw_kind { UPSTREAM_RAW_RESOLVER, UPSTREAM_RAW_NETLINK };

/* What an adopted raw fd's opaque pointer points to. */
struct upstream_raw {
	enum upstream_raw_kind kind;
	struct upstream *u;
	struct lws *wsi;	/* NULL when not adopted */
	char buf[1024];		/* resolver answer so far */
	size_t len;
};

/* Handed to the worker thread, which owns and frees it. */
struct upstream_resolve_job {
	int fd;
	char *host;
	char port[8];
	int (*gai)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
};

struct upstream {
	struct lws_context *ctx;
	struct lws_vhost *vh;		/* borrowed: the daemon's "net" vhost (raw fds) */
	struct lws_vhost *client_vh;	/* vh, or our own when ca_file is set (owned then) */
	bool own_vhost;
	SSL_CTX *own_tls;		/* owned: own vhost's TLS client context (lws borrows it) */
	struct upstream_callbacks cb;
	void *ud;

	/* configuration (owned copies) */
	char *url, *app_id, *token, *ca_file, *core_version;
	char *host, *address, *path, *origin;	/* from the URL */
	int port;
	bool tls, unix_sock, numeric_host;
	int backoff_base_ms, backoff_cap_ms, auth_retry_ms;
	int ping_interval_s, idle_timeout_s, resolve_timeout_s, connect_timeout_s;
	size_t max_frame;
	int (*gai)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	lws_retry_bo_t policy;

	enum upstream_state state;
	char *last_error;
	bool started, stopping;

	/* current connection */
	/*
	 * The session's one client wsi, or NULL. lws owns and frees it; we borrow it
	 * from lws_client_connect_via_info returning it until the first of: our
	 * upstream_abandon_wsi handing it back (its user pointer is cleared first, so
	 * none of its later callbacks reach us), or any notice from lws that it is
	 * closing: CLIENT_CONNECTION_ERROR, CLOSED_CLIENT_HTTP (closed during the HTTP
	 * upgrade, e.g. by lws's own per-stage timeout, with no CONNECTION_ERROR),
	 * CLIENT_CLOSED, or WSI_DESTROY as the backstop for any other path. Only
	 * upstream_take_wsi clears it on lws's behalf.
	 */
	struct lws *wsi;
	bool upgrade_sent;		/* lws has built the HTTP upgrade request (TCP+TLS done) */
	unsigned gen;			/* bumped whenever a connection is abandoned */
	char addrs[UPSTREAM_MAX_ADDRS][INET6_ADDRSTRLEN];
	int n_addrs, addr_idx;
	char init_ceid[37];
	char *session_id;
	char *user_id;
	char *app_status;
	int peer_close_code;
	char peer_close_reason[64];
	unsigned char *rx;
	size_t rx_len, rx_cap;
	struct upstream_frame *txq_head, *txq_tail;
	size_t txq_bytes;
	struct upstream_pending_tx *ptx_head;
	struct upstream_pending_tx **ptx_tailp;	/* the last next field: appends stay O(1) */
	bool close_requested;
	bool ws_open;			/* the wsi is a WebSocket (Close can be sent) */
	bool close_reason_set;		/* a specific Close code is already set on it */

	/* counters and timestamps (ms since the epoch, 0 = never) */
	unsigned attempts;		/* consecutive failures since the last init-ok */
	int64_t connected_at, authenticated_at, last_message_at, retry_at;
	int64_t last_rx_us;
	unsigned unknown_ops, malformed_frames;
	char *unknown_names[UPSTREAM_MAX_UNKNOWN];
	size_t n_unknown_names;
	int transact_timeout_s;

	/* timers */
	lws_sorted_usec_list_t sul_retry, sul_resolve_to, sul_connect_to, sul_close, sul_watch;

	/* fds adopted into lws */
	struct upstream_raw *resolver;	/* in-flight lookup, or NULL */
	struct upstream_raw netlink;

	void (*close_done)(void *ud);
	void *close_ud;
};

static int upstream_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len);
static int upstream_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len);

const struct lws_protocols upstream_protocols[UPSTREAM_PROTOCOL_COUNT] = {
	{ UPSTREAM_WS_PROTOCOL, upstream_ws_callback, 0, 65536, 0, NULL, 0 },
	{ UPSTREAM_RAW_PROTOCOL, upstream_raw_callback, 0, 0, 0, NULL, 0 },
};

/* For the private vhost a session makes when it has its own CA file. */
static const struct lws_protocols upstream_vhost_protocols[] = {
	{ UPSTREAM_WS_PROTOCOL, upstream_ws_callback, 0, 65536, 0, NULL, 0 },
	{ UPSTREAM_RAW_PROTOCOL, upstream_raw_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const char *const upstream_known_ops[] = {
	"init-ok", "add-query-ok", "add-query-exists", "remove-query-ok", "refresh-ok",
	"transact-ok", "join-room-ok", "leave-room-ok", "set-presence-ok",
	"client-broadcast-ok", "refresh-presence", "patch-presence", "server-broadcast",
	"app-status-changed", "error", "join-room-error", "start-sync-ok", "sync-load-batch",
	"sync-init-finish", "sync-update-triples", "start-stream-ok", "stream-flushed",
	"append-failed", "stream-append", "sse-init",
};

static void upstream_attempt(struct upstream *u);
static void upstream_fail(struct upstream *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *
upstream_state_name(enum upstream_state s)
{
	switch (s) {
	case UPSTREAM_DISCONNECTED: return "disconnected";
	case UPSTREAM_RESOLVING: return "resolving";
	case UPSTREAM_CONNECTING: return "connecting";
	case UPSTREAM_OPENED: return "opened";
	case UPSTREAM_AUTHENTICATED: return "authenticated";
	case UPSTREAM_BACKOFF: return "backoff";
	case UPSTREAM_AUTH_FAILED: return "auth-failed";
	case UPSTREAM_APP_NOT_FOUND: return "app-not-found";
	case UPSTREAM_STOPPED: return "stopped";
	}
	return "unknown";
}

int
upstream_backoff_delay_ms(unsigned attempt, int base_ms, int cap_ms, uint32_t rnd)
{
	int64_t ceiling;

	if (base_ms < 1)
		base_ms = 1;
	if (cap_ms < 1)
		cap_ms = 1;
	ceiling = base_ms;
	for (unsigned i = 0; i < attempt && ceiling < cap_ms; i++)
		ceiling *= 2;
	if (ceiling > cap_ms)
		ceiling = cap_ms;
	/* Multiply-shift maps rnd uniformly onto [0, ceiling]. */
	return (int)(((uint64_t)rnd * (uint64_t)(ceiling + 1)) >> 32);
}

static uint32_t
upstream_random(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	return (uint32_t)(mono_us() * 2654435761u) ^ (uint32_t)getpid();
}

/* Replace the token wherever it occurs inside s; returns a new string or NULL. */
static char *
upstream_redact_string(const char *s, const char *token)
{
	static const char mark[] = "[redacted]";
	size_t tl, n = 0;
	const char *p;
	char *out, *o;

	if (!s || !token || !*token || !strstr(s, token))
		return NULL;
	tl = strlen(token);
	for (p = s; (p = strstr(p, token)); p += tl)
		n++;
	out = malloc(strlen(s) + n * sizeof(mark) + 1);
	if (!out)
		return NULL;
	for (o = out, p = s; *p;) {
		if (strncmp(p, token, tl) == 0) {
			memcpy(o, mark, sizeof(mark) - 1);
			o += sizeof(mark) - 1;
			p += tl;
		} else
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

void
upstream_redact(cJSON *v, const char *token)
{
	cJSON *c;

	if (!v)
		return;
	for (c = v->child; c; c = c->next) {
		if (c->string && strcmp(c->string, "refresh-token") == 0 && !cJSON_IsNull(c)) {
			cJSON *r = cJSON_CreateString("[redacted]");

			/* ReplaceItemViaPointer keeps the replacement's own key: give it one */
			if (r && (r->string = strdup(c->string))) {
				cJSON_ReplaceItemViaPointer(v, c, r);
				c = r;
			} else if (r)
				cJSON_Delete(r);
			continue;
		}
		if (cJSON_IsString(c)) {
			char *s = upstream_redact_string(c->valuestring, token);
			if (s) {
				free(c->valuestring);
				c->valuestring = s;
			}
		} else if (cJSON_IsArray(c) || cJSON_IsObject(c))
			upstream_redact(c, token);
	}
}

static void
upstream_log(struct upstream *u, int prio, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!u->cb.on_log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	u->cb.on_log(u->ud, prio, buf);
}

static void
upstream_set_state(struct upstream *u, enum upstream_state st, const char *detail)
{
	char *copy = NULL;

	if (detail) {
		copy = upstream_redact_string(detail, u->token);
		if (!copy)
			copy = strdup(detail);
		if (copy) {
			free(u->last_error);
			u->last_error = copy;
		}
	}
	if (u->state == st && !detail)
		return;
	u->state = st;
	if (u->cb.on_state)
		u->cb.on_state(u->ud, st, copy);
}

/* --- the send queue ------------------------------------------------------- */

static void
upstream_txq_clear(struct upstream *u)
{
	struct upstream_frame *f;

	while ((f = u->txq_head)) {
		u->txq_head = f->next;
		free(f);
	}
	u->txq_tail = NULL;
	u->txq_bytes = 0;
}

static void
upstream_ptx_clear(struct upstream *u)
{
	struct upstream_pending_tx *p;

	while ((p = u->ptx_head)) {
		u->ptx_head = p->next;
		free(p);
	}
	u->ptx_tailp = &u->ptx_head;
}

static int
upstream_queue_text(struct upstream *u, const char *text)
{
	size_t len = strlen(text);
	struct upstream_frame *f;

	f = malloc(sizeof(*f) + LWS_PRE + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = len;
	f->off = 0;
	memcpy(f->buf + LWS_PRE, text, len);
	if (u->txq_tail)
		u->txq_tail->next = f;
	else
		u->txq_head = f;
	u->txq_tail = f;
	u->txq_bytes += len;
	if (u->wsi)
		lws_callback_on_writable(u->wsi);
	return 0;
}

/* One fragment of the head message per WRITEABLE, as lws requires. */
static int
upstream_write_some(struct upstream *u, struct lws *wsi)
{
	struct upstream_frame *f = u->txq_head;
	size_t chunk;
	bool first, last;
	int flags, n;

	if (!f)
		return 0;
	chunk = f->len - f->off;
	if (chunk > UPSTREAM_TX_CHUNK)
		chunk = UPSTREAM_TX_CHUNK;
	first = f->off == 0;
	last = f->off + chunk == f->len;
	flags = lws_write_ws_flags(LWS_WRITE_TEXT, first, last);
	n = lws_write(wsi, f->buf + LWS_PRE + f->off, chunk, (enum lws_write_protocol)flags);
	if (n < (int)chunk)
		return -1;
	f->off += chunk;
	u->txq_bytes -= chunk;
	if (last) {
		u->txq_head = f->next;
		if (!u->txq_head)
			u->txq_tail = NULL;
		free(f);
	}
	if (u->txq_head)
		lws_callback_on_writable(wsi);
	return 0;
}

/* --- connection teardown ---------------------------------------------------- */

/* Forget the current wsi so none of its later callbacks reach us, and have lws
 * close it. sync only when not inside that wsi's own callback. Otherwise the wsi,
 * now without user data, closes itself at its next WRITEABLE (sending Close, with
 * any reason set before) or after a short backstop timeout. Never return -1 from
 * CLIENT_RECEIVE instead: lws 4.1.6 then keeps appending the rest of the frame to
 * its rx buffer without resetting it and overruns the heap. */
static void
upstream_abandon_wsi(struct upstream *u, bool sync)
{
	struct lws *wsi = u->wsi;

	u->wsi = NULL;
	u->gen++;
	if (!wsi)
		return;
	lws_set_wsi_user(wsi, NULL);
	if (sync) {
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
		return;
	}
	if (u->ws_open && !u->close_reason_set)
		lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"reconnecting", 12);
	lws_callback_on_writable(wsi);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 3);
}

static void
upstream_abandon_resolver(struct upstream *u, bool sync)
{
	struct upstream_raw *r = u->resolver;

	if (!r)
		return;
	u->resolver = NULL;
	lws_sul_cancel(&u->sul_resolve_to);
	if (r->wsi) {
		lws_set_opaque_user_data(r->wsi, NULL);
		/* Closing our end makes the worker's send fail harmlessly (MSG_NOSIGNAL). */
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, sync ? LWS_TO_KILL_SYNC : LWS_TO_KILL_ASYNC);
	}
	free(r);
}

/* Everything that belongs to one connection goes; the session stays. */
static void
upstream_reset_connection(struct upstream *u, bool sync)
{
	upstream_abandon_resolver(u, sync);
	upstream_abandon_wsi(u, sync);
	lws_sul_cancel(&u->sul_connect_to);
	lws_sul_cancel(&u->sul_watch);
	upstream_txq_clear(u);
	upstream_ptx_clear(u);
	free(u->rx);
	u->rx = NULL;
	u->rx_len = u->rx_cap = 0;
	free(u->session_id);
	u->session_id = NULL;
	u->close_requested = false;
	u->ws_open = false;
	u->close_reason_set = false;
	u->peer_close_code = 0;
	u->peer_close_reason[0] = '\0';
}

static void
upstream_retry_cb(lws_sorted_usec_list_t *sul)
{
	struct upstream *u = lws_container_of(sul, struct upstream, sul_retry);

	u->retry_at = 0;
	upstream_attempt(u);
}

static void
upstream_schedule_retry(struct upstream *u, int delay_ms)
{
	u->retry_at = now_ms() + delay_ms;
	lws_sul_schedule(u->ctx, 0, &u->sul_retry, upstream_retry_cb,
	    (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

/* The single path for every failure of a connection or attempt. */
static void
upstream_fail(struct upstream *u, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	int delay;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);

	upstream_reset_connection(u, false);
	if (u->stopping)
		return;
	if (u->state == UPSTREAM_AUTH_FAILED || u->state == UPSTREAM_APP_NOT_FOUND) {
		/* the server rejected init: retry slowly, keep the state it reported */
		if (!u->retry_at)
			upstream_schedule_retry(u, u->auth_retry_ms);
		return;
	}
	delay = upstream_backoff_delay_ms(u->attempts, u->backoff_base_ms, u->backoff_cap_ms,
	    upstream_random());
	u->attempts++;
	upstream_schedule_retry(u, delay);
	upstream_log(u, LOG_NOTICE, "upstream %s: %s; retry in %d ms", u->host, detail, delay);
	upstream_set_state(u, UPSTREAM_BACKOFF, detail);
}

/* --- connecting ------------------------------------------------------------- */

/* Which step of connecting the current wsi is stuck in, for the timeout's message. */
static const char *
upstream_connect_stage(struct upstream *u)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	if (u->upgrade_sent)
		return "the server accepted the connection but did not answer the WebSocket upgrade";
	fd = u->wsi ? lws_get_socket_fd(u->wsi) : -1;
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return "no TCP connection (the address does not answer: a firewall or a "
		    "network that drops packets?)";
	if (u->tls)
		return "the server accepted the connection but the TLS handshake did not finish";
	return "the server accepted the connection but the WebSocket upgrade was not sent";
}

/* Whether the peer of a wsi lws is closing has gone (EOF or reset), as opposed to
 * still being there silent: lws closes for both without saying which. The socket
 * is still open during the close callbacks (__lws_close_free_wsi_final closes it). */
static bool
upstream_peer_gone(struct lws *wsi)
{
	char c;
	int fd = lws_get_socket_fd(wsi);
	ssize_t n;

	if (fd < 0)
		return false;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void
upstream_connect_to_cb(lws_sorted_usec_list_t *sul)
{
	struct upstream *u = lws_container_of(sul, struct upstream, sul_connect_to);

	if (u->state == UPSTREAM_CONNECTING)
		upstream_fail(u, "connect to %s:%d timed out after %d s: %s", u->host, u->port,
		    u->connect_timeout_s, upstream_connect_stage(u));
}

static void
upstream_connect_addr(struct upstream *u)
{
	struct lws_client_connect_info i;
	struct lws *wsi;
	int e;

	upstream_set_state(u, UPSTREAM_CONNECTING, NULL);
	memset(&i, 0, sizeof(i));
	i.context = u->ctx;
	i.vhost = u->client_vh;
	i.address = u->unix_sock ? u->address : u->addrs[u->addr_idx];
	i.port = u->port;
	i.path = u->path;
	/* lws checks the certificate name and sends SNI from host; NULL crashes it */
	i.host = u->host;
	i.origin = u->origin;
	i.ssl_connection = u->tls ? LCCSCF_USE_SSL : 0;
	i.protocol = NULL;	/* Instant uses no subprotocol */
	i.local_protocol_name = UPSTREAM_WS_PROTOCOL;
	i.userdata = u;
	i.retry_and_idle_policy = &u->policy;

	u->peer_close_code = 0;
	u->close_requested = false;
	u->upgrade_sent = false;
	lws_sul_schedule(u->ctx, 0, &u->sul_connect_to, upstream_connect_to_cb,
	    (lws_usec_t)u->connect_timeout_s * LWS_US_PER_SEC);
	/* Failures inside this call come back as NULL, not as CONNECTION_ERROR;
	 * a connect() that fails at once leaves its errno (lws keeps no other). */
	errno = 0;
	wsi = lws_client_connect_via_info(&i);
	if (!wsi) {
		e = errno;
		upstream_fail(u, "connect to %s (%s:%d) failed at once: %s", u->host, i.address,
		    u->port, e == ENETUNREACH || e == EHOSTUNREACH || e == EADDRNOTAVAIL ||
		    e == ECONNREFUSED || e == EACCES || e == EPERM ? strerror(e) :
		    "no connection could be started (no route, or out of sockets?)");
		return;
	}
	u->wsi = wsi;
}

static void
upstream_resolve_to_cb(lws_sorted_usec_list_t *sul)
{
	struct upstream *u = lws_container_of(sul, struct upstream, sul_resolve_to);

	if (u->state == UPSTREAM_RESOLVING)
		upstream_fail(u, "DNS lookup of %s timed out after %d s", u->host,
		    u->resolve_timeout_s);
}

static void *
upstream_resolver_thread(void *arg)
{
	struct upstream_resolve_job *job = arg;
	struct addrinfo hints, *res = NULL, *ai;
	char out[1024];
	size_t off = 0;
	int r, n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	r = job->gai(job->host, job->port, &hints, &res);
	if (r != 0)
		off = (size_t)snprintf(out, sizeof(out), "E %s\n",
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	else {
		for (ai = res; ai && n < UPSTREAM_MAX_ADDRS; ai = ai->ai_next) {
			char a[INET6_ADDRSTRLEN];
			const void *p;

			if (ai->ai_family == AF_INET)
				p = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
			else if (ai->ai_family == AF_INET6)
				p = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
			else
				continue;
			if (!inet_ntop(ai->ai_family, p, a, sizeof(a)))
				continue;
			if (off + strlen(a) + 4 >= sizeof(out))
				break;
			off += (size_t)snprintf(out + off, sizeof(out) - off, "A %s\n", a);
			n++;
		}
		if (!n)
			off = (size_t)snprintf(out, sizeof(out), "E no usable address\n");
		freeaddrinfo(res);
	}
	/* The loop may have given up on us: then this fails quietly. */
	(void)!send(job->fd, out, off, MSG_NOSIGNAL);
	close(job->fd);
	free(job->host);
	free(job);
	return NULL;
}

static int
upstream_start_resolver(struct upstream *u)
{
	struct upstream_resolve_job *job;
	struct upstream_raw *r;
	pthread_attr_t attr;
	pthread_t tid;
	lws_sock_file_fd_type fd;
	int sv[2], e;

	r = calloc(1, sizeof(*r));
	job = calloc(1, sizeof(*job));
	if (!r || !job) {
		free(r);
		free(job);
		return -ENOMEM;
	}
	job->host = strdup(u->host);
	if (!job->host) {
		free(r);
		free(job);
		return -ENOMEM;
	}
	snprintf(job->port, sizeof(job->port), "%d", u->port);
	job->gai = u->gai;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		e = -errno;
		free(job->host);
		free(job);
		free(r);
		return e;
	}
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	job->fd = sv[1];
	r->kind = UPSTREAM_RAW_RESOLVER;
	r->u = u;
	memset(&fd, 0, sizeof(fd));
	fd.filefd = sv[0];
	/* lws 4.1.6 closes only sockets when adoption fails, not file descriptors. */
	r->wsi = lws_adopt_descriptor_vhost(u->vh, LWS_ADOPT_RAW_FILE_DESC, fd,
	    UPSTREAM_RAW_PROTOCOL, NULL);
	if (!r->wsi) {
		close(sv[0]);
		close(sv[1]);
		free(job->host);
		free(job);
		free(r);
		return -EIO;
	}
	lws_set_opaque_user_data(r->wsi, r);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&tid, &attr, upstream_resolver_thread, job);
	pthread_attr_destroy(&attr);
	if (e) {
		close(sv[1]);
		free(job->host);
		free(job);
		lws_set_opaque_user_data(r->wsi, NULL);
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		free(r);
		return -e;
	}
	u->resolver = r;
	lws_sul_schedule(u->ctx, 0, &u->sul_resolve_to, upstream_resolve_to_cb,
	    (lws_usec_t)u->resolve_timeout_s * LWS_US_PER_SEC);
	return 0;
}

/* The worker's whole answer has arrived (EOF). */
static void
upstream_resolver_done(struct upstream *u, struct upstream_raw *r)
{
	char *line, *save = NULL;
	char err[256] = "resolver thread ended without an answer";
	int n = 0;

	r->buf[r->len < sizeof(r->buf) ? r->len : sizeof(r->buf) - 1] = '\0';
	for (line = strtok_r(r->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'A' && line[1] == ' ' && n < UPSTREAM_MAX_ADDRS)
			snprintf(u->addrs[n++], sizeof(u->addrs[0]), "%s", line + 2);
		else if (line[0] == 'E' && line[1] == ' ')
			snprintf(err, sizeof(err), "%s", line + 2);
	}
	/* the wsi closes itself when we return -1; just drop our record */
	u->resolver = NULL;
	lws_sul_cancel(&u->sul_resolve_to);
	free(r);
	if (!n) {
		upstream_fail(u, "DNS lookup of %s failed: %s", u->host, err);
		return;
	}
	u->n_addrs = n;
	u->addr_idx = 0;
	upstream_connect_addr(u);
}

static void
upstream_attempt(struct upstream *u)
{
	int r;

	if (u->stopping)
		return;
	lws_sul_cancel(&u->sul_retry);
	u->retry_at = 0;
	upstream_reset_connection(u, false);
	upstream_set_state(u, UPSTREAM_RESOLVING, NULL);
	if (u->unix_sock || u->numeric_host) {
		snprintf(u->addrs[0], sizeof(u->addrs[0]), "%s", u->unix_sock ? "" : u->address);
		u->n_addrs = 1;
		u->addr_idx = 0;
		upstream_connect_addr(u);
		return;
	}
	r = upstream_start_resolver(u);
	if (r < 0)
		upstream_fail(u, "cannot start DNS lookup: %s", strerror(-r));
}

/* --- receiving ---------------------------------------------------------------- */

static bool
upstream_op_known(const char *op)
{
	for (size_t i = 0; i < ELEMENTSOF(upstream_known_ops); i++)
		if (strcmp(op, upstream_known_ops[i]) == 0)
			return true;
	return false;
}

static void
upstream_note_unknown(struct upstream *u, const char *op)
{
	u->unknown_ops++;
	for (size_t i = 0; i < u->n_unknown_names; i++)
		if (strcmp(u->unknown_names[i], op) == 0)
			return;
	if (u->n_unknown_names < UPSTREAM_MAX_UNKNOWN) {
		char *c = strdup(op);
		if (c)
			u->unknown_names[u->n_unknown_names++] = c;
	} else
		return;	/* past the cap nothing more is logged */
	upstream_log(u, LOG_WARNING, "upstream %s: unknown op \"%.64s\" (ignored by instantd)",
	    u->host, op);
}

static void
upstream_ptx_remove(struct upstream *u, const char *ceid)
{
	struct upstream_pending_tx **pp, *p;

	for (pp = &u->ptx_head; (p = *pp); pp = &p->next)
		if (strcmp(p->ceid, ceid) == 0) {
			*pp = p->next;
			if (p->next == NULL)
				u->ptx_tailp = pp;
			free(p);
			return;
		}
}

static void
upstream_set_str(char **dst, const char *src)
{
	char *c = src ? strdup(src) : NULL;

	if (src && !c)
		return;	/* keep the old value on ENOMEM */
	free(*dst);
	*dst = c;
}

/* Does a param-* error's hint blame the app id (a malformed or missing app-id)? */
static bool
upstream_hint_names_app_id(const cJSON *hint)
{
	_cleanup_free_ char *s = hint ? cJSON_PrintUnformatted(hint) : NULL;

	return s && (strstr(s, "app-id") || strstr(s, "app_id"));
}

/* An error answering our init. Returns true when it was one. */
static bool
upstream_handle_init_error(struct upstream *u, cJSON *msg)
{
	const cJSON *orig = json_get(msg, "original-event");
	const char *ceid = json_get_string(msg, "client-event-id");
	const char *oop = json_get_string(orig, "op");
	const char *type, *rtype, *m;
	const cJSON *status;
	char detail[300];

	if (!(oop && strcmp(oop, "init") == 0) && !(ceid && strcmp(ceid, u->init_ceid) == 0))
		return false;
	/* The server echoes the token in some hints (protocol.md 9.2). */
	upstream_redact(msg, u->token);
	type = json_get_string(msg, "type");
	rtype = json_get_string(json_get(msg, "hint"), "record-type");
	m = json_get_string(msg, "message");
	status = json_get(msg, "status");
	snprintf(detail, sizeof(detail), "init rejected: %s%s%s", m ? m : "(no message)",
	    type ? " / " : "", type ? type : "");
	if ((cJSON_IsNumber(status) && status->valuedouble >= 500) || !type) {
		/* the server broke, not our credentials: ordinary backoff */
		if (u->cb.on_message)
			u->cb.on_message(u->ud, msg);
		upstream_fail(u, "%s", detail);
		return true;
	}
	if ((strcmp(type, "record-not-found") == 0 && rtype && strcmp(rtype, "app") == 0) ||
	    ((strcmp(type, "param-malformed") == 0 || strcmp(type, "param-missing") == 0) &&
	    upstream_hint_names_app_id(json_get(msg, "hint"))))
		upstream_set_state(u, UPSTREAM_APP_NOT_FOUND, detail);
	else
		upstream_set_state(u, UPSTREAM_AUTH_FAILED, detail);
	upstream_log(u, LOG_ERR, "upstream %s: %s; retry in %d s", u->host, detail,
	    u->auth_retry_ms / 1000);
	if (u->cb.on_message)
		u->cb.on_message(u->ud, msg);
	if (u->state == UPSTREAM_AUTH_FAILED || u->state == UPSTREAM_APP_NOT_FOUND)
		upstream_fail(u, "%s", detail);
	return true;
}

/* One message. Returns false when the connection was abandoned meanwhile. */
static bool
upstream_dispatch(struct upstream *u, cJSON *msg)
{
	unsigned gen = u->gen;
	const char *op = json_get_string(msg, "op");
	const char *ceid;
	bool was_disabled = false, now_enabled = false;

	if (!cJSON_IsObject(msg) || !op) {
		u->malformed_frames++;
		if (u->malformed_frames <= 3)
			upstream_log(u, LOG_WARNING, "upstream %s: message without an op, dropped",
			    u->host);
		return true;
	}
	u->last_message_at = now_ms();
	ceid = json_get_string(msg, "client-event-id");

	if (strcmp(op, "init-ok") == 0 && u->state != UPSTREAM_OPENED) {
		/* a duplicate (hostile or buggy server): the daemon must not resubscribe twice */
		upstream_log(u, LOG_WARNING, "upstream %s: unexpected init-ok in state %s, ignored",
		    u->host, upstream_state_name(u->state));
		return true;
	} else if (strcmp(op, "init-ok") == 0) {
		const cJSON *st = json_get(json_get(msg, "app-status"), "status");
		const cJSON *user = json_get(json_get(msg, "auth"), "user");

		upstream_set_str(&u->session_id, json_get_string(msg, "session-id"));
		upstream_set_str(&u->user_id, json_get_string(user, "id"));
		if (cJSON_IsString(st))
			upstream_set_str(&u->app_status, st->valuestring);
		u->attempts = 0;
		u->authenticated_at = now_ms();
		free(u->last_error);
		u->last_error = NULL;
		upstream_set_state(u, UPSTREAM_AUTHENTICATED, NULL);
	} else if (strcmp(op, "error") == 0 && u->state == UPSTREAM_OPENED) {
		if (upstream_handle_init_error(u, msg))
			return false;
	} else if (strcmp(op, "app-status-changed") == 0) {
		const char *st = json_get_string(msg, "status");

		if (st) {
			was_disabled = u->app_status && strcmp(u->app_status, "disabled") == 0;
			now_enabled = strcmp(st, "disabled") != 0;
			upstream_set_str(&u->app_status, st);
			upstream_log(u, LOG_NOTICE, "upstream %s: app status is now %.32s", u->host, st);
		}
	} else if (!upstream_op_known(op))
		upstream_note_unknown(u, op);

	if ((strcmp(op, "transact-ok") == 0 || strcmp(op, "error") == 0) && ceid)
		upstream_ptx_remove(u, ceid);

	if (u->cb.on_message)
		u->cb.on_message(u->ud, msg);
	if (gen != u->gen || u->stopping)
		return false;
	if (was_disabled && now_enabled) {
		/* the server dropped every query while disabled: start over */
		upstream_fail(u, "app no longer disabled; reconnecting");
		lws_sul_cancel(&u->sul_retry);
		upstream_schedule_retry(u, 0);
		return false;
	}
	return true;
}

static void
upstream_process_frame(struct upstream *u)
{
	_cleanup_json_ cJSON *root = NULL;
	cJSON *el;
	int r;

	r = frame_parse((char *)u->rx, u->rx_len, &root);
	u->rx_len = 0;
	if (r == -ENOMEM) {
		upstream_log(u, LOG_WARNING, "upstream %s: out of memory parsing a frame, dropped", u->host);
		return;
	}
	if (r < 0) {
		u->malformed_frames++;
		if (u->malformed_frames <= 3)
			upstream_log(u, LOG_WARNING, "upstream %s: frame is not JSON, dropped", u->host);
		return;
	}
	if (cJSON_IsArray(root)) {
		cJSON_ArrayForEach(el, root)
			if (!upstream_dispatch(u, el))
				return;
		return;
	}
	upstream_dispatch(u, root);
}

static int
upstream_rx_append(struct upstream *u, const void *in, size_t len)
{
	if (u->rx_len + len > u->max_frame)
		return -EMSGSIZE;
	if (u->rx_len + len > u->rx_cap) {
		size_t cap = u->rx_cap ? u->rx_cap : 16384;
		unsigned char *n;

		while (cap < u->rx_len + len)
			cap *= 2;
		if (cap > u->max_frame)
			cap = u->max_frame;
		n = realloc(u->rx, cap);
		if (!n)
			return -ENOMEM;
		u->rx = n;
		u->rx_cap = cap;
	}
	memcpy(u->rx + u->rx_len, in, len);
	u->rx_len += len;
	return 0;
}

static int
upstream_send_init(struct upstream *u)
{
	_cleanup_json_ cJSON *m = cJSON_CreateObject();
	_cleanup_free_ char *text = NULL;
	cJSON *v;
	int r;

	r = uuid_v4(u->init_ceid);
	if (r < 0)
		return r;
	if (!m || !cJSON_AddStringToObject(m, "op", "init") ||
	    !cJSON_AddStringToObject(m, "client-event-id", u->init_ceid) ||
	    !cJSON_AddStringToObject(m, "app-id", u->app_id))
		return -ENOMEM;
	if (u->token && !cJSON_AddStringToObject(m, "refresh-token", u->token))
		return -ENOMEM;
	v = cJSON_AddObjectToObject(m, "versions");
	if (!v || !cJSON_AddStringToObject(v, "@instantdb/core", u->core_version))
		return -ENOMEM;
	text = cJSON_PrintUnformatted(m);
	if (!text)
		return -ENOMEM;
	return upstream_queue_text(u, text);
}

/* --- the transact watch ---------------------------------------------------------- */

static void
upstream_watch_cb(lws_sorted_usec_list_t *sul)
{
	struct upstream *u = lws_container_of(sul, struct upstream, sul_watch);
	struct upstream_pending_tx *p = u->ptx_head;
	int64_t due;

	if (!p || u->transact_timeout_s <= 0 || !u->wsi)
		return;
	due = p->sent_us + (int64_t)u->transact_timeout_s * LWS_US_PER_SEC;
	if (mono_us() >= due) {
		upstream_fail(u, "transact %s unanswered for %d s; reconnecting", p->ceid,
		    u->transact_timeout_s);
		return;
	}
	lws_sul_schedule(u->ctx, 0, &u->sul_watch, upstream_watch_cb, (lws_usec_t)(due - mono_us()) + 1000);
}

static void
upstream_watch_arm(struct upstream *u)
{
	if (u->transact_timeout_s <= 0 || !u->ptx_head)
		return;
	/* the oldest entry is at the head: check when it falls due */
	if (!lws_dll2_is_detached(&u->sul_watch.list))
		return;
	lws_sul_schedule(u->ctx, 0, &u->sul_watch, upstream_watch_cb,
	    (lws_usec_t)u->transact_timeout_s * LWS_US_PER_SEC);
}

void
upstream_transact_watch(struct upstream *u, int timeout_s)
{
	u->transact_timeout_s = timeout_s > 0 ? timeout_s : 0;
	lws_sul_cancel(&u->sul_watch);
	upstream_watch_arm(u);
}

/* --- closing ------------------------------------------------------------------------ */

static void
upstream_close_finish_cb(lws_sorted_usec_list_t *sul)
{
	struct upstream *u = lws_container_of(sul, struct upstream, sul_close);
	void (*done)(void *) = u->close_done;

	upstream_reset_connection(u, false);
	upstream_set_state(u, UPSTREAM_STOPPED, NULL);
	u->close_done = NULL;
	if (done)
		done(u->close_ud);
}

/* --- lws callbacks ---------------------------------------------------------------------- */

/* lws says wsi is closing. If it is the session's current one, forget it (lws frees
 * it after this callback) and return true; false for an abandoned or foreign wsi. */
static bool
upstream_take_wsi(struct upstream *u, struct lws *wsi)
{
	if (!u || !wsi || u->wsi != wsi)
		return false;
	u->wsi = NULL;
	lws_sul_cancel(&u->sul_connect_to);
	return true;
}

/* The current connection is gone (already taken): finish a close in progress, or fail. */
static void
upstream_conn_lost(struct upstream *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void
upstream_conn_lost(struct upstream *u, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	if (u->stopping) {
		lws_sul_cancel(&u->sul_close);
		lws_sul_schedule(u->ctx, 0, &u->sul_close, upstream_close_finish_cb, 1);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	upstream_fail(u, "%s", detail);
}

/* lws's CONNECTION_ERROR texts, said so a person knows what happened. */
static const struct {
	const char *lws, *said;
} upstream_cce_texts[] = {
	{ "Unable to connect", "the TCP connection failed at once (refused or reset, or no route)" },
	{ "closed before established", "the connection closed before it was established" },
	{ "Closed before conn", "the connection closed before it was established" },
	{ "Peer hung up", "the server closed the connection before answering the WebSocket upgrade" },
	{ "read failed", "the server closed or reset the connection before answering the WebSocket upgrade" },
	{ "Timed out waiting SSL", "the TLS handshake timed out" },
};

static const char *
upstream_cce_text(const char *in)
{
	if (!in)
		return "unknown error";
	for (size_t i = 0; i < ELEMENTSOF(upstream_cce_texts); i++)
		if (strcmp(in, upstream_cce_texts[i].lws) == 0)
			return upstream_cce_texts[i].said;
	return in;
}

static int
upstream_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct upstream *u = user;
	SSL *ssl;
	long vr;
	int r;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!upstream_take_wsi(u, wsi))
			return 0;
		if (!u->stopping && u->addr_idx + 1 < u->n_addrs) {
			upstream_log(u, LOG_INFO, "upstream %s: %s: %s; trying the next address",
			    u->host, u->addrs[u->addr_idx], upstream_cce_text(in));
			u->addr_idx++;
			upstream_connect_addr(u);
			return 0;
		}
		ssl = u->tls ? lws_get_ssl(wsi) : NULL;
		vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
		if (vr != X509_V_OK)
			/* lws only says "connect SSL err 1"; name the real reason */
			upstream_conn_lost(u, "TLS certificate of %s not trusted: %s (verify error %ld)",
			    u->host, X509_verify_cert_error_string(vr), vr);
		else if ((r = (int)lws_http_client_http_response(wsi)) > 0 && r != 101)
			upstream_conn_lost(u, "connect to %s (%s:%d) failed: %s (HTTP %d)", u->host,
			    u->unix_sock ? u->address : u->addrs[u->addr_idx], u->port,
			    upstream_cce_text(in), r);
		else
			upstream_conn_lost(u, "connect to %s (%s:%d) failed: %s", u->host,
			    u->unix_sock ? u->address : u->addrs[u->addr_idx], u->port,
			    upstream_cce_text(in));
		return 0;

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		/* TCP (and TLS) are done; lws is writing the upgrade request. Abandoned
		 * wsis have no user, so a non-NULL u is the current attempt (possibly
		 * still inside lws_client_connect_via_info, before u->wsi is set). */
		if (u)
			u->upgrade_sent = true;
		return 0;

	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		/* Closed while still HTTP, without a CONNECTION_ERROR (close.c only
		 * reports unestablished ws-role wsis as CONNECTION_ERROR, and a client is
		 * h1 until the upgrade): lws's own timeout fired while waiting for the
		 * 101, or the socket died while the request was being written (a reset
		 * that lands just after connect, which a slow build sees). */
		if (!upstream_take_wsi(u, wsi))
			return 0;
		upstream_conn_lost(u, "connect to %s (%s:%d) failed: %s", u->host,
		    u->unix_sock ? u->address : u->addrs[u->addr_idx], u->port,
		    !u->upgrade_sent ? "the connection closed before the WebSocket upgrade was sent" :
		    upstream_peer_gone(wsi) ? "the server closed or reset the connection before "
		    "answering the WebSocket upgrade" :
		    "the server did not answer the WebSocket upgrade in time");
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		/* Every wsi of the vhost is reported here (we are its protocols[0]); only
		 * those bound to this callback carry a struct upstream. Reaching this
		 * with the current wsi means lws closed it without any notice above. */
		if (!lws_get_protocol(wsi) || lws_get_protocol(wsi)->callback != upstream_ws_callback)
			return 0;
		if (!upstream_take_wsi(u, wsi))
			return 0;
		upstream_conn_lost(u, "connection to %s closed", u->host);
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!u)
			return -1;	/* abandoned while the 101 was on its way: close it */
		if (u->wsi != wsi)
			return 0;
		lws_sul_cancel(&u->sul_connect_to);
		u->ws_open = true;
		u->connected_at = now_ms();
		u->last_rx_us = mono_us();
		upstream_set_state(u, UPSTREAM_OPENED, NULL);
		r = upstream_send_init(u);
		if (r < 0) {
			upstream_fail(u, "cannot build init: %s", strerror(-r));
			return 0;
		}
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!u || u->wsi != wsi)
			return 0;
		u->last_rx_us = mono_us();
		/* Any data proves the link alive, not only PONGs (lws 4.1.6 counts only those). */
		lws_validity_confirmed(wsi);
		if (lws_is_first_fragment(wsi))
			u->rx_len = 0;
		r = upstream_rx_append(u, in, len);
		if (r < 0) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"too big", 7);
			u->close_reason_set = true;
			if (r == -EMSGSIZE)
				upstream_fail(u, "server message larger than %zu bytes", u->max_frame);
			else
				upstream_fail(u, "out of memory assembling a server message");
			return 0;
		}
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi))
			upstream_process_frame(u);
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		if (u && u->wsi == wsi)
			u->last_rx_us = mono_us();
		return 0;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!u)
			return -1;	/* abandoned: close it now */
		if (u->wsi != wsi)
			return 0;
		if (u->close_requested) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
			return -1;
		}
		if (upstream_write_some(u, wsi) < 0) {
			upstream_fail(u, "connection to %s failed while sending: the connection was "
			    "closed or reset", u->host);
			return 0;
		}
		return 0;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (!u || u->wsi != wsi)
			return 0;
		if (len >= 2) {
			const unsigned char *p = in;
			size_t rl = len - 2 < sizeof(u->peer_close_reason) - 1 ?
			    len - 2 : sizeof(u->peer_close_reason) - 1;

			u->peer_close_code = (p[0] << 8) | p[1];
			memcpy(u->peer_close_reason, p + 2, rl);
			u->peer_close_reason[rl] = '\0';
		}
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!upstream_take_wsi(u, wsi))
			return 0;
		if (u->peer_close_code)
			upstream_conn_lost(u, "server closed the connection (%d%s%s)", u->peer_close_code,
			    u->peer_close_reason[0] ? " " : "", u->peer_close_reason);
		else if (mono_us() - u->last_rx_us >= (int64_t)(u->idle_timeout_s - 1) * LWS_US_PER_SEC)
			upstream_conn_lost(u, "connection silent for %d s (no answer to ping)",
			    u->idle_timeout_s);
		else
			upstream_conn_lost(u, "connection to %s lost", u->host);
		return 0;

	default:
		return 0;
	}
}

static void
upstream_netlink_read(struct upstream *u, int fd)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct nlmsghdr))));
	bool up = false;
	ssize_t n;

	for (;;) {
		struct nlmsghdr *h;

		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_NEWROUTE)
				up = true;
	}
	if (!up)
		return;
	upstream_log(u, LOG_INFO, "upstream %s: network change (address or route added)", u->host);
	if (u->state == UPSTREAM_BACKOFF && !u->stopping) {
		upstream_log(u, LOG_NOTICE, "upstream %s: network came up; connecting now", u->host);
		upstream_attempt(u);
	}
}

static int
upstream_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct upstream_raw *r;
	ssize_t n;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		r = lws_get_opaque_user_data(wsi);
		if (!r)
			return -1;	/* abandoned: close it */
		if (r->kind == UPSTREAM_RAW_NETLINK) {
			upstream_netlink_read(r->u, lws_get_socket_fd(wsi));
			return 0;
		}
		for (;;) {
			char tmp[512];

			n = read(lws_get_socket_fd(wsi), tmp, sizeof(tmp));
			if (n > 0) {
				size_t room = sizeof(r->buf) - 1 - r->len;
				size_t take = (size_t)n < room ? (size_t)n : room;

				memcpy(r->buf + r->len, tmp, take);
				r->len += take;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			break;	/* EOF or error: the answer is complete */
		}
		lws_set_opaque_user_data(wsi, NULL);
		r->wsi = NULL;
		upstream_resolver_done(r->u, r);
		return -1;

	case LWS_CALLBACK_RAW_CLOSE_FILE:
		r = lws_get_opaque_user_data(wsi);
		if (!r)
			return 0;
		lws_set_opaque_user_data(wsi, NULL);
		r->wsi = NULL;
		if (r->kind == UPSTREAM_RAW_RESOLVER && r->u->resolver == r) {
			struct upstream *u = r->u;

			/* hung up without an answer */
			upstream_resolver_done(u, r);
		}
		return 0;

	default:
		return 0;
	}
}

static void
upstream_netlink_open(struct upstream *u)
{
	struct sockaddr_nl sa;
	lws_sock_file_fd_type fd;
	int s;

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0) {
		upstream_log(u, LOG_WARNING, "upstream: no netlink socket (%s); network changes "
		    "are noticed only by the backoff timer", strerror(errno));
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
	    RTMGRP_IPV6_ROUTE;
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		upstream_log(u, LOG_WARNING, "upstream: cannot bind netlink socket: %s",
		    strerror(errno));
		close(s);
		return;
	}
	memset(&fd, 0, sizeof(fd));
	fd.filefd = s;
	u->netlink.kind = UPSTREAM_RAW_NETLINK;
	u->netlink.u = u;
	u->netlink.wsi = lws_adopt_descriptor_vhost(u->vh, LWS_ADOPT_RAW_FILE_DESC, fd,
	    UPSTREAM_RAW_PROTOCOL, NULL);
	if (!u->netlink.wsi) {
		upstream_log(u, LOG_WARNING, "upstream: cannot adopt the netlink socket");
		close(s);	/* adopted as a file: lws does not close it on failure */
		return;
	}
	lws_set_opaque_user_data(u->netlink.wsi, &u->netlink);
}

/* --- URL ---------------------------------------------------------------------------- */

static int
upstream_append_query(char **path, const char *app_id)
{
	_cleanup_free_ char *enc = NULL;
	char *n, *o;
	const char *p;

	enc = malloc(strlen(app_id) * 3 + 1);
	if (!enc)
		return -ENOMEM;
	for (o = enc, p = app_id; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			*o++ = (char)c;
		else
			o += sprintf(o, "%%%02X", c);
	}
	*o = '\0';
	if (asprintf(&n, "%s%sapp_id=%s", *path, strchr(*path, '?') ? "&" : "?", enc) < 0)
		return -ENOMEM;
	free(*path);
	*path = n;
	return 0;
}

/* Splits url into the session's host/address/port/path with lws_parse_uri on a copy. */
static int
upstream_parse_url(struct upstream *u, const char *url)
{
	_cleanup_free_ char *copy = NULL;
	const char *prot, *ads, *path, *sep;
	char *hash, *q;
	int port = 0, r;
	struct in6_addr a6;

	sep = strstr(url, "://");
	if (!sep)
		return -EINVAL;
	/* lws_parse_uri does not split "wss://h?x=1": give it a path first */
	q = strpbrk(sep + 3, "/?");
	if (q && *q == '?') {
		if (asprintf(&copy, "%.*s/%s", (int)(q - url), url, q) < 0)
			return -ENOMEM;
	} else if (!(copy = strdup(url)))
		return -ENOMEM;
	hash = strchr(copy, '#');
	if (hash)
		*hash = '\0';
	if (lws_parse_uri(copy, &prot, &ads, &port, &path))
		return -EINVAL;
	if (strcmp(prot, "wss") == 0)
		u->tls = true;
	else if (strcmp(prot, "ws") != 0)
		return -EINVAL;
	u->unix_sock = ads[0] == '+';
	if (!*ads || (!u->unix_sock && (port <= 0 || port > 65535)))
		return -EINVAL;
	u->address = strdup(ads);
	if (u->unix_sock)
		u->host = strdup("localhost");
	else
		u->host = strdup(ads);
	if (!u->address || !u->host)
		return -ENOMEM;
	u->numeric_host = !u->unix_sock && (inet_pton(AF_INET, ads, &a6) == 1 ||
	    inet_pton(AF_INET6, ads, &a6) == 1);
	u->port = port;
	if (asprintf(&u->path, "%s%s", path[0] == '/' ? "" : "/", path) < 0) {
		u->path = NULL;
		return -ENOMEM;
	}
	r = upstream_append_query(&u->path, u->app_id);
	if (r < 0)
		return r;
	u->origin = strdup(u->host);
	if (!u->origin)
		return -ENOMEM;
	return 0;
}

/* --- public API ---------------------------------------------------------------------------- */

int
upstream_new(struct lws_context *ctx, struct lws_vhost *vh, const struct upstream_config *cfg,
    const struct upstream_callbacks *cb, void *ud, struct upstream **ret)
{
	struct upstream *u;
	int r;

	if (!ctx || !vh || !cfg || !cfg->url || !cfg->app_id || !*cfg->app_id || !ret)
		return -EINVAL;
	if (cfg->backoff_base_ms < 0 || cfg->backoff_cap_ms < 0 || cfg->auth_retry_ms < 0 ||
	    cfg->ping_interval_s < 0 || cfg->idle_timeout_s < 0 || cfg->resolve_timeout_s < 0 ||
	    cfg->connect_timeout_s < 0)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->ctx = ctx;
	u->vh = vh;
	u->client_vh = vh;
	if (cb)
		u->cb = *cb;
	u->ud = ud;
	u->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 500;
	u->backoff_cap_ms = cfg->backoff_cap_ms ? cfg->backoff_cap_ms : 30000;
	if (u->backoff_cap_ms < u->backoff_base_ms)
		u->backoff_cap_ms = u->backoff_base_ms;
	u->auth_retry_ms = cfg->auth_retry_ms ? cfg->auth_retry_ms : 60000;
	u->ping_interval_s = cfg->ping_interval_s ? cfg->ping_interval_s : 20;
	u->idle_timeout_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : 35;
	if (u->idle_timeout_s <= u->ping_interval_s)
		u->idle_timeout_s = u->ping_interval_s + 1;
	u->resolve_timeout_s = cfg->resolve_timeout_s ? cfg->resolve_timeout_s : 20;
	u->connect_timeout_s = cfg->connect_timeout_s ? cfg->connect_timeout_s :
	    UPSTREAM_DEFAULT_CONNECT_TIMEOUT_S;
	u->max_frame = cfg->max_frame ? cfg->max_frame : (size_t)64 << 20;
	u->gai = cfg->getaddrinfo_hook ? cfg->getaddrinfo_hook : getaddrinfo;
	u->policy.secs_since_valid_ping = (uint16_t)(u->ping_interval_s > 65535 ? 65535 : u->ping_interval_s);
	u->policy.secs_since_valid_hangup = (uint16_t)(u->idle_timeout_s > 65535 ? 65535 : u->idle_timeout_s);
	u->policy.conceal_count = LWS_RETRY_CONCEAL_ALWAYS;
	u->state = UPSTREAM_DISCONNECTED;

	r = -ENOMEM;
	u->url = strdup(cfg->url);
	u->app_id = strdup(cfg->app_id);
	u->core_version = strdup(cfg->core_version ? cfg->core_version : "v1.0.67");
	if (!u->url || !u->app_id || !u->core_version)
		goto fail;
	if (cfg->refresh_token && *cfg->refresh_token && !(u->token = strdup(cfg->refresh_token)))
		goto fail;
	r = upstream_parse_url(u, cfg->url);
	if (r < 0)
		goto fail;
	if (cfg->ca_file && *cfg->ca_file) {
		struct lws_context_creation_info info;

		if (access(cfg->ca_file, R_OK) < 0) {
			r = -errno;
			goto fail;
		}
		u->ca_file = strdup(cfg->ca_file);
		if (!u->ca_file) {
			r = -ENOMEM;
			goto fail;
		}
		memset(&info, 0, sizeof(info));
		info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
		/* lws keeps this pointer, not a copy, and logs it after lws_vhost_destroy
		 * (the vhost goes at the next service or context destroy): a literal */
		info.vhost_name = "upstream-ca";
		info.protocols = upstream_vhost_protocols;
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
		r = tls_client_ctx_new(u->ca_file, &u->own_tls);
		if (r < 0)
			goto fail;
		info.provided_client_ssl_ctx = u->own_tls;
		info.connect_timeout_secs = (unsigned)UPSTREAM_LWS_TIMEOUT_S(u->connect_timeout_s);
		u->client_vh = lws_create_vhost(ctx, &info);
		if (!u->client_vh) {
			r = -EIO;
			goto fail;
		}
		u->own_vhost = true;
	}
	*ret = u;
	return 0;
fail:
	upstream_free(u);
	return r;
}

int
upstream_start(struct upstream *u)
{
	if (u->stopping || u->state == UPSTREAM_STOPPED)
		return -ESHUTDOWN;
	if (u->started)
		return -EALREADY;
	u->started = true;
	upstream_netlink_open(u);
	upstream_attempt(u);
	return 0;
}

int
upstream_send(struct upstream *u, const cJSON *msg)
{
	_cleanup_free_ char *text = NULL;
	const char *op, *ceid;
	int r;

	if (!cJSON_IsObject(msg))
		return -EINVAL;
	if (!u->wsi || (u->state != UPSTREAM_OPENED && u->state != UPSTREAM_AUTHENTICATED) ||
	    u->close_requested)
		return -ENOTCONN;
	text = cJSON_PrintUnformatted(msg);
	if (!text)
		return -ENOMEM;
	op = json_get_string(msg, "op");
	ceid = json_get_string(msg, "client-event-id");
	if (op && ceid && strcmp(op, "transact") == 0) {
		struct upstream_pending_tx *p;
		size_t l = strlen(ceid);

		p = malloc(sizeof(*p) + l + 1);
		if (!p)
			return -ENOMEM;
		p->next = NULL;
		p->sent_us = mono_us();
		memcpy(p->ceid, ceid, l + 1);
		if (u->ptx_head == NULL)
			u->ptx_tailp = &u->ptx_head;
		*u->ptx_tailp = p;
		u->ptx_tailp = &p->next;
	}
	r = upstream_queue_text(u, text);
	if (r < 0)
		return r;
	upstream_watch_arm(u);
	return 0;
}

size_t
upstream_queued_bytes(const struct upstream *u)
{
	return u->txq_bytes;
}

void
upstream_pause_rx(struct upstream *u, bool pause)
{
	if (u->wsi && u->ws_open)
		lws_rx_flow_control(u->wsi, pause ? 0 : 1);
}

int
upstream_set_token(struct upstream *u, const char *refresh_token)
{
	char *c = NULL;

	if (refresh_token && *refresh_token && !(c = strdup(refresh_token)))
		return -ENOMEM;
	if (u->token)
		explicit_bzero(u->token, strlen(u->token));
	free(u->token);
	u->token = c;
	return 0;
}

void
upstream_reconnect_now(struct upstream *u)
{
	if (u->stopping || !u->started || u->state == UPSTREAM_STOPPED)
		return;
	upstream_log(u, LOG_NOTICE, "upstream %s: reconnecting now (new credentials or "
	    "configuration)", u->host);
	upstream_attempt(u);
}

void
upstream_close(struct upstream *u, void (*done)(void *ud), void *ud)
{
	bool open = u->wsi && (u->state == UPSTREAM_OPENED || u->state == UPSTREAM_AUTHENTICATED);

	u->close_done = done;
	u->close_ud = ud;
	if (u->stopping)
		return;
	u->stopping = true;
	lws_sul_cancel(&u->sul_retry);
	lws_sul_cancel(&u->sul_connect_to);
	lws_sul_cancel(&u->sul_watch);
	u->retry_at = 0;
	upstream_abandon_resolver(u, false);
	if (open) {
		u->close_requested = true;
		upstream_txq_clear(u);
		lws_callback_on_writable(u->wsi);
		lws_sul_schedule(u->ctx, 0, &u->sul_close, upstream_close_finish_cb,
		    UPSTREAM_CLOSE_WAIT_US);
		return;
	}
	upstream_abandon_wsi(u, false);
	lws_sul_schedule(u->ctx, 0, &u->sul_close, upstream_close_finish_cb, 1);
}

void
upstream_free(struct upstream *u)
{
	if (!u)
		return;
	u->stopping = true;
	lws_sul_cancel(&u->sul_retry);
	lws_sul_cancel(&u->sul_close);
	lws_sul_cancel(&u->sul_resolve_to);
	upstream_reset_connection(u, true);
	if (u->netlink.wsi) {
		struct lws *w = u->netlink.wsi;

		u->netlink.wsi = NULL;
		lws_set_opaque_user_data(w, NULL);
		lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	}
	if (u->own_vhost && u->client_vh)
		lws_vhost_destroy(u->client_vh);
	/* The vhost makes no connection once destroyed; each SSL it made holds its own
	 * reference to the context. */
	SSL_CTX_free(u->own_tls);
	if (u->token)
		explicit_bzero(u->token, strlen(u->token));
	for (size_t i = 0; i < u->n_unknown_names; i++)
		free(u->unknown_names[i]);
	free(u->token);
	free(u->url);
	free(u->app_id);
	free(u->ca_file);
	free(u->core_version);
	free(u->host);
	free(u->address);
	free(u->path);
	free(u->origin);
	free(u->last_error);
	free(u->user_id);
	free(u->app_status);
	free(u);
}

enum upstream_state
upstream_get_state(const struct upstream *u)
{
	return u->state;
}

const char *
upstream_app_status(const struct upstream *u)
{
	return u->app_status;
}

static bool
upstream_add_time(cJSON *o, const char *key, int64_t ms)
{
	if (!ms)
		return cJSON_AddNullToObject(o, key) != NULL;
	return cJSON_AddNumberToObject(o, key, (double)ms) != NULL;
}

static bool
upstream_add_str(cJSON *o, const char *key, const char *s)
{
	if (!s)
		return cJSON_AddNullToObject(o, key) != NULL;
	return cJSON_AddStringToObject(o, key, s) != NULL;
}

cJSON *
upstream_status_json(const struct upstream *u)
{
	_cleanup_json_ cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	/* url never holds the token: tokens travel only in init */
	if (!upstream_add_str(o, "state", upstream_state_name(u->state)) ||
	    !upstream_add_str(o, "last-error", u->last_error) ||
	    !upstream_add_str(o, "server", u->url) ||
	    !upstream_add_str(o, "app-id", u->app_id) ||
	    !upstream_add_str(o, "session-id", u->session_id) ||
	    !upstream_add_str(o, "app-status", u->app_status) ||
	    !upstream_add_str(o, "user-id", u->user_id) ||
	    !upstream_add_time(o, "connected-at", u->connected_at) ||
	    !upstream_add_time(o, "authenticated-at", u->authenticated_at) ||
	    !upstream_add_time(o, "last-message-at", u->last_message_at) ||
	    !upstream_add_time(o, "retry-at", u->retry_at) ||
	    !cJSON_AddNumberToObject(o, "attempts", u->attempts) ||
	    !cJSON_AddNumberToObject(o, "unknown-ops", u->unknown_ops) ||
	    !cJSON_AddNumberToObject(o, "malformed-frames", u->malformed_frames) ||
	    !cJSON_AddNumberToObject(o, "queued-bytes", (double)u->txq_bytes) ||
	    !cJSON_AddBoolToObject(o, "guest", u->token == NULL))
		return NULL;
	return TAKE_PTR(o);
}
