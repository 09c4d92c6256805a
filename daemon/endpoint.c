/* endpoint.c: the Instant endpoint, a protocol adapter outside the core:
 * accepts WebSocket connections (Unix socket, optional loopback TCP), checks
 * who connects, and turns the Instant protocol into local-protocol requests
 * on a virtual ipc conn, and the core's replies back into Instant messages. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "daemon/endpoint.h"
#include "daemon/log.h"
#include "daemon/peeruid.h"
#include "store/util.h"

#define EP_PROTOCOL_WS		"instant-ws"
#define EP_PROTOCOL_LISTEN	"instant-listen"
#define EP_PATH			"/runtime/session"
/* Largest frame accepted from an app, and most output queued to one. */
#define EP_MAX_IN		((size_t)64 << 20)
#define EP_MAX_OUT		((size_t)256 << 20)
#define EP_EMFILE_PAUSE_US	(1000 * 1000)

struct ep_buf {
	TAILQ_ENTRY(ep_buf) link;
	size_t len;
	unsigned char data[];	/* LWS_PRE bytes of headroom, then len bytes */
};
TAILQ_HEAD(ep_buf_list, ep_buf);

/* A transact sent to the core and not yet durable: the tx-id its
 * transact-ok will carry was taken when it was delivered. */
struct ep_tx {
	LIST_ENTRY(ep_tx) link;
	char *ceid;		/* owned */
	int64_t tx_id;
};

/* A subscription of the app, by the client-event-id of its add-query. */
struct ep_sub {
	LIST_ENTRY(ep_sub) link;
	char *ceid;		/* owned */
	char *key;		/* owned: canonical q */
	cJSON *q;		/* owned: q exactly as the app sent it (it hashes it) */
};

struct endpoint;

struct ep_conn {
	TAILQ_ENTRY(ep_conn) link;	/* in endpoint.conns */
	struct endpoint *e;		/* borrowed */
	struct lws *wsi;		/* owned by lws */
	struct ipc_conn *ic;		/* owned: the virtual conn, NULL before the upgrade */
	uid_t uid;
	char sid[37];			/* the session-id the app is told */
	bool inited;			/* init delivered */
	bool core_closed;		/* the core closed ic: deliver nothing more */
	unsigned unacked;		/* transacts delivered, not yet durable */
	LIST_HEAD(, ep_tx) txs;
	LIST_HEAD(, ep_sub) subs;
	struct ep_buf_list out;		/* frames to write */
	struct ep_buf_list held;	/* results held until the writes before them are durable */
	size_t out_bytes;
	uint64_t attrs_hash;		/* of the attrs the app last got */
	cJSON *pending_init;		/* owned: a local init-ok waiting for the server's attrs */
	bool attrs_asked;		/* export-cache sent for them */
	bool init_token;		/* the app's init brought a refresh token */
	bool close_when_sent;		/* refused: close once the error is written */
	char *rx;			/* owned: the frame being reassembled */
	size_t rx_len, rx_cap;
};
TAILQ_HEAD(ep_conn_list, ep_conn);

struct ep_listener {
	struct endpoint *e;		/* borrowed */
	struct lws *wsi;		/* owned by lws */
	bool tcp;
	bool paused;
	lws_sorted_usec_list_t sul_resume;
	char name[128];			/* for the log */
};

struct endpoint {
	struct lws_context *ctx;	/* borrowed */
	struct lws_vhost *vh;		/* owned by ctx */
	struct ipc_server *ipc;		/* borrowed */
	struct ep_listener unix_l, tcp_l;
	char **origins;			/* owned */
	size_t n_origins;
	struct ep_conn_list conns;
	/* The tx-ids and processed-tx-ids the apps see. One sequence for the
	 * daemon, started from the clock so that it keeps growing across
	 * restarts (an app keeps its confirmed writes while it reconnects). */
	int64_t txseq;
};

static uint64_t
ep_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* ---- output ---- */

static int
ep_queue_text(struct ep_conn *c, struct ep_buf_list *list, const char *text, size_t len)
{
	struct ep_buf *b;

	if (c->out_bytes + len > EP_MAX_OUT) {
		log_warn("instant endpoint: an app does not read its results; closing it");
		if (c->wsi)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return -ENOBUFS;
	}
	b = malloc(sizeof(*b) + LWS_PRE + len);
	if (b == NULL)
		return -ENOMEM;
	b->len = len;
	memcpy(b->data + LWS_PRE, text, len);
	TAILQ_INSERT_TAIL(list, b, link);
	c->out_bytes += len;
	if (list == &c->out)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* Queue msg (adding the trace-id every server message has) to list. */
static int
ep_queue(struct ep_conn *c, struct ep_buf_list *list, cJSON *msg)
{
	_cleanup_free_ char *text = NULL;

	if (msg == NULL)
		return -ENOMEM;
	if (!cJSON_HasObjectItem(msg, "trace-id"))
		cJSON_AddNullToObject(msg, "trace-id");
	text = json_print(msg);
	if (text == NULL)
		return -ENOMEM;
	return ep_queue_text(c, list, text, strlen(text));
}

static void
ep_send(struct ep_conn *c, cJSON *msg)
{
	(void)ep_queue(c, &c->out, msg);
	cJSON_Delete(msg);
}

/* Results wait while a write of this app is not yet durable: they already
 * show it, and its transact-ok must come first, so that the app drops its
 * own copy of the write instead of layering it on a result that has it. */
static void
ep_send_result(struct ep_conn *c, cJSON *msg)
{
	(void)ep_queue(c, c->unacked > 0 ? &c->held : &c->out, msg);
	cJSON_Delete(msg);
}

static void
ep_flush_held(struct ep_conn *c)
{
	struct ep_buf *b;

	if (c->unacked > 0 || TAILQ_EMPTY(&c->held))
		return;
	while ((b = TAILQ_FIRST(&c->held)) != NULL) {
		TAILQ_REMOVE(&c->held, b, link);
		TAILQ_INSERT_TAIL(&c->out, b, link);
	}
	lws_callback_on_writable(c->wsi);
}

static cJSON *
ep_msg(const char *op, const char *ceid)
{
	cJSON *m = cJSON_CreateObject();

	if (m == NULL)
		return NULL;
	cJSON_AddStringToObject(m, "op", op);
	if (ceid != NULL)
		cJSON_AddStringToObject(m, "client-event-id", ceid);
	return m;
}

/* An error as the server sends it: every field present. hint is taken. */
static void
ep_send_error(struct ep_conn *c, const char *ceid, int status, const char *type,
    const char *message, cJSON *hint, const char *orig_op, const cJSON *orig_q)
{
	cJSON *m = ep_msg("error", NULL), *orig = cJSON_CreateObject();

	if (m == NULL || orig == NULL) {
		cJSON_Delete(m);
		cJSON_Delete(orig);
		cJSON_Delete(hint);
		return;
	}
	cJSON_AddNumberToObject(m, "status", status);
	if (ceid)
		cJSON_AddStringToObject(m, "client-event-id", ceid);
	else
		cJSON_AddNullToObject(m, "client-event-id");
	if (orig_op)
		cJSON_AddStringToObject(orig, "op", orig_op);
	if (orig_q)
		cJSON_AddItemToObject(orig, "q", cJSON_Duplicate(orig_q, 1));
	if (ceid)
		cJSON_AddStringToObject(orig, "client-event-id", ceid);
	cJSON_AddItemToObject(m, "original-event", orig);
	if (type)
		cJSON_AddStringToObject(m, "type", type);
	else
		cJSON_AddNullToObject(m, "type");
	cJSON_AddStringToObject(m, "message", message ? message : "error");
	cJSON_AddItemToObject(m, "hint", hint ? hint : cJSON_CreateObject());
	ep_send(c, m);
}

/* ---- bookkeeping ---- */

static struct ep_tx *
ep_tx_find(struct ep_conn *c, const char *ceid)
{
	struct ep_tx *t;

	LIST_FOREACH(t, &c->txs, link)
		if (ceid && strcmp(t->ceid, ceid) == 0)
			return t;
	return NULL;
}

static void
ep_tx_done(struct ep_conn *c, struct ep_tx *t)
{
	LIST_REMOVE(t, link);
	free(t->ceid);
	free(t);
	if (c->unacked > 0)
		c->unacked--;
	ep_flush_held(c);
}

static struct ep_sub *
ep_sub_by_ceid(struct ep_conn *c, const char *ceid)
{
	struct ep_sub *s;

	LIST_FOREACH(s, &c->subs, link)
		if (ceid && strcmp(s->ceid, ceid) == 0)
			return s;
	return NULL;
}

static struct ep_sub *
ep_sub_by_key(struct ep_conn *c, const char *key)
{
	struct ep_sub *s;

	LIST_FOREACH(s, &c->subs, link)
		if (key && strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static void
ep_sub_free(struct ep_sub *s)
{
	LIST_REMOVE(s, link);
	free(s->ceid);
	free(s->key);
	cJSON_Delete(s->q);
	free(s);
}

static void
ep_deliver(struct ep_conn *c, cJSON *req)
{
	int r;

	if (req == NULL || c->ic == NULL || c->core_closed) {
		cJSON_Delete(req);
		return;
	}
	r = ipc_conn_deliver(c->ic, req);
	if (r < 0)
		log_debug("instant endpoint: delivering a request failed: %s", strerror(-r));
	cJSON_Delete(req);
}

/* Copy the named members of from into to, when present. */
static void
ep_copy(cJSON *to, const cJSON *from, const char *const *names)
{
	for (; *names; names++) {
		const cJSON *v = json_get(from, *names);

		if (v)
			cJSON_AddItemToObject(to, *names, cJSON_Duplicate(v, 1));
	}
}

/* ---- app → core ---- */

static void
app_init(struct ep_conn *c, const cJSON *msg, const char *ceid)
{
	static const char *const fields[] = { "app-id", "refresh-token", NULL };
	cJSON *req;

	if (c->inited) {
		ep_send_error(c, ceid, 400, "validation-failed",
		    "Validation failed for init: `init` has already run for this session.", NULL, "init", NULL);
		return;
	}
	if (!json_get_string(msg, "app-id")) {
		ep_send_error(c, ceid, 400, "param-missing", "Missing parameter: [\"app-id\"]",
		    cJSON_Parse("{\"in\":[\"app-id\"]}"), "init", NULL);
		return;
	}
	c->inited = true;
	req = ep_msg("init", ceid);
	if (req == NULL)
		return;
	ep_copy(req, msg, fields);
	c->init_token = json_get_string(msg, "refresh-token") != NULL;
	cJSON_AddStringToObject(req, "client-name", "instant-endpoint");
	cJSON_AddTrueToObject(req, "with-attrs");
	/* Its token chooses the profile: an app reads only what its own
	 * credentials fetched, never another user's mirror. */
	cJSON_AddTrueToObject(req, "token-profile");
	ep_deliver(c, req);
}

static void
app_add_query(struct ep_conn *c, const cJSON *msg, const char *ceid)
{
	const cJSON *q = json_get(msg, "q");
	_cleanup_free_ char *key = NULL;
	struct ep_sub *s;
	cJSON *req, *m;

	if (!cJSON_IsObject(q)) {
		ep_send_error(c, ceid, 400, "validation-failed",
		    "Validation failed for add-query: Query can not be null.", NULL, "add-query", q);
		return;
	}
	key = json_canonical(q);
	if (key == NULL)
		return;
	if (ep_sub_by_key(c, key) != NULL) {
		m = ep_msg("add-query-exists", ceid);
		if (m)
			cJSON_AddItemToObject(m, "q", cJSON_Duplicate(q, 1));
		ep_send(c, m);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->ceid = strdup(ceid ? ceid : "")) == NULL ||
	    (s->q = cJSON_Duplicate(q, 1)) == NULL) {
		if (s)
			free(s->ceid);
		free(s);
		return;
	}
	s->key = TAKE_PTR(key);
	LIST_INSERT_HEAD(&c->subs, s, link);
	req = ep_msg("add-query", s->ceid);
	if (req == NULL)
		return;
	cJSON_AddItemToObject(req, "q", cJSON_Duplicate(q, 1));
	cJSON_AddStringToObject(req, "format", "triples");
	ep_deliver(c, req);
}

static void
app_remove_query(struct ep_conn *c, const cJSON *msg, const char *ceid)
{
	const cJSON *q = json_get(msg, "q");
	_cleanup_free_ char *key = q ? json_canonical(q) : NULL;
	struct ep_sub *s = ep_sub_by_key(c, key);
	cJSON *req, *m;

	if (s == NULL) {	/* the server answers ok for a query it does not have */
		m = ep_msg("remove-query-ok", ceid);
		if (m && q)
			cJSON_AddItemToObject(m, "q", cJSON_Duplicate(q, 1));
		ep_send(c, m);
		return;
	}
	req = ep_msg("remove-query", NULL);
	if (req) {
		cJSON_AddStringToObject(req, "query-event-id", s->ceid);
		if (ceid)
			cJSON_AddStringToObject(req, "client-event-id", ceid);
	}
	ep_sub_free(s);
	ep_deliver(c, req);
}

static void
app_transact(struct ep_conn *c, const cJSON *msg, const char *ceid)
{
	const cJSON *steps = json_get(msg, "tx-steps");
	struct ep_tx *t;
	cJSON *req;

	if (!cJSON_IsArray(steps) || ceid == NULL) {
		ep_send_error(c, ceid, 400, "validation-failed",
		    "Validation failed for tx-steps: expected an array", NULL, "transact", NULL);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->ceid = strdup(ceid)) == NULL) {
		free(t);
		return;
	}
	/* Every result computed from now on shows this write (the core layers it
	 * at once), so its tx-id is the sequence's next value. */
	t->tx_id = ++c->e->txseq;
	LIST_INSERT_HEAD(&c->txs, t, link);
	c->unacked++;
	req = ep_msg("transact", ceid);
	if (req == NULL)
		return;
	cJSON_AddItemToObject(req, "tx-steps", cJSON_Duplicate(steps, 1));
	ep_deliver(c, req);
}

/* join-room, leave-room, set-presence, client-broadcast: the local protocol
 * takes the same fields (each connection is its own peer there too). */
static void
app_room(struct ep_conn *c, const cJSON *msg, const char *ceid)
{
	static const char *const fields[] = { "room-id", "room-type", "data", "topic", NULL };
	cJSON *req = ep_msg(json_get_string(msg, "op"), ceid);

	if (req == NULL)
		return;
	ep_copy(req, msg, fields);
	ep_deliver(c, req);
}

static const struct {
	const char *op;
	void (*fn)(struct ep_conn *c, const cJSON *msg, const char *ceid);
} app_ops[] = {
	{ "init", app_init },
	{ "add-query", app_add_query },
	{ "remove-query", app_remove_query },
	{ "transact", app_transact },
	{ "join-room", app_room },
	{ "leave-room", app_room },
	{ "set-presence", app_room },
	{ "client-broadcast", app_room },
};

static void
ep_handle_frame(struct ep_conn *c, const char *text, size_t len)
{
	_cleanup_json_ cJSON *msg = cJSON_ParseWithLength(text, len);
	const char *op = json_get_string(msg, "op");
	const char *ceid = json_get_string(msg, "client-event-id");

	if (msg == NULL)
		return;		/* the server says nothing to an unparseable frame */
	for (size_t i = 0; op != NULL && i < ELEMENTSOF(app_ops); i++)
		if (strcmp(op, app_ops[i].op) == 0) {
			if (!c->inited && strcmp(op, "init") != 0) {
				ep_send_error(c, ceid, 400, "validation-failed",
				    "Validation failed for init: `init` has not run for this session.",
				    NULL, op, json_get(msg, "q"));
				return;
			}
			app_ops[i].fn(c, msg, ceid);
			return;
		}
	ep_send_error(c, ceid, 400, "param-malformed", "Invalid op", NULL, op, NULL);
}

/* ---- core → app ---- */

static const char *
ep_app_status(const char *s)
{
	return s && (strcmp(s, "read-only") == 0 || strcmp(s, "disabled") == 0) ? s : "active";
}

#define EP_CEID_WATCH	"instant-endpoint-watch"
#define EP_CEID_ATTRS	"instant-endpoint-attrs"

/* States in which the first connection of a profile may still bring attrs. */
static bool
ep_state_connecting(const char *st)
{
	static const char *const names[] = { "disconnected", "resolving", "connecting", "opened", NULL };

	for (size_t i = 0; st && names[i]; i++)
		if (strcmp(st, names[i]) == 0)
			return true;
	return false;
}

static void core_send_init_ok(struct ep_conn *c, cJSON *msg);

/* Whether the app's init is refused in state (the profile's, once it is
 * known whether its session comes up), and if so tell the app: a token the
 * server refused, as the server says it (the app signs out), or a token
 * the daemon never saw accepted while the server cannot say (its profile
 * has no mirrored attrs: it never had a session). The latter closes the
 * connection, so that the app tries again later. */
static bool
ep_refuse_init(struct ep_conn *c, const cJSON *init_ok, const char *state)
{
	const char *ceid = json_get_string(init_ok, "client-event-id");

	if (!c->init_token || state == NULL)
		return false;
	if (strcmp(state, "signed-out") == 0 || strcmp(state, "auth-failed") == 0) {
		ep_send_error(c, ceid, 400, "record-not-found", "Record not found: app-user",
		    cJSON_Parse("{\"record-type\":\"app-user\"}"), "init", NULL);
		return true;
	}
	if (cJSON_GetArraySize(json_get(init_ok, "attrs")) > 0 || strcmp(state, "authenticated") == 0 ||
	    ep_state_connecting(state))
		return false;
	ep_send_error(c, ceid, 503, NULL, "instantd cannot verify this refresh token now: it has "
	    "not seen it accepted, and the server is not reachable", NULL, "init", NULL);
	c->close_when_sent = true;
	return true;
}

/* A profile with no attrs in its mirror (never synced) is answered once
 * the server's attrs are in, or once the daemon knows the server is away:
 * an app given no attrs invents its own, which the server then refuses. */
static void
core_init_ok(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	const cJSON *st = json_get(msg, "status");
	cJSON *req;

	if (ep_refuse_init(c, msg, json_get_string(st, "state")))
		return;
	if (cJSON_GetArraySize(json_get(msg, "attrs")) == 0 &&
	    ep_state_connecting(json_get_string(st, "state"))) {
		c->pending_init = cJSON_Duplicate(msg, 1);
		req = ep_msg("watch-status", EP_CEID_WATCH);
		if (c->pending_init != NULL && req != NULL) {
			ep_deliver(c, req);
			return;
		}
		cJSON_Delete(req);
	}
	core_send_init_ok(c, msg);
}

/* Status while an init-ok waits: once the session is up (its session-id is
 * set with the attrs) or has failed, fetch the attrs and answer. */
static void
core_status(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	const cJSON *st = json_get(msg, "status");
	const char *state = json_get_string(st, "state");
	cJSON *req;

	if (c->pending_init == NULL || c->attrs_asked || state == NULL)
		return;
	if (ep_state_connecting(state) ||
	    (strcmp(state, "authenticated") == 0 && !json_get_string(st, "session-id")))
		return;
	c->attrs_asked = true;	/* the replies below come back here */
	req = ep_msg("watch-status", EP_CEID_WATCH);
	if (req)
		cJSON_AddFalseToObject(req, "enabled");
	ep_deliver(c, req);
	if (ep_refuse_init(c, c->pending_init, state)) {
		cJSON_Delete(c->pending_init);
		c->pending_init = NULL;
		return;
	}
	/* The init-ok tells the app the user this session has, not the none of before it. */
	cJSON_ReplaceItemInObjectCaseSensitive(c->pending_init, "status", cJSON_Duplicate(st, 1));
	req = ep_msg("export-cache", EP_CEID_ATTRS);
	if (req)
		cJSON_AddStringToObject(req, "profile", json_get_string(st, "profile") ?
		    json_get_string(st, "profile") : "");
	ep_deliver(c, req);
}

static void
core_cache(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	cJSON *init = c->pending_init;

	if (init == NULL || ceid == NULL || strcmp(ceid, EP_CEID_ATTRS) != 0)
		return;
	c->pending_init = NULL;
	if (cJSON_IsArray(json_get(msg, "attrs")))
		cJSON_ReplaceItemInObjectCaseSensitive(init, "attrs",
		    cJSON_DetachItemFromObjectCaseSensitive(msg, "attrs"));
	core_send_init_ok(c, init);
	cJSON_Delete(init);
}

static void
core_send_init_ok(struct ep_conn *c, cJSON *msg)
{
	const char *ceid = json_get_string(msg, "client-event-id");
	const cJSON *st = json_get(msg, "status");
	cJSON *m = ep_msg("init-ok", ceid), *auth, *app, *attrs;
	_cleanup_free_ char *attrs_text = NULL;

	if (m == NULL)
		return;
	cJSON_AddStringToObject(m, "session-id", c->sid);
	attrs = cJSON_DetachItemFromObjectCaseSensitive(msg, "attrs");
	if (!cJSON_IsArray(attrs)) {
		cJSON_Delete(attrs);
		attrs = cJSON_CreateArray();
	}
	attrs_text = json_print(attrs);
	c->attrs_hash = ep_hash(attrs_text);
	cJSON_AddItemToObject(m, "attrs", attrs);
	auth = cJSON_AddObjectToObject(m, "auth");
	app = cJSON_AddObjectToObject(auth, "app");
	if (json_get_string(st, "app-id"))
		cJSON_AddStringToObject(app, "id", json_get_string(st, "app-id"));
	if (cJSON_IsObject(json_get(st, "user")))
		cJSON_AddItemToObject(auth, "user", cJSON_Duplicate(json_get(st, "user"), 1));
	else
		cJSON_AddNullToObject(auth, "user");
	cJSON_AddFalseToObject(auth, "admin?");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "app-status"), "status",
	    ep_app_status(json_get_string(st, "app-status")));
	ep_send(c, m);
}

/* [{"data":{"datalog-result":{"join-rows":[triples]},"page-info"?},"child-nodes":[]}]:
 * one node holding every triple is all @instantdb/core reads (extractTriples). */
static cJSON *
ep_result_tree(cJSON *triples, cJSON *page_info)
{
	cJSON *tree = cJSON_CreateArray(), *node = cJSON_CreateObject(), *data, *dr, *rows;

	if (tree == NULL || node == NULL) {
		cJSON_Delete(tree);
		cJSON_Delete(node);
		cJSON_Delete(triples);
		cJSON_Delete(page_info);
		return NULL;
	}
	cJSON_AddItemToArray(tree, node);
	data = cJSON_AddObjectToObject(node, "data");
	dr = cJSON_AddObjectToObject(data, "datalog-result");
	rows = cJSON_AddArrayToObject(dr, "join-rows");
	cJSON_AddItemToArray(rows, triples ? triples : cJSON_CreateArray());
	if (page_info)
		cJSON_AddItemToObject(data, "page-info", page_info);
	cJSON_AddArrayToObject(node, "child-nodes");
	return tree;
}

/* The core's triples result as add-query-ok or refresh-ok. Attrs that
 * changed go first (or with the refresh), since the app's store drops
 * triples of attrs it does not know. */
static void
core_result(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	struct ep_sub *s = ep_sub_by_ceid(c, ceid);
	bool first = strcmp(json_get_string(msg, "op"), "add-query-ok") == 0;
	cJSON *attrs = cJSON_DetachItemFromObjectCaseSensitive(msg, "attrs");
	cJSON *tree, *m;

	if (s == NULL) {	/* removed meanwhile */
		cJSON_Delete(attrs);
		return;
	}
	if (attrs) {
		_cleanup_free_ char *t = json_print(attrs);
		uint64_t h = ep_hash(t);

		if (h == c->attrs_hash) {
			cJSON_Delete(attrs);
			attrs = NULL;
		} else
			c->attrs_hash = h;
	}
	tree = ep_result_tree(cJSON_DetachItemFromObjectCaseSensitive(msg, "triples"),
	    cJSON_DetachItemFromObjectCaseSensitive(msg, "page-info"));
	if (tree == NULL) {
		cJSON_Delete(attrs);
		return;
	}
	if (first) {
		if (attrs) {
			m = ep_msg("refresh-ok", NULL);
			if (m) {
				cJSON_AddItemToObject(m, "attrs", attrs);
				cJSON_AddArrayToObject(m, "computations");
			} else
				cJSON_Delete(attrs);
			ep_send_result(c, m);
		}
		m = ep_msg("add-query-ok", s->ceid);
		if (m == NULL) {
			cJSON_Delete(tree);
			return;
		}
		cJSON_AddItemToObject(m, "q", cJSON_Duplicate(s->q, 1));
		cJSON_AddItemToObject(m, "result", tree);
		cJSON_AddNullToObject(m, "result-meta");
		cJSON_AddNumberToObject(m, "processed-tx-id", (double)c->e->txseq);
	} else {
		cJSON *comps, *comp;

		m = ep_msg("refresh-ok", NULL);
		if (m == NULL) {
			cJSON_Delete(tree);
			cJSON_Delete(attrs);
			return;
		}
		cJSON_AddNumberToObject(m, "processed-tx-id", (double)c->e->txseq);
		if (attrs)
			cJSON_AddItemToObject(m, "attrs", attrs);
		comps = cJSON_AddArrayToObject(m, "computations");
		comp = cJSON_CreateObject();
		cJSON_AddItemToArray(comps, comp);
		cJSON_AddItemToObject(comp, "instaql-query", cJSON_Duplicate(s->q, 1));
		cJSON_AddItemToObject(comp, "instaql-result", tree);
	}
	ep_send_result(c, m);
}

static void
core_transact_queued(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	struct ep_tx *t = ep_tx_find(c, ceid);
	cJSON *m;

	if (t == NULL)
		return;
	m = ep_msg("transact-ok", ceid);
	if (m)
		cJSON_AddNumberToObject(m, "tx-id", (double)t->tx_id);
	ep_send(c, m);
	ep_tx_done(c, t);
}

/* Local error types as the server would name them. */
static const struct {
	const char *local, *type;
	int status;
	const char *record_type;
} ep_error_map[] = {
	{ "permission-denied", "permission-denied", 400, NULL },
	{ "invalid-query", "validation-failed", 400, NULL },
	{ "invalid-transaction", "validation-failed", 400, NULL },
	{ "invalid-request", "validation-failed", 400, NULL },
	{ "app-not-found", "record-not-found", 400, "app" },
	{ "auth-failed", "record-not-found", 400, "app-user" },
	{ "rate-limited", "rate-limited", 400, NULL },
	{ "app-read-only", "app-read-only", 400, NULL },
	{ "too-many-subscriptions", "rate-limited", 400, NULL },
};

static void
core_error(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	const char *type = json_get_string(msg, "type"), *stype = json_get_string(msg, "server-type");
	const char *out_type = NULL, *rec = NULL, *orig_op = NULL;
	const cJSON *orig_q = NULL;
	struct ep_tx *t = ep_tx_find(c, ceid);
	struct ep_sub *s = ep_sub_by_ceid(c, ceid);
	cJSON *hint = cJSON_DetachItemFromObjectCaseSensitive(msg, "hint");
	int status = 500;

	if (ceid && (strcmp(ceid, EP_CEID_ATTRS) == 0 || strcmp(ceid, EP_CEID_WATCH) == 0)) {
		cJSON *init = c->pending_init;

		cJSON_Delete(hint);
		c->pending_init = NULL;
		if (init)
			core_send_init_ok(c, init);
		cJSON_Delete(init);
		return;
	}
	/* A write the server rejects after it was durable was already
	 * acknowledged: its rollback shows in the results, and instantctl
	 * mutations lists it. Notices about queued writes are not errors here. */
	if (json_get(msg, "mutation-id") != NULL) {
		cJSON_Delete(hint);
		return;
	}
	for (size_t i = 0; type && i < ELEMENTSOF(ep_error_map); i++)
		if (strcmp(type, ep_error_map[i].local) == 0) {
			out_type = ep_error_map[i].type;
			status = ep_error_map[i].status;
			rec = ep_error_map[i].record_type;
		}
	if (type && strcmp(type, "server-error") == 0 && stype) {
		out_type = stype;
		status = 400;
	}
	if (rec && !cJSON_IsObject(hint)) {
		cJSON_Delete(hint);
		hint = cJSON_CreateObject();
		if (hint)
			cJSON_AddStringToObject(hint, "record-type", rec);
	}
	if (t)
		orig_op = "transact";
	else if (s)
		orig_op = "add-query", orig_q = s->q;
	ep_send_error(c, ceid, status, out_type, json_get_string(msg, "message"), hint, orig_op, orig_q);
	if (t)
		ep_tx_done(c, t);
}

/* Replies about rooms: the server's names and fields. */
static void
core_room_reply(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	cJSON *m = ep_msg(json_get_string(msg, "op"), ceid);

	if (m && json_get_string(msg, "room-id"))
		cJSON_AddStringToObject(m, "room-id", json_get_string(msg, "room-id"));
	ep_send(c, m);
}

/* The local refresh-presence marks this connection's own peer with "self";
 * the app finds itself by its session-id, so that entry is renamed to it. */
static void
core_refresh_presence(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	cJSON *peers = cJSON_DetachItemFromObjectCaseSensitive(msg, "peers");
	cJSON *data = cJSON_CreateObject(), *p, *m;

	if (data == NULL) {
		cJSON_Delete(peers);
		return;
	}
	while (cJSON_IsObject(peers) && (p = peers->child) != NULL) {
		bool self = cJSON_IsTrue(json_get(p, "self"));
		char *name = strdup(self ? c->sid : p->string);

		p = cJSON_DetachItemViaPointer(peers, p);
		cJSON_DeleteItemFromObjectCaseSensitive(p, "self");
		if (self) {
			cJSON_DeleteItemFromObjectCaseSensitive(p, "peer-id");
			cJSON_AddStringToObject(p, "peer-id", c->sid);
		}
		if (name == NULL) {
			cJSON_Delete(p);
			continue;
		}
		cJSON_AddItemToObject(data, name, p);
		free(name);
	}
	cJSON_Delete(peers);
	m = ep_msg("refresh-presence", NULL);
	if (m == NULL) {
		cJSON_Delete(data);
		return;
	}
	if (json_get_string(msg, "room-id"))
		cJSON_AddStringToObject(m, "room-id", json_get_string(msg, "room-id"));
	cJSON_AddItemToObject(m, "data", data);
	ep_send(c, m);
}

static void
core_forward(struct ep_conn *c, cJSON *msg, const char *ceid)
{
	ep_send(c, cJSON_Duplicate(msg, 1));
}

static void
core_ignore(struct ep_conn *c, cJSON *msg, const char *ceid)
{
}

static const struct {
	const char *op;
	void (*fn)(struct ep_conn *c, cJSON *msg, const char *ceid);
} core_ops[] = {
	{ "init-ok", core_init_ok },
	{ "add-query-ok", core_result },
	{ "refresh-ok", core_result },
	{ "transact-queued", core_transact_queued },
	{ "transact-ok", core_ignore },		/* the app had its own at transact-queued */
	{ "error", core_error },
	{ "remove-query-ok", core_room_reply },
	{ "join-room-ok", core_room_reply },
	{ "leave-room-ok", core_room_reply },
	{ "set-presence-ok", core_room_reply },
	{ "client-broadcast-ok", core_room_reply },
	{ "refresh-presence", core_refresh_presence },
	{ "server-broadcast", core_forward },
	{ "status", core_status },
	{ "cache", core_cache },
};

/* Everything the core sends to the connection comes here, synchronously. */
static int
ep_sink(void *ud, const char *json, size_t len)
{
	struct ep_conn *c = ud;
	_cleanup_json_ cJSON *msg = NULL;
	const char *op;

	if (json == NULL) {	/* the core closed the conn (e.g. forget-profile) */
		c->core_closed = true;
		if (c->wsi)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return 0;
	}
	if (c->wsi == NULL)
		return -EPIPE;
	msg = cJSON_ParseWithLength(json, len);
	op = json_get_string(msg, "op");
	if (op == NULL)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(core_ops); i++)
		if (strcmp(op, core_ops[i].op) == 0) {
			core_ops[i].fn(c, msg, json_get_string(msg, "client-event-id"));
			return 0;
		}
	log_debug("instant endpoint: not relaying %s to the app", op);
	return 0;
}

/* ---- connections ---- */

static void
ep_conn_free(struct ep_conn *c)
{
	struct ep_buf *b;

	if (c == NULL)
		return;
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, NULL);
	c->wsi = NULL;
	ipc_conn_free_virtual(c->ic);
	c->ic = NULL;
	while (!LIST_EMPTY(&c->txs)) {
		struct ep_tx *t = LIST_FIRST(&c->txs);

		LIST_REMOVE(t, link);
		free(t->ceid);
		free(t);
	}
	while (!LIST_EMPTY(&c->subs))
		ep_sub_free(LIST_FIRST(&c->subs));
	while ((b = TAILQ_FIRST(&c->out)) != NULL) {
		TAILQ_REMOVE(&c->out, b, link);
		free(b);
	}
	while ((b = TAILQ_FIRST(&c->held)) != NULL) {
		TAILQ_REMOVE(&c->held, b, link);
		free(b);
	}
	TAILQ_REMOVE(&c->e->conns, c, link);
	cJSON_Delete(c->pending_init);
	free(c->rx);
	free(c);
}

static bool
ep_origin_allowed(struct endpoint *e, const char *origin)
{
	for (size_t i = 0; i < e->n_origins; i++)
		if (strcmp(e->origins[i], origin) == 0)
			return true;
	return false;
}

/* The upgrade request: the path must be the session's, and a browser's
 * Origin must be one the configuration lists. Nonzero refuses it. */
static int
ep_filter(struct lws *wsi)
{
	struct ep_conn *c = lws_get_opaque_user_data(wsi);
	char buf[512];
	int n;

	if (c == NULL)
		return 1;
	n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_GET_URI);
	if (n <= 0 || strcmp(buf, EP_PATH) != 0) {
		log_info("instant endpoint: refused an upgrade for path '%s' (only %s is served)",
		    n > 0 ? buf : "", EP_PATH);
		return 1;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) {
		n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_ORIGIN);
		if (n <= 0 || !ep_origin_allowed(c->e, buf)) {
			log_warn("instant endpoint: refused a connection with Origin '%s' (add it to "
			    "instant-allowed-origins to let that web page in)", n > 0 ? buf : "?");
			return 1;
		}
	}
	return 0;
}

static int
ep_established(struct lws *wsi)
{
	struct ep_conn *c = lws_get_opaque_user_data(wsi);
	int r;

	if (c == NULL)
		return -1;
	if (uuid_v4(c->sid) < 0)
		return -1;
	r = ipc_conn_new_virtual(c->e->ipc, ep_sink, c, c->uid, &c->ic);
	if (r < 0) {
		log_warn("instant endpoint: cannot serve a connection: %s", strerror(-r));
		c->ic = NULL;
		return -1;
	}
	return 0;
}

static int
ep_receive(struct lws *wsi, const void *in, size_t len)
{
	struct ep_conn *c = lws_get_opaque_user_data(wsi);

	if (c == NULL || c->core_closed)
		return -1;
	if (c->rx_len + len > EP_MAX_IN) {
		log_warn("instant endpoint: a frame larger than %zu bytes; closing the connection",
		    EP_MAX_IN);
		return -1;
	}
	if (c->rx_len + len + 1 > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 4096;
		char *nb;

		while (cap < c->rx_len + len + 1)
			cap *= 2;
		nb = realloc(c->rx, cap);
		if (nb == NULL)
			return -1;
		c->rx = nb;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
		return 0;
	len = c->rx_len;
	c->rx_len = 0;
	ep_handle_frame(c, c->rx, len);
	return c->core_closed ? -1 : 0;
}

static int
ep_writeable(struct lws *wsi)
{
	struct ep_conn *c = lws_get_opaque_user_data(wsi);
	struct ep_buf *b;
	int n;

	if (c == NULL)
		return -1;
	b = TAILQ_FIRST(&c->out);
	if (b == NULL)
		return 0;
	n = lws_write(wsi, b->data + LWS_PRE, b->len, LWS_WRITE_TEXT);
	if (n < 0 || (size_t)n < b->len)
		return -1;
	TAILQ_REMOVE(&c->out, b, link);
	c->out_bytes -= b->len;
	free(b);
	if (!TAILQ_EMPTY(&c->out))
		lws_callback_on_writable(wsi);
	else if (c->close_when_sent)
		return -1;
	return 0;
}

static int
ep_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return ep_filter(wsi);
	case LWS_CALLBACK_ESTABLISHED:
		return ep_established(wsi);
	case LWS_CALLBACK_RECEIVE:
		return ep_receive(wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ep_writeable(wsi);
	case LWS_CALLBACK_HTTP:
		/* Only the WebSocket upgrade is served. */
		(void)lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return -1;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		ep_conn_free(lws_get_opaque_user_data(wsi));
		return 0;
	default:
		return 0;
	}
}

/* ---- listeners ---- */

static void
ep_resume_accept(lws_sorted_usec_list_t *sul)
{
	struct ep_listener *l = lws_container_of(sul, struct ep_listener, sul_resume);

	l->paused = false;
	if (l->wsi)
		lws_rx_flow_control(l->wsi, 1);
}

/* Only the daemon's own user: SO_PEERCRED on the Unix socket, the kernel's
 * socket table for a loopback TCP peer. */
static int
ep_peer_uid(struct ep_listener *l, int fd, uid_t *ret_uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (l->tcp)
		return peeruid_tcp(fd, ret_uid);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	*ret_uid = cred.uid;
	return 0;
}

static void
ep_accept(struct ep_listener *l)
{
	struct endpoint *e = l->e;

	for (;;) {
		struct ep_conn *c;
		struct lws *wsi;
		uid_t uid = (uid_t)-1;
		int fd, r;

		fd = accept4(lws_get_socket_fd(l->wsi), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				l->paused = true;
				lws_rx_flow_control(l->wsi, 0);
				lws_sul_schedule(e->ctx, 0, &l->sul_resume, ep_resume_accept,
				    EP_EMFILE_PAUSE_US);
			}
			return;
		}
		r = ep_peer_uid(l, fd, &uid);
		if (r < 0 || uid != geteuid()) {
			if (r < 0)
				log_warn("instant endpoint: refused a connection on %s: its user is "
				    "unknown (%s)", l->name, strerror(-r));
			else
				log_warn("instant endpoint: refused a connection from uid %u on %s: "
				    "only uid %u may use it", (unsigned)uid, l->name,
				    (unsigned)geteuid());
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->e = e;
		c->uid = uid;
		LIST_INIT(&c->txs);
		LIST_INIT(&c->subs);
		TAILQ_INIT(&c->out);
		TAILQ_INIT(&c->held);
		TAILQ_INSERT_TAIL(&e->conns, c, link);
		/* lws reads the HTTP upgrade and calls ep_ws_cb; it closes fd
		 * itself when adoption fails. */
		wsi = lws_adopt_descriptor_vhost(e->vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP,
		    (lws_sock_file_fd_type){ .sockfd = fd }, EP_PROTOCOL_WS, NULL);
		if (wsi == NULL) {
			ep_conn_free(c);
			continue;
		}
		c->wsi = wsi;
		lws_set_opaque_user_data(wsi, c);
	}
}

static int
ep_listen_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct ep_listener *l = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (l != NULL && !l->paused)
			ep_accept(l);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (l != NULL)
			l->wsi = NULL;
		return 0;
	default:
		return 0;
	}
}

/* The WebSocket protocol first: lws serves an upgrade with no subprotocol
 * (the app sends none) with the vhost's first protocol. */
static const struct lws_protocols ep_protocols[] = {
	{ .name = EP_PROTOCOL_WS, .callback = ep_ws_cb, .rx_buffer_size = 65536 },
	{ .name = EP_PROTOCOL_LISTEN, .callback = ep_listen_cb },
	{ 0 },
};

static int
ep_listen_fd(struct endpoint *e, struct ep_listener *l, int fd)
{
	l->e = e;
	l->wsi = lws_adopt_descriptor_vhost(e->vh, LWS_ADOPT_RAW_FILE_DESC,
	    (lws_sock_file_fd_type){ .filefd = fd }, EP_PROTOCOL_LISTEN, NULL);
	if (l->wsi == NULL) {
		close(fd);
		return -EIO;
	}
	lws_set_opaque_user_data(l->wsi, l);
	return 0;
}

/* A listening TCP socket on a loopback address. */
static int
ep_open_tcp(const char *spec, int *ret_fd, char *name, size_t name_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	_cleanup_free_ char *host = NULL;
	struct addrinfo *ai = NULL;
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	const char *colon = strrchr(spec, ':');
	char hbuf[64], pbuf[16];
	int fd, one = 1, r;

	if (colon == NULL)
		return -EINVAL;
	host = spec[0] == '[' && colon > spec + 1 && colon[-1] == ']' ?
	    strndup(spec + 1, (size_t)(colon - spec - 2)) : strndup(spec, (size_t)(colon - spec));
	if (host == NULL)
		return -ENOMEM;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
		return -EINVAL;
	if (!((ai->ai_family == AF_INET &&
	    (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127) ||
	    (ai->ai_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr)))) {
		freeaddrinfo(ai);
		return -EADDRNOTAVAIL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(ai);
		return r;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		r = -errno;
		close(fd);
		freeaddrinfo(ai);
		return r;
	}
	freeaddrinfo(ai);
	if (getnameinfo((struct sockaddr *)&sa, salen, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
	    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(name, name_len, strchr(hbuf, ':') ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
	*ret_fd = fd;
	return 0;
}

static int
ep_parse_origins(struct endpoint *e, const char *list)
{
	_cleanup_free_ char *copy = list ? strdup(list) : NULL;
	char *save = NULL, *tok;

	if (list == NULL)
		return 0;
	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		char **nv = realloc(e->origins, (e->n_origins + 1) * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		e->origins = nv;
		if ((e->origins[e->n_origins] = strdup(tok)) == NULL)
			return -ENOMEM;
		e->n_origins++;
	}
	return 0;
}

int
endpoint_new(struct lws_context *ctx, struct ipc_server *ipc, const struct endpoint_options *opt,
    struct endpoint **ret)
{
	struct lws_context_creation_info ci;
	struct endpoint *e;
	int fd = -1, r;

	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->ctx = ctx;
	e->ipc = ipc;
	e->txseq = now_ms() * 1000;
	TAILQ_INIT(&e->conns);
	r = ep_parse_origins(e, opt->allowed_origins);
	if (r < 0)
		goto fail;

	memset(&ci, 0, sizeof(ci));
	ci.vhost_name = "instant";
	/* Not CONTEXT_PORT_NO_LISTEN_SERVER like the network vhost: on an upgrade
	 * lws 4.1.6 re-selects the vhost by port (lws_select_vhost) and would
	 * hand our connections to the first vhost with the same port. */
	ci.port = CONTEXT_PORT_NO_LISTEN;
	ci.protocols = ep_protocols;
	ci.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	e->vh = lws_create_vhost(ctx, &ci);
	if (e->vh == NULL) {
		log_error("cannot create the vhost of the Instant endpoint");
		r = -EIO;
		goto fail;
	}

	r = ipc_server_inherited_fd_named("instant", false, &fd);
	if (r == 0)
		snprintf(e->unix_l.name, sizeof(e->unix_l.name), "the socket passed by systemd");
	else if (r == -ENOENT) {
		r = ipc_server_open_socket(opt->unix_path, &fd);
		if (r < 0) {
			log_error("cannot listen on %s: %s", opt->unix_path, strerror(-r));
			goto fail;
		}
		snprintf(e->unix_l.name, sizeof(e->unix_l.name), "%s", opt->unix_path);
	} else {
		log_error("cannot use the Instant socket passed by systemd: %s", strerror(-r));
		goto fail;
	}
	r = ep_listen_fd(e, &e->unix_l, fd);
	if (r < 0)
		goto fail;
	log_info("serving the Instant protocol on %s", e->unix_l.name);

	if (opt->tcp_listen) {
		e->tcp_l.tcp = true;
		r = ep_open_tcp(opt->tcp_listen, &fd, e->tcp_l.name, sizeof(e->tcp_l.name));
		if (r < 0) {
			log_error("instant-listen: cannot listen on %s: %s", opt->tcp_listen,
			    r == -EADDRNOTAVAIL ? "not a loopback address" : strerror(-r));
			goto fail;
		}
		r = ep_listen_fd(e, &e->tcp_l, fd);
		if (r < 0)
			goto fail;
		log_notice("serving the Instant protocol on %s (loopback TCP)", e->tcp_l.name);
	}
	*ret = e;
	return 0;
fail:
	endpoint_free(e);
	return r;
}

static void
ep_listener_close(struct endpoint *e, struct ep_listener *l)
{
	if (l->e == NULL)
		return;
	lws_sul_cancel(&l->sul_resume);
	if (l->wsi) {
		struct lws *wsi = l->wsi;

		lws_set_opaque_user_data(wsi, NULL);
		l->wsi = NULL;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	}
}

void
endpoint_free(struct endpoint *e)
{
	struct ep_conn *c;

	if (e == NULL)
		return;
	ep_listener_close(e, &e->unix_l);
	ep_listener_close(e, &e->tcp_l);
	while ((c = TAILQ_FIRST(&e->conns)) != NULL) {
		struct lws *wsi = c->wsi;

		ep_conn_free(c);
		if (wsi)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	}
	for (size_t i = 0; i < e->n_origins; i++)
		free(e->origins[i]);
	free(e->origins);
	free(e);
}
