/* The sync core: profiles with their database and upstream session, query
 * subscriptions shared by every program, the outbox flow (group commit, send
 * in order, confirm, fail, retry, discard) and the local protocol's ops. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/fsutil.h"
#include "daemon/log.h"
#include "daemon/ops-store.h"
#include "daemon/rooms.h"
#include "daemon/sync.h"
#include "daemon/upstream.h"
#include "ipc/ipc-protocol.h"
#include "store/attrs.h"
#include "store/db.h"
#include "store/instaml.h"
#include "store/instaql.h"
#include "store/reads.h"
#include "store/tstore.h"
#include "store/util.h"

struct client;
struct profile;
struct query;

/* An outbox entry as the loop sees it; mirrors one row of the outbox table. */
struct mutation {
	TAILQ_ENTRY(mutation) entry;
	struct db_mutation *m;		/* owned */
	bool sent;			/* sent on the current upstream session */
	bool ever_sent;			/* may have reached the server: a resend is a replay */
	bool marked;			/* the database knows it may have been sent */
	int64_t sent_us;		/* monotonic time of the last send */
	int64_t confirmed_us;		/* monotonic time of transact-ok */
	struct client *origin;		/* borrowed; cleared when that program goes */
	char *origin_ceid;		/* owned: the app's client-event-id of the transact */
	bool replaying;			/* part of the backlog counted by profile.replay_total */
	uint64_t ord;			/* queue position (profile.next_ord): outbox, then writes */
};
TAILQ_HEAD(mutation_list, mutation);

/* A transact accepted but not yet committed (group commit). */
struct pending_write {
	TAILQ_ENTRY(pending_write) entry;
	struct db_mutation *m;		/* owned until appended to the outbox */
	struct client *origin;		/* borrowed; cleared when the program goes */
	char *ceid;			/* owned */
	uint64_t ord;			/* kept by its outbox entry */
};
TAILQ_HEAD(pending_write_list, pending_write);

/* One program's interest in one query. */
struct listener {
	LIST_ENTRY(listener) by_query;
	LIST_ENTRY(listener) by_client;
	struct query *q;		/* borrowed */
	struct client *c;		/* borrowed */
	char *ceid;			/* owned: the add-query's client-event-id */
	bool answered;			/* add-query-ok sent */
	int once;			/* 0, or the query-once policy it waits for */
	bool sent_any;			/* last_hash is valid */
	bool no_partial;		/* "allow-partial": false: never answered from the whole mirror */
	uint64_t last_hash;		/* of the last result sent, to skip unchanged ones */
	lws_sorted_usec_list_t timeout;	/* a query-once's timeout-ms */
};
LIST_HEAD(listener_list, listener);

enum once_policy { ONCE_NONE, ONCE_CACHE_FIRST, ONCE_NETWORK_ONLY, ONCE_CACHE_ONLY };

/* A distinct query of a profile, shared by all its listeners and by one
 * upstream subscription. */
struct query {
	TAILQ_ENTRY(query) entry;
	struct profile *p;		/* borrowed: owner */
	char *key;			/* owned: canonical JSON of q */
	cJSON *q;			/* owned */
	cJSON *triples;			/* owned: the server's triples, NULL before any result */
	cJSON *page_info;		/* owned, may be NULL */
	struct tstore *base;		/* owned: triples + attrs, built lazily */
	/* The optimistic view: base with every pending write that applies to
	 * this result (instaql_mutation_applies) up to queue position view_ord
	 * applied, in order; NULL while none is (then base is the view).
	 * view_ord 0: build it again from base. */
	struct tstore *view;		/* owned */
	uint64_t view_ord;
	struct query_reads *reads;	/* owned: what the result depends on, NULL = not known yet */
	bool reads_failed;		/* could not be computed: every write affects q */
	/* Pending writes that apply to this result and can change it, judged by
	 * reads alone (has-pending-writes), and the queue position of the last
	 * of them (an upper bound: a later write may depend on an earlier). */
	size_t n_aff;
	uint64_t last_aff;
	bool stale;			/* inputs changed since the last render */
	bool rendered;			/* the fields below hold the last render */
	bool rendered_partial;
	bool rendered_pending;		/* has-pending-writes of a partial render */
	int render_r;			/* 0, or the render's error (render_err says it) */
	char *render_err;		/* owned */
	char *data_text, *pi_text;	/* owned: printed data and page-info (may be NULL) */
	uint64_t data_hash;		/* of data_text and pi_text */
	struct instaql_shown shown;	/* the entities the last render shows */
	int64_t processed_tx_id;
	bool fresh;			/* result came on the current upstream session */
	bool dirty;			/* result not yet written to the mirror */
	bool subscribed;		/* add-query sent on the current session */
	char ceid[37];			/* upstream client-event-id, kept across reconnects */
	struct listener_list listeners;
	lws_sorted_usec_list_t grace;	/* pending upstream remove-query */
};
TAILQ_HEAD(query_list, query);

struct profile {
	TAILQ_ENTRY(profile) entry;
	struct sync *s;			/* borrowed: owner */
	char *key;			/* owned: server + app id */
	char *name, *app_id, *server, *api_uri, *ca_file;	/* owned */
	char *token;			/* owned, secret: never logged or echoed */
	char *db_path;			/* owned */
	struct db *db;			/* owned */
	struct upstream *up;		/* owned */
	struct attrs *server_attrs;	/* owned: as the server last sent them */
	struct attrs *attrs;		/* owned: server attrs + unsynced local ones */
	cJSON *user;			/* owned, may be NULL */
	char *app_status;		/* owned: active, read-only, disabled */
	char *session_id;		/* owned, may be NULL */
	char *last_error;		/* owned, may be NULL */
	bool signed_out;		/* the server no longer accepts the token */
	bool configured;		/* a [profile NAME] of the configuration (name is that NAME) */
	bool unreachable;		/* the last connection attempt failed (or the session dropped):
					 * a request that needs the server fails instead of waiting */
	bool app_missing_told;		/* subscriptions were told app-not-found (once, not every retry) */
	char *recovered_from;		/* owned: where a corrupt database was moved, or NULL */
	int64_t last_sync_ms;
	struct query_list queries;
	struct mutation_list outbox;	/* seq order: pending, sent, confirmed, failed */
	struct pending_write_list writes;	/* awaiting the next group commit */
	lws_sorted_usec_list_t flush;
	bool flush_armed;
	lws_sorted_usec_list_t push;	/* coalesces re-evaluation to once per loop turn */
	lws_sorted_usec_list_t persist;	/* write-behind of query results to the mirror */
	lws_sorted_usec_list_t prune;	/* retires confirmed writes no result ever reflects */
	unsigned nclients;
	int64_t state_since_ms;		/* wall clock of the last change of the shown state */
	const char *state_shown;	/* borrowed static name: the state state_since_ms is for */
	size_t replay_total, replay_done;	/* the backlog replayed since connecting; 0 = none */
	int64_t replay_start_us;
	uint64_t next_ord;		/* the last queue position given to a write */
	uint64_t evaluations;		/* query renders since the profile opened (status) */
};
TAILQ_HEAD(profile_list, profile);

/* One connected program. */
struct client {
	TAILQ_ENTRY(client) entry;
	struct sync *s;			/* borrowed */
	struct ipc_conn *conn;		/* borrowed: ipc owns it */
	struct profile *p;		/* borrowed, NULL before init */
	char *name;			/* owned: client-name from init */
	struct listener_list listeners;
	size_t nsubs;
	bool watch_status;
	struct rooms *rooms;		/* owned: presence session, created on the first join */
};
TAILQ_HEAD(client_list, client);

/* A sign-in call in flight for a program. */
struct auth_call {
	LIST_ENTRY(auth_call) entry;
	struct sync *s;			/* borrowed */
	struct profile *p;		/* borrowed */
	struct client *c;		/* borrowed; cleared when the program goes */
	char *ceid;			/* owned */
	char *op;			/* owned: the local op it answers */
	struct auth_request *req;	/* owned by auth.c */
};

struct sync {
	LIST_HEAD(, auth_call) auth_calls;
	struct lws_context *ctx;	/* borrowed */
	struct lws_vhost *vh;		/* borrowed */
	struct sync_options opt;	/* strings owned (copied) */
	struct sync_profile_option *profiles;	/* owned copies */
	struct profile_list profiles_list;
	struct client_list clients;
	void (*shutdown_done)(void *);
	void *shutdown_ud;
	unsigned shutdown_waiting;
	bool shutting_down;
};

static void query_push(struct query *q);
static void profile_push_all(struct profile *p);
static void profile_pump(struct profile *p);
static void profile_status_changed(struct profile *p);
static void query_free(struct query *q);
static void query_persist(struct query *q);
static int profile_set_token(struct profile *p, const char *token);
static int profile_read_token(const char *db_path, char **ret);
static void profile_status_extra(struct profile *p, cJSON *o);
static void replay_resolved(struct profile *p, struct mutation *m);
static void replay_begin(struct profile *p);
static int profile_db_path(struct sync *s, const char *name, const char *app_id, const char *server,
    char **ret);
static char *profile_key_of(const char *name, const char *server, const char *app_id);
static bool store_op(struct client *c, const char *op, const cJSON *msg, const char *ceid);
static void status_add_unopened(struct sync *s, cJSON *all);
static cJSON *mutations_attr_names(struct profile *p);

static char *
xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- replies ---- */

static cJSON *
reply_new(const char *op, const char *ceid)
{
	cJSON *r = cJSON_CreateObject();

	if (r == NULL)
		return NULL;
	cJSON_AddStringToObject(r, "op", op);
	if (ceid)
		cJSON_AddStringToObject(r, "client-event-id", ceid);
	return r;
}

static void
client_send(struct client *c, cJSON *msg)
{
	int r;

	if (c == NULL || msg == NULL)
		return;
	r = ipc_conn_send(c->conn, msg);
	if (r < 0 && r != -ENOBUFS)
		log_debug("send to program failed: %s", strerror(-r));
}

static void
client_error(struct client *c, const char *ceid, const char *type, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ipc_conn_send_error(c->conn, ceid, type, msg);
}

/* ---- status ---- */

static cJSON *
profile_queue_json(struct profile *p)
{
	size_t n[4] = { 0 };
	struct mutation *m;
	cJSON *o = cJSON_CreateObject();

	TAILQ_FOREACH(m, &p->outbox, entry)
		n[m->m->state]++;
	cJSON_AddNumberToObject(o, "pending", (double)(n[DB_MUT_PENDING] + n[DB_MUT_SENT]));
	cJSON_AddNumberToObject(o, "sent", (double)n[DB_MUT_SENT]);
	cJSON_AddNumberToObject(o, "confirmed", (double)n[DB_MUT_CONFIRMED]);
	cJSON_AddNumberToObject(o, "failed", (double)n[DB_MUT_FAILED]);
	return o;
}

static const char *
profile_state(struct profile *p)
{
	if (p->up == NULL)
		return "disconnected";
	if (p->signed_out && upstream_get_state(p->up) == UPSTREAM_AUTH_FAILED)
		return "signed-out";
	return upstream_state_name(upstream_get_state(p->up));
}

static cJSON *
profile_status_json(struct profile *p)
{
	cJSON *o = cJSON_CreateObject(), *up;
	int64_t bytes = 0, nq = 0;
	struct query *q;

	cJSON_AddStringToObject(o, "profile", p->name);
	cJSON_AddStringToObject(o, "app-id", p->app_id);
	cJSON_AddStringToObject(o, "server", p->server);
	cJSON_AddStringToObject(o, "state", profile_state(p));
	cJSON_AddStringToObject(o, "app-status", p->app_status ? p->app_status : "unknown");
	if (p->session_id)
		cJSON_AddStringToObject(o, "session-id", p->session_id);
	else
		cJSON_AddNullToObject(o, "session-id");
	if (p->user)
		cJSON_AddItemToObject(o, "user", cJSON_Duplicate(p->user, 1));
	else
		cJSON_AddNullToObject(o, "user");
	if (p->last_error)
		cJSON_AddStringToObject(o, "last-error", p->last_error);
	cJSON_AddItemToObject(o, "queue", profile_queue_json(p));
	if (p->last_sync_ms)
		cJSON_AddNumberToObject(o, "last-sync", (double)p->last_sync_ms);
	else
		cJSON_AddNullToObject(o, "last-sync");
	TAILQ_FOREACH(q, &p->queries, entry)
		nq++;
	cJSON_AddNumberToObject(o, "subscriptions", (double)nq);
	cJSON_AddNumberToObject(o, "evaluations", (double)p->evaluations);
	if (db_query_bytes(p->db, &bytes) == 0)
		cJSON_AddNumberToObject(o, "cache-bytes", (double)bytes);
	if (p->recovered_from)
		cJSON_AddStringToObject(o, "recovered-from", p->recovered_from);
	up = p->up ? upstream_status_json(p->up) : NULL;
	if (up)
		cJSON_AddItemToObject(o, "connection", up);
	profile_status_extra(p, o);
	return o;
}

static void
profile_status_changed(struct profile *p)
{
	struct client *c;

	profile_status_extra(p, NULL);	/* notes a change of state */
	TAILQ_FOREACH(c, &p->s->clients, entry) {
		_cleanup_json_ cJSON *msg = NULL;

		/* A watcher bound to no profile follows every profile. */
		if (!c->watch_status || (c->p != p && c->p != NULL))
			continue;
		msg = reply_new("status", NULL);
		cJSON_AddItemToObject(msg, "status", profile_status_json(p));
		client_send(c, msg);
	}
}

int
sync_status_line(struct sync *s, char *buf, size_t len)
{
	struct profile *p;
	size_t off = 0;

	buf[0] = '\0';
	if (TAILQ_EMPTY(&s->profiles_list)) {
		snprintf(buf, len, "idle, no profile in use");
		return 0;
	}
	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		size_t pending = 0, failed = 0;
		struct mutation *m;
		int n;

		TAILQ_FOREACH(m, &p->outbox, entry) {
			if (m->m->state == DB_MUT_FAILED)
				failed++;
			else if (m->m->state != DB_MUT_CONFIRMED)
				pending++;
		}
		n = snprintf(buf + off, len - off, "%s%s: %s, %zu queued, %zu failed",
		    off ? "; " : "", p->name, profile_state(p), pending, failed);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return 0;
}

/* ---- queries: evaluation with the optimistic overlay ---- */

static struct query *query_find(struct profile *p, const char *key);
static bool query_has_result(const struct query *q);

/* The query's server store, built once per result or attr change. */
static int
query_base(struct query *q, struct tstore **ret)
{
	int r;

	if (q->base == NULL) {
		struct tstore *ts = NULL;

		r = tstore_new(q->p->attrs, &ts);
		if (r < 0)
			return r;
		r = tstore_add_triples(ts, q->triples);
		if (r < 0) {
			tstore_free(ts);
			return r;
		}
		q->base = ts;
	}
	*ret = q->base;
	return 0;
}

static void
query_drop_view(struct query *q)
{
	tstore_free(q->view);
	q->view = NULL;
	q->view_ord = 0;
}

/* What q reads, computed on first use against the profile's attrs and q's
 * page-info; NULL if that failed (every write then counts as affecting q). */
static const struct query_reads *
query_reads_of(struct query *q)
{
	int r;

	if (q->reads == NULL && !q->reads_failed) {
		r = query_reads_new(q->p->attrs, q->q, q->page_info, &q->reads);
		if (r < 0) {
			q->reads = NULL;
			q->reads_failed = true;
			log_debug("%s: what a query reads is unknown (%s): every write re-renders it",
			    q->p->name, strerror(-r));
		}
	}
	return q->reads;
}

/* Can steps change q's result? use_shown refines it by the entities the
 * last render shows, which holds only while that render is of q's current
 * inputs (store/reads.h): not for a stale, failed or partial render. */
static bool
query_affected(struct query *q, const cJSON *steps, bool use_shown)
{
	const struct query_reads *r = query_reads_of(q);
	bool current = q->rendered && !q->stale && q->render_r == 0 && !q->rendered_partial;

	if (r == NULL)
		return true;
	return query_reads_affected(r, steps, use_shown && current ? &q->shown : NULL);
}

/* One queue entry (an outbox entry or a write awaiting its group commit) as
 * the optimistic views see it. */
struct mref {
	const cJSON *steps;		/* borrowed */
	int64_t tx_id;			/* 0 until confirmed */
	uint64_t ord;
	bool failed;
};

static struct mref
mref_of(const struct mutation *m)
{
	return (struct mref){ .steps = m->m->steps, .tx_id = m->m->tx_id, .ord = m->ord,
	    .failed = m->m->state == DB_MUT_FAILED };
}

static struct mref
mref_of_write(const struct pending_write *w)
{
	return (struct mref){ .steps = w->m->steps, .ord = w->ord };
}

/* Is m layered on q's result? (A partial answer: see query_eval_partial.) */
static bool
mref_applies(const struct query *q, const struct mref *m)
{
	return !m->failed && instaql_mutation_applies(m->tx_id, q->processed_tx_id);
}

static void
query_count(struct query *q, const struct mref *m)
{
	if (!mref_applies(q, m) || !query_affected(q, m->steps, false))
		return;
	q->n_aff++;
	if (m->ord > q->last_aff)
		q->last_aff = m->ord;
}

/* Count again, over the whole queue, the writes that can change q's result
 * (after its reads or its result changed). */
static void
query_scan(struct query *q)
{
	struct pending_write *w;
	struct mutation *m;

	q->n_aff = 0;
	q->last_aff = 0;
	if (!query_has_result(q))
		return;
	TAILQ_FOREACH(m, &q->p->outbox, entry) {
		struct mref x = mref_of(m);

		query_count(q, &x);
	}
	TAILQ_FOREACH(w, &q->p->writes, entry) {
		struct mref x = mref_of_write(w);

		query_count(q, &x);
	}
}

/* q's inputs changed wholesale (a new result or page-info, new attrs): its
 * stores and reads are built again, and it is rendered again. */
static void
query_drop_base(struct query *q)
{
	tstore_free(q->base);
	q->base = NULL;
	query_drop_view(q);
	query_reads_free(q->reads);
	q->reads = NULL;
	q->reads_failed = false;
	q->stale = true;
	query_scan(q);
}

/* m starts (enter) or stops applying to q's result: a new write at the end
 * of the queue, a retried one in its middle, or one confirmed, rejected,
 * discarded or retired. q is rendered again when m can change it, or when
 * a later write that can may depend on it (a lookup, a create-or-update
 * check, a cascade): otherwise the render without m equals the render with
 * it. The entities shown by q's current render judge m either way, since a
 * write judged unaffecting by them changes no attr that selects entities. */
static void
query_on_write(struct query *q, const struct mref *m, bool enter)
{
	bool pure;

	if (!query_has_result(q)) {
		q->stale = true;	/* a partial answer reads the whole mirror */
		return;
	}
	pure = query_affected(q, m->steps, false);
	if (pure && enter) {
		q->n_aff++;
		if (m->ord > q->last_aff)
			q->last_aff = m->ord;
	} else if (pure && q->n_aff > 0) {
		q->n_aff--;
	}
	if (q->view_ord >= m->ord)
		query_drop_view(q);	/* it must hold exactly the writes that apply up to view_ord */
	if (!q->stale && (q->last_aff > m->ord || (pure && query_affected(q, m->steps, true))))
		q->stale = true;
}

static void profile_schedule_push(struct profile *p);

/* Tell every query of p that a queue entry changed from before to after
 * (NULL: not in the queue). */
static void
profile_on_write(struct profile *p, const struct mref *before, const struct mref *after)
{
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry) {
		bool a, b;

		if (!query_has_result(q)) {
			q->stale = true;
			continue;
		}
		a = before && mref_applies(q, before);
		b = after && mref_applies(q, after);
		if (a != b)
			query_on_write(q, a ? before : after, b);
	}
	profile_schedule_push(p);
}

/* A partial answer reads every mirrored triple: any new result may change it. */
static void
profile_mark_partial(struct profile *p)
{
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (!query_has_result(q))
			q->stale = true;
}

/* The profile's attrs grew (a write made new ones): what each query reads
 * is computed again (an attr unknown to its reads counts as affecting). */
static void
profile_reads_changed(struct profile *p)
{
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry) {
		query_reads_free(q->reads);
		q->reads = NULL;
		q->reads_failed = false;
		query_scan(q);
	}
}

/* Would retiring the confirmed m now change what q shows, before q's
 * result reflects it? */
static bool
query_holds(struct query *q, const struct mref *m)
{
	if (!query_has_result(q) || !mref_applies(q, m))
		return false;
	return q->last_aff > m->ord ||
	    (query_affected(q, m->steps, false) && query_affected(q, m->steps, true));
}

/* Apply m to q's view if it comes after view_ord and applies. A write whose
 * steps this store cannot apply is skipped rather than failing the whole
 * query (the JS client fails the query; see QUERY-DIFFERENCES). */
static int
query_view_add(struct query *q, struct tstore *base, const struct mref *m)
{
	_cleanup_free_ char *err = NULL;
	int r;

	if (m->ord <= q->view_ord)
		return 0;
	if (mref_applies(q, m)) {
		if (q->view == NULL && (r = tstore_dup(base, &q->view)) < 0)
			return r;
		r = tstore_apply_steps(q->view, m->steps, &err);
		if (r < 0 && r != -EINVAL) {
			query_drop_view(q);
			return r;
		}
	}
	q->view_ord = m->ord;
	return 0;
}

/* q's optimistic view, brought up to date: each pending write is applied
 * once, when a render first needs it, and the view is built again from the
 * server store only after a write left (or entered) the middle of what it
 * holds. */
static int
query_view(struct query *q, struct tstore **ret)
{
	struct pending_write *w;
	struct tstore *base;
	struct mutation *m;
	int r;

	r = query_base(q, &base);
	if (r < 0)
		return r;
	TAILQ_FOREACH(m, &q->p->outbox, entry) {
		struct mref x = mref_of(m);

		if ((r = query_view_add(q, base, &x)) < 0)
			return r;
	}
	TAILQ_FOREACH(w, &q->p->writes, entry) {
		struct mref x = mref_of_write(w);

		if ((r = query_view_add(q, base, &x)) < 0)
			return r;
	}
	*ret = q->view ? q->view : base;
	return 0;
}

/* Evaluate q over base (for a partial answer, the union of the mirror) at
 * processed_tx_id with the pending writes layered on top, through the
 * engine's render path (instaql_eval_base, which the differential tests
 * drive as well). A write whose steps this store cannot
 * apply is skipped rather than failing the whole query (the JS client fails
 * the query; see QUERY-DIFFERENCES). */
static int
query_eval_over(struct query *q, struct tstore *base, int64_t processed_tx_id,
    cJSON **ret_data, cJSON **ret_page_info, bool *ret_pending, char **ret_err)
{
	struct instaql_opts opts = { .page_info = q->page_info };
	_cleanup_free_ struct instaql_mutation *mv = NULL;
	struct pending_write *w;
	struct mutation *m;
	size_t n = 0, cap = 0, applied = 0;
	int r;

	TAILQ_FOREACH(m, &q->p->outbox, entry)
		cap++;
	TAILQ_FOREACH(w, &q->p->writes, entry)
		cap++;
	if (cap > 0 && (mv = calloc(cap, sizeof(*mv))) == NULL)
		return -ENOMEM;
	/* Outbox order, then the writes waiting for the group commit (they show at
	 * once; if their commit fails they vanish from results again). Which of
	 * them a result already reflects, instaql_mutation_applies decides. */
	TAILQ_FOREACH(m, &q->p->outbox, entry)
		if (m->m->state != DB_MUT_FAILED)
			mv[n++] = (struct instaql_mutation){ .tx_steps = m->m->steps, .tx_id = m->m->tx_id };
	TAILQ_FOREACH(w, &q->p->writes, entry)
		mv[n++] = (struct instaql_mutation){ .tx_steps = w->m->steps, .tx_id = 0 };
	r = instaql_eval_base(base, mv, n, processed_tx_id, INSTAQL_SKIP_FAILING, q->q, &opts,
	    &applied, ret_data, ret_page_info, ret_err);
	if (r < 0)
		return r;
	*ret_pending = applied > 0;
	return 0;
}

/* Add one stored result's triples to the union; a result the store cannot
 * read is left out (the answer is partial anyway). */
static int
union_add(struct tstore *ts, const cJSON *triples, int64_t tx_id, int64_t *min_tx_id)
{
	int r = tstore_add_triples(ts, triples);

	if (r == -ENOMEM)
		return r;
	if (r == 0 && (*min_tx_id < 0 || tx_id < *min_tx_id))
		*min_tx_id = tx_id;
	return 0;
}

/* Every triple mirrored for the profile: the results of the queries loaded
 * here and of every query stored in its database. Built per request (this
 * is the fallback for a query never seen before, not a hot path). *ret_ts is
 * new, the caller frees it; *ret_tx_id is the oldest processed-tx-id of the
 * results it holds, so a write is layered unless every result reflects it. */
static int
profile_union_store(struct profile *p, struct tstore **ret_ts, int64_t *ret_tx_id)
{
	_cleanup_json_ cJSON *list = NULL;
	struct tstore *ts = NULL;
	const cJSON *e;
	struct query *q;
	int64_t min_tx_id = -1;
	int r;

	r = tstore_new(p->attrs, &ts);
	if (r < 0)
		return r;
	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_has_result(q) && (r = union_add(ts, q->triples, q->processed_tx_id,
		    &min_tx_id)) < 0)
			goto fail;
	r = db_query_list(p->db, &list);
	if (r < 0)
		log_warn("%s: listing the mirrored queries failed: %s", p->name, strerror(-r));
	cJSON_ArrayForEach(e, list) {
		_cleanup_json_ cJSON *triples = NULL;
		const char *key = json_get_string(e, "key");
		int64_t tx_id = 0;

		if (key == NULL || query_find(p, key))	/* loaded: its newest result is above */
			continue;
		r = db_query_get(p->db, key, NULL, &triples, NULL, &tx_id);
		if (r == -ENOMEM)
			goto fail;
		if (r < 0)
			continue;
		if ((r = union_add(ts, triples, tx_id, &min_tx_id)) < 0)
			goto fail;
	}
	*ret_ts = ts;
	*ret_tx_id = min_tx_id < 0 ? 0 : min_tx_id;
	return 0;
fail:
	tstore_free(ts);
	return r;
}

static bool
profile_online(const struct profile *p)
{
	return p->up && upstream_get_state(p->up) == UPSTREAM_AUTHENTICATED;
}

static bool
query_has_result(const struct query *q)
{
	return q->triples != NULL;
}

/* The daemon knows the server will not answer for now (the last attempt
 * failed, backoff, a refused token): a query never seen before is then
 * answered from the whole mirror. Not while still connecting (the answer is
 * coming), and not for an unknown app (the server did answer: nothing). */
static bool
profile_partial_mode(const struct profile *p)
{
	return !profile_online(p) && p->unreachable &&
	    !(p->up && upstream_get_state(p->up) == UPSTREAM_APP_NOT_FOUND);
}

/* Whether l takes an answer from the whole mirror for its query with no result. */
static bool
listener_takes_partial(const struct listener *l)
{
	if (l->no_partial || l->once == ONCE_NETWORK_ONLY)
		return false;
	return l->once == ONCE_CACHE_ONLY || profile_partial_mode(l->q->p);
}

static void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	lws_sul_cancel(&l->timeout);
	LIST_REMOVE(l, by_query);
	LIST_REMOVE(l, by_client);
	if (!l->once && l->c)
		l->c->nsubs--;
	free(l->ceid);
	free(l);
}

static void query_maybe_release(struct query *q);

/* FNV-1a over a string: results are compared by the hash of their text. */
static uint64_t
hash_text(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h * 1099511628211ULL;	/* separates consecutive fields */
}

/* One result message as text, built from parts printed once per push so a
 * result shared by many programs is serialised once, not once per program. */
static int
result_text(const char *op, const struct listener *l, const char *q_text, const char *data_text,
    const char *pi_text, bool pending, bool partial, char **ret)
{
	_cleanup_free_ char *ceid = NULL;
	cJSON tmp = { .type = cJSON_String, .valuestring = l->ceid };
	char ptx[48] = "";

	if (l->ceid && (ceid = json_print(&tmp)) == NULL)
		return -ENOMEM;
	if (l->q->processed_tx_id)
		snprintf(ptx, sizeof(ptx), ",\"processed-tx-id\":%" PRId64, l->q->processed_tx_id);
	if (asprintf(ret, "{\"op\":\"%s\"%s%s,\"q\":%s,\"data\":%s%s%s,\"from-cache\":%s,"
	    "\"has-pending-writes\":%s,\"partial\":%s%s}", op, ceid ? ",\"client-event-id\":" : "",
	    ceid ? ceid : "", q_text, data_text, pi_text ? ",\"page-info\":" : "", pi_text ? pi_text : "",
	    l->q->fresh ? "false" : "true", pending ? "true" : "false", partial ? "true" : "false",
	    ptx) < 0)
		return -ENOMEM;
	return 0;
}

/* Evaluate q, which has no result of its own, over every triple mirrored
 * for its profile with the pending writes layered on top. */
static int
query_eval_partial(struct query *q, cJSON **ret_data, cJSON **ret_page_info, bool *ret_pending,
    char **ret_err)
{
	struct tstore *ts = NULL;
	int64_t tx_id = 0;
	int r;

	r = profile_union_store(q->p, &ts, &tx_id);
	if (r < 0)
		return r;
	r = query_eval_over(q, ts, tx_id, ret_data, ret_page_info, ret_pending, ret_err);
	tstore_free(ts);
	return r;
}

/* Render q again from its inputs: its view (or for a partial answer the
 * whole mirror), printed once for every listener and kept with the entities
 * it shows, until q's inputs change again. */
static void
query_render(struct query *q)
{
	_cleanup_json_ cJSON *data = NULL, *pi = NULL;
	_cleanup_free_ char *err = NULL;
	bool partial = !query_has_result(q), pending = false;
	struct tstore *s = NULL;
	int r;

	free(q->data_text);
	free(q->pi_text);
	free(q->render_err);
	q->data_text = q->pi_text = q->render_err = NULL;
	instaql_shown_clear(&q->shown);
	q->rendered = true;
	q->stale = false;
	q->rendered_partial = partial;
	q->p->evaluations++;
	if (partial) {
		r = query_eval_partial(q, &data, &pi, &pending, &err);
	} else {
		struct instaql_opts opts = { .page_info = q->page_info, .shown = &q->shown };

		r = query_view(q, &s);
		if (r == 0)
			r = instaql_eval_opts(s, q->q, &opts, &data, &pi, &err);
	}
	q->rendered_pending = pending;
	if (r == 0) {
		q->data_text = json_print(data);
		q->pi_text = pi ? json_print(pi) : NULL;
		if (q->data_text == NULL || (pi && q->pi_text == NULL))
			r = -ENOMEM;
	}
	q->render_r = r;
	if (r < 0) {
		q->render_err = err ? TAKE_PTR(err) : strdup(strerror(-r));
		q->data_hash = hash_text(hash_text(1469598103934665603ULL, "error"), q->render_err);
		if (r != -EINVAL)
			q->stale = true;	/* out of memory: try again on the next push */
		return;
	}
	/* The engine is deterministic, so equal results print equally. */
	q->data_hash = hash_text(hash_text(1469598103934665603ULL, q->data_text), q->pi_text);
}

/* Send each listener what it has not seen yet: the first answer, or a
 * refresh when the result (or its flags) changed; q is rendered again only
 * if its inputs changed. A query with no result yet is answered, partial,
 * to the listeners that take that. */
static void
query_push(struct query *q)
{
	_cleanup_free_ char *q_text = NULL;
	struct listener *l, *next;
	bool pending, partial = !query_has_result(q), any = false;
	uint64_t h;
	int r;

	LIST_FOREACH(l, &q->listeners, by_query)
		if (!partial || listener_takes_partial(l))
			any = true;
	if (!any)
		return;
	/* A partial answer is rendered every time: it reads the whole mirror,
	 * which the stored results (cleared, evicted) change as well. */
	if (partial || q->stale || !q->rendered || q->rendered_partial)
		query_render(q);
	if (q->render_r < 0) {
		/* Each listener is told once per distinct error; a query-once is done. */
		for (l = LIST_FIRST(&q->listeners); l; l = next) {
			next = LIST_NEXT(l, by_query);
			if ((partial && !listener_takes_partial(l)) || (l->sent_any && l->last_hash == q->data_hash))
				continue;
			client_error(l->c, l->ceid, q->render_r == -EINVAL ? "invalid-query" : "internal",
			    "%s", q->render_err ? q->render_err : strerror(-q->render_r));
			if (l->once) {
				listener_free(l);
				continue;
			}
			l->sent_any = true;
			l->last_hash = q->data_hash;
		}
		query_maybe_release(q);
		return;
	}
	pending = partial ? q->rendered_pending : q->n_aff > 0;
	h = hash_text(q->data_hash, q->fresh ? "f" : "c");
	h = hash_text(h, pending ? "w" : "-");
	h = hash_text(h, partial ? "p" : "-");
	for (l = LIST_FIRST(&q->listeners); l; l = next) {
		_cleanup_free_ char *text = NULL;
		const char *op;

		next = LIST_NEXT(l, by_query);
		if (partial && !listener_takes_partial(l))
			continue;
		if (l->once) {
			if (l->once == ONCE_NETWORK_ONLY && !q->fresh)
				continue;
			op = "query-ok";
		} else if (l->sent_any && l->last_hash == h)
			continue;
		else
			op = l->answered ? "refresh-ok" : "add-query-ok";
		if (q_text == NULL && (q_text = json_print(q->q)) == NULL) {
			log_warn("%s: out of memory sending a result", q->p->name);
			return;
		}
		if (result_text(op, l, q_text, q->data_text, q->pi_text, pending, partial, &text) < 0)
			continue;
		r = ipc_conn_send_text(l->c->conn, text, strlen(text));
		if (r < 0 && r != -ENOBUFS)
			log_debug("send to program failed: %s", strerror(-r));
		if (l->once) {
			listener_free(l);
			continue;
		}
		l->answered = true;
		l->sent_any = true;
		l->last_hash = h;
	}
	query_maybe_release(q);
}

static void
profile_push_all(struct profile *p)
{
	struct query *q, *next;

	for (q = TAILQ_FIRST(&p->queries); q; q = next) {
		next = TAILQ_NEXT(q, entry);
		query_push(q);
	}
}

static void
profile_push_cb(lws_sorted_usec_list_t *sul)
{
	profile_push_all(lws_container_of(sul, struct profile, push));
}

/* Many confirmations or writes in one loop turn cost one re-evaluation of
 * each query, not one per event. */
static void
profile_schedule_push(struct profile *p)
{
	if (!lws_dll2_is_detached(&p->push.list))
		return;
	lws_sul_schedule(p->s->ctx, 0, &p->push, profile_push_cb, 1);
}

/* ---- upstream subscription of a query ---- */

static void
query_subscribe(struct query *q)
{
	_cleanup_json_ cJSON *msg = NULL;
	struct profile *p = q->p;

	if (q->subscribed || !profile_online(p))
		return;
	if (p->app_status && strcmp(p->app_status, "disabled") == 0)
		return;
	msg = reply_new("add-query", q->ceid);
	cJSON_AddItemToObject(msg, "q", cJSON_Duplicate(q->q, 1));
	if (upstream_send(p->up, msg) == 0)
		q->subscribed = true;
}

static void
query_unsubscribe(struct query *q)
{
	_cleanup_json_ cJSON *msg = NULL;
	char ceid[37];

	if (!q->subscribed || q->p->up == NULL)
		return;
	if (uuid_v4(ceid) < 0)
		return;
	msg = reply_new("remove-query", ceid);
	cJSON_AddItemToObject(msg, "q", cJSON_Duplicate(q->q, 1));
	(void)upstream_send(q->p->up, msg);
	q->subscribed = false;
}

static void
query_grace_cb(lws_sorted_usec_list_t *sul)
{
	struct query *q = lws_container_of(sul, struct query, grace);
	struct profile *p = q->p;
	int evicted = 0, r;

	if (!LIST_EMPTY(&q->listeners))
		return;
	query_unsubscribe(q);
	r = db_query_set_in_use(p->db, q->key, false);
	if (r < 0 && r != -ENOENT)
		log_warn("%s: cannot mark a query unused: %s", p->name, strerror(-r));
	query_free(q);
	r = db_query_evict(p->db, p->s->opt.cache_budget_bytes, &evicted);
	if (r < 0)
		log_warn("%s: cache eviction failed: %s", p->name, strerror(-r));
	else if (evicted)
		log_info("%s: evicted %d cached queries over the budget", p->name, evicted);
}

/* When the last listener left, keep the upstream subscription for a grace
 * period so a restarting program does not cause a resubscribe storm. */
static void
query_maybe_release(struct query *q)
{
	if (!LIST_EMPTY(&q->listeners))
		return;
	lws_sul_schedule(q->p->s->ctx, 0, &q->grace, query_grace_cb,
	    (lws_usec_t)q->p->s->opt.unsubscribe_grace_ms * LWS_US_PER_MS);
}

static void
query_free(struct query *q)
{
	struct listener *l;

	if (q == NULL)
		return;
	lws_sul_cancel(&q->grace);
	query_persist(q);
	while ((l = LIST_FIRST(&q->listeners)))
		listener_free(l);
	TAILQ_REMOVE(&q->p->queries, q, entry);
	free(q->key);
	cJSON_Delete(q->q);
	cJSON_Delete(q->triples);
	cJSON_Delete(q->page_info);
	tstore_free(q->base);
	tstore_free(q->view);
	query_reads_free(q->reads);
	free(q->render_err);
	free(q->data_text);
	free(q->pi_text);
	instaql_shown_clear(&q->shown);
	free(q);
}

static struct query *
query_find(struct profile *p, const char *key)
{
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (strcmp(q->key, key) == 0)
			return q;
	return NULL;
}

static struct query *
query_find_ceid(struct profile *p, const char *ceid)
{
	struct query *q;

	if (ceid == NULL)
		return NULL;
	TAILQ_FOREACH(q, &p->queries, entry)
		if (strcmp(q->ceid, ceid) == 0)
			return q;
	return NULL;
}

/* Find or create the shared query for q, loading its mirrored result. */
static int
query_get(struct profile *p, const cJSON *qjson, struct query **ret)
{
	_cleanup_free_ char *key = json_canonical(qjson);
	struct query *q;
	int r;

	if (key == NULL)
		return -ENOMEM;
	q = query_find(p, key);
	if (q) {
		lws_sul_cancel(&q->grace);
		*ret = q;
		return 0;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->p = p;
	q->key = TAKE_PTR(key);
	q->q = cJSON_Duplicate(qjson, 1);
	q->stale = true;
	LIST_INIT(&q->listeners);
	if (q->q == NULL || uuid_v4(q->ceid) < 0) {
		free(q->key);
		cJSON_Delete(q->q);
		free(q);
		return -ENOMEM;
	}
	TAILQ_INSERT_TAIL(&p->queries, q, entry);
	r = db_query_get(p->db, q->key, NULL, &q->triples, &q->page_info, &q->processed_tx_id);
	if (r < 0 && r != -ENOENT)
		log_warn("%s: reading the cached query failed: %s", p->name, strerror(-r));
	query_scan(q);
	r = db_query_set_in_use(p->db, q->key, true);
	if (r < 0 && r != -ENOENT)
		log_warn("%s: cannot mark a query in use: %s", p->name, strerror(-r));
	*ret = q;
	return 0;
}

/* Collect the triples of a wire result tree (nodes with join-rows and child-nodes). */
static int
collect_triples(const cJSON *nodes, cJSON *out, int depth)
{
	const cJSON *node;

	if (depth > 64)
		return -EINVAL;
	if (!cJSON_IsArray(nodes))
		return cJSON_IsNull(nodes) || nodes == NULL ? 0 : -EINVAL;
	cJSON_ArrayForEach(node, nodes) {
		const cJSON *rows = json_get(json_get(json_get(node, "data"), "datalog-result"), "join-rows");
		const cJSON *row, *t;
		int r;

		if (cJSON_IsArray(rows))
			cJSON_ArrayForEach(row, rows) {
				if (!cJSON_IsArray(row))
					return -EINVAL;
				cJSON_ArrayForEach(t, row) {
					if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) < 3)
						return -EINVAL;
					cJSON_AddItemToArray(out, cJSON_Duplicate(t, 1));
				}
			}
		r = collect_triples(json_get(node, "child-nodes"), out, depth + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

static void
query_persist(struct query *q)
{
	int r;

	if (!q->dirty || q->triples == NULL)
		return;
	r = db_query_put(q->p->db, q->key, q->q, q->triples, q->page_info, q->processed_tx_id);
	if (r < 0)
		log_warn("%s: mirroring a query result failed: %s", q->p->name, strerror(-r));
	q->dirty = false;
}

static void
profile_persist_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, persist);
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry)
		query_persist(q);
}

/* The mirror is a cache: a result that changes many times a second is
 * written at most every 200 ms. Losing that much to a crash costs only a
 * refetch; the outbox never waits on it. */
static void
query_mark_dirty(struct query *q)
{
	q->dirty = true;
	if (lws_dll2_is_detached(&q->p->persist.list))
		lws_sul_schedule(q->p->s->ctx, 0, &q->p->persist, profile_persist_cb,
		    200 * LWS_US_PER_MS);
}

/* A new result for q from the server: mirror it, then tell the listeners. */
static void
query_set_result(struct query *q, const cJSON *result, int64_t processed_tx_id)
{
	_cleanup_json_ cJSON *triples = cJSON_CreateArray();
	const cJSON *first, *pi;
	struct profile *p = q->p;
	int r;

	if (triples == NULL)
		return;
	r = collect_triples(result, triples, 0);
	if (r < 0) {
		log_warn("%s: ignoring a malformed query result", p->name);
		return;
	}
	first = cJSON_IsArray(result) ? cJSON_GetArrayItem(result, 0) : NULL;
	pi = json_get(json_get(first, "data"), "page-info");
	cJSON_Delete(q->triples);
	q->triples = TAKE_PTR(triples);
	cJSON_Delete(q->page_info);
	q->page_info = pi ? cJSON_Duplicate(pi, 1) : NULL;
	q->processed_tx_id = processed_tx_id;
	q->fresh = true;
	query_drop_base(q);
	profile_mark_partial(p);
	query_mark_dirty(q);
	p->last_sync_ms = now_ms();
}

/* ---- the outbox ---- */

static void
mutation_free(struct mutation *m)
{
	if (m == NULL)
		return;
	db_mutation_free(m->m);
	free(m->origin_ceid);
	free(m);
}

static struct mutation *
mutation_find(struct profile *p, const char *mid)
{
	struct mutation *m;

	if (mid == NULL)
		return NULL;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (strcmp(m->m->mutation_id, mid) == 0)
			return m;
	return NULL;
}

/* Entity ids deleted by queued (pending or sent) writes, sorted; the strings
 * are borrowed from the outbox's steps. Built once per pump, when a replay
 * first needs it. */
struct deleted_ids {
	const char **ids;		/* owned array */
	size_t n;
	bool built;
};

static int
str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
deleted_ids_build(struct profile *p, struct deleted_ids *d)
{
	struct mutation *m;
	size_t cap = 0;

	TAILQ_FOREACH(m, &p->outbox, entry) {
		const cJSON *st;

		if (m->m->state != DB_MUT_PENDING && m->m->state != DB_MUT_SENT)
			continue;
		cJSON_ArrayForEach(st, m->m->steps) {
			const cJSON *e = cJSON_GetArrayItem(st, 1);
			const char *op = cJSON_IsString(cJSON_GetArrayItem(st, 0)) ?
			    cJSON_GetArrayItem(st, 0)->valuestring : "";

			if (strcmp(op, "delete-entity") != 0 || !cJSON_IsString(e))
				continue;
			if (d->n == cap) {
				size_t ncap = cap ? 2 * cap : 16;
				const char **ids = reallocarray(d->ids, ncap, sizeof(*ids));

				if (ids == NULL)
					return -ENOMEM;
				d->ids = ids;
				cap = ncap;
			}
			d->ids[d->n++] = e->valuestring;
		}
	}
	if (d->n > 1)
		qsort(d->ids, d->n, sizeof(*d->ids), str_ptr_cmp);
	d->built = true;
	return 0;
}

/* The server does not deduplicate (protocol.md 7.4): a replay runs again in
 * full if its first send committed unseen, so it must land the same data
 * whether that happened or not. Per step, a second run:
 *   - add-triple / deep-merge-triple without mode or with "upsert", links
 *     (add-triple on a ref), retract-triple (unlink: a missing link is a
 *     no-op), delete-entity (a missing entity is a no-op), rule-params and
 *     an identical add-attr converge to the same state: sent unchanged;
 *   - mode "create" fails ("Creating entities that exist"): sent as an
 *     upsert, which lands the same data either way;
 *   - mode "update" fails ("Updating entities that don't exist") when a
 *     queued delete of that entity (later, or in the same transaction, since
 *     the server runs add-triples before deletes) ran after the first send:
 *     for such an entity it is sent as an upsert; the queued delete runs
 *     again after it, so the entity ends deleted either way. Other updates
 *     keep the mode, so an update of an entity someone else deleted still
 *     fails as it would have the first time.
 * A new copy (caller owns) or NULL when out of memory. */
static cJSON *
steps_for_replay(struct profile *p, const cJSON *steps, struct deleted_ids *dels)
{
	cJSON *copy = cJSON_Duplicate(steps, 1), *st;

	if (copy == NULL)
		return NULL;
	cJSON_ArrayForEach(st, copy) {
		const cJSON *e = cJSON_GetArrayItem(st, 1);
		const char *mode;

		if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) != 5)
			continue;
		mode = json_get_string(cJSON_GetArrayItem(st, 4), "mode");
		if (mode == NULL)
			continue;
		if (strcmp(mode, "update") == 0) {
			if (!cJSON_IsString(e))
				continue;
			if (!dels->built && deleted_ids_build(p, dels) < 0) {
				cJSON_Delete(copy);
				return NULL;
			}
			if (dels->n == 0 || bsearch(&e->valuestring, dels->ids, dels->n,
			    sizeof(*dels->ids), str_ptr_cmp) == NULL)
				continue;
		} else if (strcmp(mode, "create") != 0) {
			continue;
		}
		cJSON_DeleteItemFromArray(st, 4);
	}
	return copy;
}

static bool profile_app_writable(const struct profile *p);

static bool
profile_can_write(struct profile *p)
{
	return profile_online(p) && profile_app_writable(p);
}

static bool
mutation_unsent(const struct mutation *m)
{
	return !m->sent && (m->m->state == DB_MUT_PENDING || m->m->state == DB_MUT_SENT);
}

static void profile_flush_cb(lws_sorted_usec_list_t *sul);

/* Before an entry is first sent, the database must know that it may reach
 * the server: otherwise a crash after the send (its transact-ok lost) would
 * resend it after the restart as a first send, and a create would fail
 * although it is on the server. The marks of a whole pump go in one commit
 * (writes sent as soon as they are committed are marked in their group
 * commit instead, profile_flush_cb). A mark whose send then did not happen
 * (the session broke, or a crash right after the commit) errs on the safe
 * side: that write replays after a restart although it was never sent.
 * Treating every entry found at start-up as possibly sent would be simpler
 * but is not equivalent: writes queued offline, never sent, would lose the
 * create check on their first send. */
static int
profile_mark_unsent(struct profile *p)
{
	_cleanup_free_ const char **ids = NULL;
	struct mutation *m;
	size_t n = 0, i = 0;
	int r;

	TAILQ_FOREACH(m, &p->outbox, entry)
		if (mutation_unsent(m) && !m->marked)
			n++;
	if (n == 0)
		return 0;
	ids = calloc(n, sizeof(*ids));
	if (ids == NULL)
		return -ENOMEM;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (mutation_unsent(m) && !m->marked)
			ids[i++] = m->m->mutation_id;
	r = db_outbox_mark_sent(p->db, ids, n);
	if (r < 0)
		return r;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (mutation_unsent(m))
			m->marked = true;
	return 0;
}

/* Send every unsent entry, in outbox order. */
static void
profile_pump(struct profile *p)
{
	struct deleted_ids dels = { 0 };
	struct mutation *m;
	int r;

	if (!profile_can_write(p))
		return;
	r = profile_mark_unsent(p);
	if (r < 0) {
		/* Nothing is sent unmarked; the flush timer pumps again. */
		log_warn("%s: cannot record that queued writes are being sent (%s); "
		    "they stay queued, retrying in a second", p->name, strerror(-r));
		if (!p->flush_armed) {
			lws_sul_schedule(p->s->ctx, 0, &p->flush, profile_flush_cb, LWS_US_PER_SEC);
			p->flush_armed = true;
		}
		return;
	}
	TAILQ_FOREACH(m, &p->outbox, entry) {
		_cleanup_json_ cJSON *msg = NULL;
		cJSON *steps;

		if (!mutation_unsent(m))
			continue;
		steps = m->ever_sent ? steps_for_replay(p, m->m->steps, &dels) :
		    cJSON_Duplicate(m->m->steps, 1);
		msg = reply_new("transact", m->m->mutation_id);
		if (steps == NULL || msg == NULL) {
			cJSON_Delete(steps);
			log_warn("%s: out of memory sending queued writes", p->name);
			break;
		}
		cJSON_AddItemToObject(msg, "tx-steps", steps);
		cJSON_AddNumberToObject(msg, "created", (double)m->m->created_ms);
		cJSON_AddItemToObject(msg, "order", json_new_int64(m->m->seq));
		if (upstream_send(p->up, msg) < 0)
			break;
		m->sent = true;
		m->ever_sent = true;
		m->sent_us = mono_us();
		m->m->state = DB_MUT_SENT;
	}
	free(dels.ids);
}

/* The server sends refresh-ok only for results that changed, so a confirmed
 * write that a loaded query still layers would wait forever if the result
 * it can change did not: after this long it is retired anyway (the JS
 * client has a similar backstop). */
#define CONFIRMED_GRACE_US (5 * LWS_US_PER_SEC)

static void profile_prune_cb(lws_sorted_usec_list_t *sul);

/* Does some query's render still need the confirmed m (query_holds)? */
static bool
profile_holds(struct profile *p, const struct mutation *m)
{
	struct mref x = mref_of(m);
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_holds(q, &x))
			return true;
	return false;
}

/* Remove a confirmed write from the outbox, and from every view holding it. */
static int
mutation_retire(struct profile *p, struct mutation *m)
{
	struct mref x = mref_of(m);
	int r;

	r = db_outbox_remove(p->db, m->m->mutation_id);
	if (r < 0) {
		log_warn("%s: cannot remove a confirmed write: %s", p->name, strerror(-r));
		return r;
	}
	profile_on_write(p, &x, NULL);
	TAILQ_REMOVE(&p->outbox, m, entry);
	mutation_free(m);
	return 0;
}

static void
profile_arm_prune(struct profile *p)
{
	if (lws_dll2_is_detached(&p->prune.list))
		lws_sul_schedule(p->s->ctx, 0, &p->prune, profile_prune_cb, LWS_US_PER_SEC);
}

/* A confirmed entry leaves the outbox as soon as no query needs it
 * (profile_holds): at once when no loaded result layers it or none of them
 * can show it, else once those results reflect it (processed-tx-id >=
 * tx-id), or after CONFIRMED_GRACE_US. */
static void
profile_prune(struct profile *p)
{
	struct mutation *m, *next;
	int64_t now = mono_us();
	bool waiting = false;

	for (m = TAILQ_FIRST(&p->outbox); m; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (m->m->state != DB_MUT_CONFIRMED)
			continue;
		if (now - m->confirmed_us < CONFIRMED_GRACE_US && profile_holds(p, m)) {
			waiting = true;
			continue;
		}
		if (mutation_retire(p, m) < 0)
			return;
	}
	if (waiting)
		profile_arm_prune(p);
}

static void
profile_prune_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, prune);

	profile_prune(p);
	profile_status_changed(p);
}

/* After a transact-ok only m can have become removable (the others change
 * on a result or with time, which profile_prune handles), so a stream of
 * confirmations does not rescan the whole outbox each time. */
static void
profile_prune_confirmed(struct profile *p, struct mutation *m)
{
	if (profile_holds(p, m))
		profile_arm_prune(p);
	else
		(void)mutation_retire(p, m);
}

static void
handle_transact_ok(struct profile *p, const cJSON *msg)
{
	struct mutation *m = mutation_find(p, json_get_string(msg, "client-event-id"));
	struct log_fields lf = { .profile = p->name, .app_id = p->app_id };
	int64_t tx_id = 0;
	int r;

	struct mref before;

	if (m == NULL || m->m->state == DB_MUT_CONFIRMED)
		return;		/* late or duplicate: already settled */
	if (json_get_int64(json_get(msg, "tx-id"), &tx_id) < 0) {
		log_warn("%s: transact-ok without a valid tx-id", p->name);
		return;
	}
	r = db_outbox_set_state(p->db, m->m->mutation_id, DB_MUT_CONFIRMED, tx_id, NULL);
	if (r < 0) {
		/* Not recorded: the entry stays unconfirmed and is replayed, which is safe. */
		log_warn("%s: recording a confirmation failed: %s", p->name, strerror(-r));
		return;
	}
	before = mref_of(m);
	m->m->state = DB_MUT_CONFIRMED;
	m->m->tx_id = tx_id;
	m->confirmed_us = mono_us();
	{
		struct mref after = mref_of(m);

		/* no longer layered on a result whose processed-tx-id is 0 or >= tx_id */
		profile_on_write(p, &before, &after);
	}
	lf.mutation_id = m->m->mutation_id;
	lf.op = "transact-ok";
	log_structured(LOG_DEBUG, &lf, "write confirmed as tx %" PRId64, tx_id);
	replay_resolved(p, m);
	if (m->origin) {
		_cleanup_json_ cJSON *out = reply_new("transact-ok", m->origin_ceid);

		cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
		cJSON_AddItemToObject(out, "tx-id", json_new_int64(tx_id));
		client_send(m->origin, out);
	}
	profile_prune_confirmed(p, m);
	profile_status_changed(p);
}

static void
mutation_fail(struct profile *p, struct mutation *m, const cJSON *err)
{
	_cleanup_free_ char *etext = json_print(err);
	struct log_fields lf = { .profile = p->name, .app_id = p->app_id,
	    .mutation_id = m->m->mutation_id, .op = "transact" };
	struct mref before = mref_of(m);
	int r;

	r = db_outbox_set_state(p->db, m->m->mutation_id, DB_MUT_FAILED, 0, etext);
	if (r < 0)
		log_warn("%s: recording a rejection failed: %s", p->name, strerror(-r));
	m->m->state = DB_MUT_FAILED;
	free(m->m->error);
	m->m->error = etext ? strdup(etext) : NULL;
	m->sent = false;
	profile_on_write(p, &before, NULL);
	replay_resolved(p, m);
	log_structured(LOG_NOTICE, &lf, "the server rejected a write: %s",
	    json_get_string(err, "message") ? json_get_string(err, "message") : "no message");
	if (m->origin) {
		_cleanup_json_ cJSON *out = reply_new("error", m->origin_ceid);
		const char *type = json_get_string(err, "type");

		cJSON_AddStringToObject(out, "type", type && strcmp(type, "permission-denied") == 0 ?
		    "permission-denied" : "server-error");
		cJSON_AddStringToObject(out, "message", json_get_string(err, "message") ?
		    json_get_string(err, "message") : "the server rejected the write");
		cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
		if (type)
			cJSON_AddStringToObject(out, "server-type", type);
		if (json_get(err, "hint"))
			cJSON_AddItemToObject(out, "hint", cJSON_Duplicate(json_get(err, "hint"), 1));
		client_send(m->origin, out);
	}
	profile_status_changed(p);
}

/* Whether the app takes writes now (NULL: not known yet, so assume it does). */
static bool
profile_app_writable(const struct profile *p)
{
	return p->app_status == NULL || strcmp(p->app_status, "active") == 0;
}

/* A write the app cannot take now stays queued (it is sent once the app
 * accepts writes again, or can be discarded); its writer is told so with an
 * app-read-only error that carries the mutation-id and "queued": true. */
static void
mutation_tell_read_only(struct profile *p, struct mutation *m)
{
	_cleanup_json_ cJSON *out = NULL;

	if (m->origin == NULL)
		return;
	out = reply_new("error", m->origin_ceid);
	cJSON_AddStringToObject(out, "type", "app-read-only");
	cJSON_AddStringToObject(out, "message", p->app_status && strcmp(p->app_status, "disabled") == 0 ?
	    "the app is disabled and accepts no writes: the write stays queued until it accepts them "
	    "again (discard-mutation drops it)" :
	    "the app is read-only: the write stays queued until it accepts writes again "
	    "(discard-mutation drops it)");
	cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
	cJSON_AddBoolToObject(out, "queued", true);
	client_send(m->origin, out);
}

/* When the app stops taking writes, every writer with a write still queued
 * is told (once per change, not on every reconnect). */
static void
profile_set_app_status(struct profile *p, const char *st)
{
	bool was_writable = profile_app_writable(p);
	struct mutation *m;

	free(p->app_status);
	p->app_status = strdup(st);
	if (!was_writable || profile_app_writable(p))
		return;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (m->m->state == DB_MUT_PENDING || m->m->state == DB_MUT_SENT)
			mutation_tell_read_only(p, m);
}

static void
handle_error(struct profile *p, const cJSON *msg)
{
	const char *ceid = json_get_string(msg, "client-event-id");
	const cJSON *orig = json_get(msg, "original-event");
	const char *oop = json_get_string(orig, "op");
	struct mutation *m = mutation_find(p, ceid);
	struct query *q;

	if (oop && strcmp(oop, "init") == 0) {
		const char *rt = json_get_string(json_get(msg, "hint"), "record-type");

		if (rt && strcmp(rt, "app-user") == 0 && p->token) {
			struct client *c;

			/* Queued writes stay queued until someone signs in again. */
			p->signed_out = true;
			log_notice("%s: the server no longer accepts the refresh token: signed out", p->name);
			TAILQ_FOREACH(c, &p->s->clients, entry) {
				_cleanup_json_ cJSON *out = NULL;

				if (c->p != p)
					continue;
				out = reply_new("status", NULL);
				cJSON_AddItemToObject(out, "status", profile_status_json(p));
				client_send(c, out);
			}
		}
		return;
	}
	if (m) {
		const char *type = json_get_string(msg, "type");

		if (m->m->state != DB_MUT_PENDING && m->m->state != DB_MUT_SENT)
			return;
		if (type && strcmp(type, "app-read-only") == 0) {
			/* Not a rejection of the write: the app went read-only under it. */
			m->sent = false;
			mutation_tell_read_only(p, m);
			return;
		}
		mutation_fail(p, m, msg);
		return;
	}
	q = query_find_ceid(p, ceid);
	if (q == NULL && oop && strcmp(oop, "add-query") == 0 && json_get(orig, "q")) {
		_cleanup_free_ char *key = json_canonical(json_get(orig, "q"));

		q = key ? query_find(p, key) : NULL;
	}
	if (q) {
		struct listener *l, *next;

		/* The server dropped the subscription; it is re-sent on the next session. */
		q->subscribed = false;
		for (l = LIST_FIRST(&q->listeners); l; l = next) {
			next = LIST_NEXT(l, by_query);
			client_error(l->c, l->ceid, "server-error", "%s",
			    json_get_string(msg, "message") ? json_get_string(msg, "message") :
			    "the server rejected the query");
			if (l->once)
				listener_free(l);
		}
		query_maybe_release(q);
		return;
	}
	log_info("%s: server error: %s", p->name,
	    json_get_string(msg, "message") ? json_get_string(msg, "message") : "(no message)");
}

/* ---- attrs ---- */

/* Equal attrs, in the same order (the engine resolves labels in that order). */
static bool
attrs_same(const struct attrs *a, const struct attrs *b)
{
	size_t n = attrs_count(a);

	if (n != attrs_count(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cJSON_Compare(attrs_at(a, i), attrs_at(b, i), true))
			return false;
	return true;
}

/* The optimistic attrs: the server's plus every unsynced local attr the
 * server does not know by id or identity. When they come out as they were
 * and no queued write was rewritten (steps_changed false), every query
 * keeps its stores and its last render (a session's init-ok resends them). */
static int
profile_rebuild_attrs(struct profile *p, bool steps_changed)
{
	_cleanup_json_ cJSON *all = NULL;
	struct attrs *a = NULL;
	struct query *q;
	const cJSON *x;
	int r;

	r = attrs_dup(p->server_attrs, &a);
	if (r < 0)
		return r;
	r = db_attrs_load(p->db, &all);
	if (r < 0) {
		attrs_free(a);
		return r;
	}
	cJSON_ArrayForEach(x, all) {
		const char *e = attr_fwd_etype(x), *l = attr_fwd_label(x);

		if (!attr_unsynced(x) || attrs_by_id(a, attr_id(x)))
			continue;
		if (e && l && (attrs_by_fwd(p->server_attrs, e, l) || attrs_by_rev(p->server_attrs, e, l)))
			continue;
		r = attrs_add(a, x);
		if (r < 0) {
			attrs_free(a);
			return r;
		}
	}
	if (!steps_changed && p->attrs && attrs_same(a, p->attrs)) {
		attrs_free(a);
		return 0;
	}
	attrs_free(p->attrs);
	p->attrs = a;
	TAILQ_FOREACH(q, &p->queries, entry)
		query_drop_base(q);
	return 0;
}

/* New server attrs: mirror them and rewrite queued steps that used local attr
 * ids the server knows under other ids, storing the rewrite. */
static void
profile_set_server_attrs(struct profile *p, const cJSON *list, int64_t processed_tx_id, bool on_refresh)
{
	struct mutation *m, **muts = NULL;
	cJSON **steps = NULL;
	bool *drop = NULL, *changed = NULL;
	size_t n = 0;
	bool steps_changed = true;	/* until the rewrite below is known to be whole */
	int r;

	if (!cJSON_IsArray(list))
		return;
	r = attrs_set_all(p->server_attrs, list);
	if (r < 0) {
		log_warn("%s: ignoring malformed attrs from the server", p->name);
		return;
	}
	r = db_attrs_replace_server(p->db, list);
	if (r < 0)
		log_warn("%s: mirroring attrs failed: %s", p->name, strerror(-r));
	/* The whole queue at once, in order: an id mapping found in one write
	 * applies to the later ones too, as in the JS client. */
	for (m = TAILQ_FIRST(&p->outbox); m; m = TAILQ_NEXT(m, entry))
		n++;
	steps = calloc(n ? n : 1, sizeof(*steps));
	drop = calloc(n ? n : 1, sizeof(*drop));
	changed = calloc(n ? n : 1, sizeof(*changed));
	muts = calloc(n ? n : 1, sizeof(*muts));
	if (!steps || !drop || !changed || !muts) {
		log_warn("%s: out of memory rewriting queued writes", p->name);
		goto out;
	}
	n = 0;
	TAILQ_FOREACH(m, &p->outbox, entry) {
		if (m->m->state == DB_MUT_FAILED)
			continue;
		muts[n] = m;
		steps[n] = m->m->steps;
		drop[n] = on_refresh && m->m->tx_id && m->m->tx_id <= processed_tx_id;
		n++;
	}
	r = instaml_rewrite_queue(p->server_attrs, steps, drop, n, changed);
	if (r < 0)
		log_warn("%s: rewriting queued writes failed: %s", p->name, strerror(-r));
	else
		steps_changed = false;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		int e;

		if (!changed[i])
			continue;
		steps_changed = true;
		e = db_outbox_set_steps(p->db, muts[i]->m->mutation_id, muts[i]->m->steps);
		if (e < 0)
			log_warn("%s: storing a rewritten write failed: %s", p->name, strerror(-e));
	}
out:
	free(steps);
	free(drop);
	free(changed);
	free(muts);
	r = profile_rebuild_attrs(p, steps_changed);
	if (r < 0)
		log_warn("%s: rebuilding attrs failed: %s", p->name, strerror(-r));
}

/* ---- upstream events ---- */

/* States in which the daemon knows the server will not answer for now. */
static bool
profile_gave_up(enum upstream_state st)
{
	return st == UPSTREAM_BACKOFF || st == UPSTREAM_AUTH_FAILED || st == UPSTREAM_APP_NOT_FOUND ||
	    st == UPSTREAM_STOPPED;
}

/* The error a request that needs the server gets while it cannot have it:
 * the type (a PROTOCOL.md error type) and a message naming the cause. */
static const char *
profile_unreachable_error(const struct profile *p, const char **ret_msg)
{
	enum upstream_state st = p->up ? upstream_get_state(p->up) : UPSTREAM_STOPPED;

	if (st == UPSTREAM_APP_NOT_FOUND) {
		*ret_msg = "the server does not know this app id (check the app id and the server)";
		return "app-not-found";
	}
	if (st == UPSTREAM_AUTH_FAILED) {
		*ret_msg = "the server refused this profile's refresh token (sign in again)";
		return "auth-failed";
	}
	*ret_msg = "the server is not reachable now (the daemon's last connection attempt failed)";
	return "offline";
}

/* The session just gave up: every query-once still waiting for the server
 * gets the reason now instead of its timeout later; an unknown app is also
 * told to every subscription (which stays, in case the app appears). */
static void
profile_fail_waiting(struct profile *p)
{
	struct query *q;
	const char *msg, *type = profile_unreachable_error(p, &msg);
	bool tell_subs = strcmp(type, "app-not-found") == 0 && !p->app_missing_told;

	if (tell_subs)
		p->app_missing_told = true;
	TAILQ_FOREACH(q, &p->queries, entry) {
		struct listener *l, *next;
		bool released = false;

		if (!query_has_result(q))
			query_push(q);	/* those that take a partial answer get it instead */
		for (l = LIST_FIRST(&q->listeners); l; l = next) {
			next = LIST_NEXT(l, by_query);
			if (l->once) {
				client_error(l->c, l->ceid, type, "%s", msg);
				listener_free(l);
				released = true;
			} else if (!l->answered && tell_subs)
				client_error(l->c, l->ceid, type, "%s", msg);
		}
		if (released)
			query_maybe_release(q);
	}
}

static void
profile_on_state(void *ud, enum upstream_state st, const char *detail)
{
	struct profile *p = ud;
	struct query *q;
	struct mutation *m;

	if (detail) {
		free(p->last_error);
		p->last_error = strdup(detail);
	}
	log_info("%s: %s%s%s", p->name, upstream_state_name(st), detail ? ": " : "", detail ? detail : "");
	if (st == UPSTREAM_AUTHENTICATED)
		p->unreachable = p->app_missing_told = false;
	else if (profile_gave_up(st)) {
		p->unreachable = true;
		profile_fail_waiting(p);
	}
	if (st != UPSTREAM_AUTHENTICATED && st != UPSTREAM_OPENED) {
		/* The server forgot this session: subscriptions and in-flight sends. */
		TAILQ_FOREACH(q, &p->queries, entry) {
			bool was_fresh = q->fresh;

			q->subscribed = false;
			q->fresh = false;
			if (was_fresh)
				query_push(q);
		}
		TAILQ_FOREACH(m, &p->outbox, entry)
			m->sent = false;
		free(p->session_id);
		p->session_id = NULL;
	}
	profile_status_changed(p);
}

static void
handle_init_ok(struct profile *p, const cJSON *msg)
{
	const cJSON *auth = json_get(msg, "auth");
	const cJSON *user = json_get(auth, "user");
	const char *status = json_get_string(json_get(msg, "app-status"), "status");
	struct query *q;

	free(p->session_id);
	p->session_id = xstrdup(json_get_string(msg, "session-id"));
	cJSON_Delete(p->user);
	p->user = cJSON_IsObject(user) ? cJSON_Duplicate(user, 1) : NULL;
	profile_set_app_status(p, status ? status : "active");
	free(p->last_error);
	p->last_error = NULL;
	profile_set_server_attrs(p, json_get(msg, "attrs"), 0, false);
	TAILQ_FOREACH(q, &p->queries, entry)
		if (!LIST_EMPTY(&q->listeners))
			query_subscribe(q);
	/* Writes confirmed before a restart may be retired now. */
	profile_prune(p);
	replay_begin(p);
	profile_pump(p);
	profile_schedule_push(p);
	profile_status_changed(p);
}

static void
handle_query_result(struct profile *p, const cJSON *msg)
{
	struct query *q = query_find_ceid(p, json_get_string(msg, "client-event-id"));
	int64_t ptx = 0;

	if (q == NULL && json_get(msg, "q")) {
		_cleanup_free_ char *key = json_canonical(json_get(msg, "q"));

		q = key ? query_find(p, key) : NULL;
	}
	if (q == NULL)
		return;		/* a result for a query we no longer hold */
	if (json_get(msg, "processed-tx-id") && json_get_int64(json_get(msg, "processed-tx-id"), &ptx) < 0)
		return;
	query_set_result(q, json_get(msg, "result"), ptx);
	profile_prune(p);
	query_push(q);
}

static void
handle_refresh_ok(struct profile *p, const cJSON *msg)
{
	const cJSON *c;
	int64_t ptx = 0;

	if (json_get(msg, "processed-tx-id") && json_get_int64(json_get(msg, "processed-tx-id"), &ptx) < 0)
		return;
	if (json_get(msg, "attrs"))
		profile_set_server_attrs(p, json_get(msg, "attrs"), ptx, true);
	cJSON_ArrayForEach(c, json_get(msg, "computations")) {
		_cleanup_free_ char *key = json_canonical(json_get(c, "instaql-query"));
		struct query *q = key ? query_find(p, key) : NULL;

		if (q == NULL)
			continue;
		query_set_result(q, json_get(c, "instaql-result"), ptx);
	}
	profile_prune(p);
	profile_schedule_push(p);
}

static void
profile_on_message(void *ud, const cJSON *msg)
{
	struct profile *p = ud;
	const char *op = json_get_string(msg, "op");

	if (op == NULL)
		return;
	if (strcmp(op, "init-ok") == 0)
		handle_init_ok(p, msg);
	else if (strcmp(op, "add-query-ok") == 0)
		handle_query_result(p, msg);
	else if (strcmp(op, "refresh-ok") == 0)
		handle_refresh_ok(p, msg);
	else if (strcmp(op, "transact-ok") == 0)
		handle_transact_ok(p, msg);
	else if (strcmp(op, "error") == 0)
		handle_error(p, msg);
	else if (strcmp(op, "app-status-changed") == 0) {
		const char *st = json_get_string(msg, "status");

		if (st) {
			profile_set_app_status(p, st);
			log_notice("%s: app status is now %s", p->name, st);
			profile_pump(p);
			profile_status_changed(p);
		}
	}
	/* add-query-exists, remove-query-ok and room replies need nothing here. */
}

/* ---- group commit of writes ---- */

static void
pending_write_free(struct pending_write *w)
{
	if (w == NULL)
		return;
	db_mutation_free(w->m);
	free(w->ceid);
	free(w);
}

/* Commit every write accepted since the last flush in one transaction, then
 * acknowledge them: nothing is acknowledged before its commit returns. */
static void
profile_flush_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, flush);
	struct pending_write *w;
	struct db_mutation **batch;
	bool sending;
	size_t n = 0, i = 0;
	int r;

	p->flush_armed = false;
	TAILQ_FOREACH(w, &p->writes, entry)
		n++;
	if (n == 0) {
		/* Armed by profile_pump to retry after a failed mark. */
		profile_pump(p);
		return;
	}
	batch = calloc(n, sizeof(*batch));
	if (batch == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	/* Online, profile_pump below sends the batch at once: it is stored as
	 * sent in this commit, which saves the pump a second fsync. */
	sending = profile_can_write(p);
	TAILQ_FOREACH(w, &p->writes, entry) {
		batch[i++] = w->m;
		if (sending)
			w->m->state = DB_MUT_SENT;
	}
	r = db_outbox_append(p->db, batch, n);
	free(batch);
	if (r < 0)
		goto fail;
	while ((w = TAILQ_FIRST(&p->writes))) {
		struct mutation *m = calloc(1, sizeof(*m));

		TAILQ_REMOVE(&p->writes, w, entry);
		if (m == NULL) {
			/* Committed but not tracked in memory: it replays after a restart. */
			pending_write_free(w);
			continue;
		}
		m->m = TAKE_PTR(w->m);
		m->ord = w->ord;	/* the same place in the queue: no view changes */
		m->marked = sending;
		m->m->state = DB_MUT_PENDING;	/* in memory: not sent yet */
		m->origin = w->origin;
		m->origin_ceid = TAKE_PTR(w->ceid);
		TAILQ_INSERT_TAIL(&p->outbox, m, entry);
		if (m->origin) {
			_cleanup_json_ cJSON *out = reply_new("transact-queued", m->origin_ceid);

			cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
			cJSON_AddItemToObject(out, "seq", json_new_int64(m->m->seq));
			client_send(m->origin, out);
			if (!profile_app_writable(p))
				mutation_tell_read_only(p, m);
		}
		pending_write_free(w);
	}
	profile_pump(p);
	profile_status_changed(p);
	return;
fail:
	while ((w = TAILQ_FIRST(&p->writes))) {
		struct mref x = mref_of_write(w);

		/* its effect leaves every result again */
		profile_on_write(p, &x, NULL);
		TAILQ_REMOVE(&p->writes, w, entry);
		if (w->origin)
			client_error(w->origin, w->ceid, r == -ENOSPC ? "storage-full" : "internal",
			    r == -ENOSPC ? "the write could not be stored: the disk is full" :
			    "the write could not be stored: %s", strerror(-r));
		pending_write_free(w);
	}
	log_error("%s: storing writes failed: %s", p->name, strerror(-r));
}

/* ---- profiles ---- */

static void
hex_digest(const char *in, char out[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_Digest(in, strlen(in), md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
profile_write_token(struct profile *p)
{
	_cleanup_free_ char *path = NULL, *err = NULL;
	int r;

	if (asprintf(&path, "%s.token", p->db_path) < 0)
		return -ENOMEM;
	if (p->token == NULL) {
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	/* Atomic: a crash mid-write must not leave the profile signed out. */
	r = fs_write_atomic(path, p->token, strlen(p->token), &err);
	if (r < 0)
		log_warn("%s: %s", p->name, err ? err : strerror(-r));
	return r;
}

/* The stored token, with the same checks as a configured token file (ours
 * alone, regular, not empty). 0 and *ret NULL when there is none. */
static int
profile_read_token(const char *db_path, char **ret)
{
	_cleanup_free_ char *path = NULL, *err = NULL;
	int r;

	if (asprintf(&path, "%s.token", db_path) < 0)
		return -ENOMEM;
	r = config_read_token(path, ret, &err);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		log_warn("%s", err ? err : strerror(-r));
	return r;
}

/* Sign the profile in with another token (NULL: sign out). The cache and the
 * queued writes stay: they belong to the profile, not to the token. */
static int
profile_set_token(struct profile *p, const char *token)
{
	char *copy = NULL;
	int r;

	if (token && (copy = strdup(token)) == NULL)
		return -ENOMEM;
	if (p->token)
		explicit_bzero(p->token, strlen(p->token));
	free(p->token);
	p->token = copy;
	if (token)
		(void)log_add_secret(token);
	r = profile_write_token(p);
	if (r < 0)
		log_warn("%s: cannot store the token: %s", p->name, strerror(-r));
	p->signed_out = false;
	if (p->up) {
		r = upstream_set_token(p->up, token);
		if (r < 0)
			return r;
		upstream_reconnect_now(p->up);
	}
	profile_status_changed(p);
	return 0;
}

static void
profile_free(struct profile *p)
{
	struct query *q;
	struct mutation *m;
	struct pending_write *w;

	if (p == NULL)
		return;
	lws_sul_cancel(&p->flush);
	lws_sul_cancel(&p->push);
	lws_sul_cancel(&p->persist);
	lws_sul_cancel(&p->prune);
	while ((q = TAILQ_FIRST(&p->queries)))
		query_free(q);
	while ((m = TAILQ_FIRST(&p->outbox))) {
		TAILQ_REMOVE(&p->outbox, m, entry);
		mutation_free(m);
	}
	while ((w = TAILQ_FIRST(&p->writes))) {
		TAILQ_REMOVE(&p->writes, w, entry);
		pending_write_free(w);
	}
	upstream_free(p->up);
	db_close(p->db);
	attrs_free(p->server_attrs);
	attrs_free(p->attrs);
	cJSON_Delete(p->user);
	free(p->key);
	free(p->name);
	free(p->app_id);
	free(p->server);
	free(p->api_uri);
	free(p->ca_file);
	if (p->token)
		explicit_bzero(p->token, strlen(p->token));
	free(p->token);
	free(p->db_path);
	free(p->app_status);
	free(p->session_id);
	free(p->last_error);
	free(p->recovered_from);
	free(p);
}

static int
profile_load_outbox(struct profile *p)
{
	struct db_mutation **list = NULL;
	size_t n = 0;
	int r;

	r = db_outbox_list(p->db, ~0u, &list, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct mutation *m = calloc(1, sizeof(*m));

		if (m == NULL) {
			db_mutation_list_free(list + i, n - i);
			free(list);	/* the array itself */
			return -ENOMEM;
		}
		m->m = list[i];
		m->ord = ++p->next_ord;
		/* Confirmed before a restart: keep layering it until results catch up. */
		if (m->m->state == DB_MUT_CONFIRMED)
			m->confirmed_us = mono_us();
		/* Sent before the restart (db_outbox_mark_sent), rejected by the
		 * server (so sent), or set aside by recovery (maybe sent): a resend
		 * may repeat it, exactly as within one run, where ever_sent
		 * outlives a rejection. */
		if (m->m->state == DB_MUT_SENT || m->m->state == DB_MUT_FAILED) {
			m->ever_sent = true;
			m->marked = true;
		}
		if (m->m->state == DB_MUT_SENT)
			m->m->state = DB_MUT_PENDING;	/* not sent in this session */
		TAILQ_INSERT_TAIL(&p->outbox, m, entry);
		list[i] = NULL;
	}
	free(list);
	return 0;
}

static void
profile_on_log(void *ud, int prio, const char *msg)
{
	struct profile *p = ud;
	struct log_fields lf = { .profile = p->name, .app_id = p->app_id };

	log_structured(prio, &lf, "%s", msg);
}

static const struct upstream_callbacks profile_upstream_cb = {
	.on_state = profile_on_state,
	.on_message = profile_on_message,
	.on_log = profile_on_log,
};

/* A self-hosted server serves its HTTP API beside the sync socket:
 * wss://host[:port]/runtime/session -> https://host[:port]. */
static char *
api_uri_for(const char *server)
{
	const char *rest = strncmp(server, "wss://", 6) == 0 ? server + 6 : server + 5;
	const char *slash = strchr(rest, '/');
	char *out = NULL;

	if (asprintf(&out, "%s://%.*s", strncmp(server, "wss://", 6) == 0 ? "https" : "http",
	    (int)(slash ? (size_t)(slash - rest) : strlen(rest)), rest) < 0)
		return NULL;
	return out;
}

/* A database found corrupt at open was moved aside: say so once in the log,
 * and remember it in the new database so status keeps showing it. */
static void
note_recovery(struct db *db, const char *name)
{
	const char *from = db_recovered_from(db);

	if (from == NULL)
		return;
	log_error("%s: the database was unreadable; moved aside to %s and its readable queued writes carried over",
	    name, from);
	if (db_meta_set(db, "recovered-from", from) < 0)
		log_warn("%s: cannot record the recovery", name);
}

/* What a profile is made of, as the configuration and a program's init
 * decide it together. Strings are borrowed from the sync's options or the
 * init message, except derived_api_uri (owned: free with profile_spec_clear). */
struct profile_spec {
	const char *name;	/* the configured profile's name; NULL = unconfigured (named by app id) */
	const char *app_id, *server, *api_uri, *token, *ca_file;
	char *derived_api_uri;	/* owned */
};

static void
profile_spec_clear(struct profile_spec *sp)
{
	free(sp->derived_api_uri);
	*sp = (struct profile_spec){ 0 };
}

/* A configured profile's server: its own, else the default. */
static const char *
profile_option_server(const struct sync *s, const struct sync_profile_option *po)
{
	return po->server ? po->server : s->opt.default_server;
}

/* The one resolver from configuration (plus what a program's init brings) to
 * a profile: init, start-up and reload all go through it, so a configured
 * profile gets its server, api-uri, token and ca-file whichever way it opens.
 *   pname set: exactly that configured profile (app_id and server, when
 *     given, must agree with it);
 *   else by_app_id: the first configured profile with this app id and, when
 *     server is given, that server; else an unconfigured profile;
 *   else: an unconfigured profile (a database found at start-up that no
 *     configured profile claims).
 * api_uri and token from the program win over the profile's. 0, -ENOENT (no
 * such profile), -EINVAL (a conflicting field), -ENOMEM; *ret_err is static text
 * or NULL, for the program. */
static int
profile_resolve(const struct sync *s, const char *pname, bool by_app_id, const char *app_id,
    const char *server, const char *api_uri, const char *token, struct profile_spec *ret,
    const char **ret_err)
{
	const struct sync_profile_option *po = NULL;

	*ret = (struct profile_spec){ 0 };
	*ret_err = NULL;
	if (pname) {
		for (size_t i = 0; i < s->opt.n_profiles && !po; i++)
			if (strcmp(s->profiles[i].name, pname) == 0)
				po = &s->profiles[i];
		if (po == NULL)
			return *ret_err = "no profile of that name in the daemon's configuration", -ENOENT;
		if (app_id && strcmp(app_id, po->app_id) != 0)
			return *ret_err = "app-id differs from the configured profile's app-id", -EINVAL;
		if (server && strcmp(server, profile_option_server(s, po)) != 0)
			return *ret_err = "server differs from the configured profile's server", -EINVAL;
	} else if (by_app_id) {
		for (size_t i = 0; i < s->opt.n_profiles && !po; i++)
			if (strcmp(s->profiles[i].app_id, app_id) == 0 &&
			    (!server || strcmp(server, profile_option_server(s, &s->profiles[i])) == 0))
				po = &s->profiles[i];
	}
	if (po) {
		ret->name = po->name;
		ret->app_id = po->app_id;
		ret->server = profile_option_server(s, po);
		ret->api_uri = api_uri ? api_uri : po->api_uri;
		ret->token = token ? token : po->token;
		ret->ca_file = po->ca_file ? po->ca_file : s->opt.ca_file;
	} else {
		ret->app_id = app_id;
		ret->server = server ? server : s->opt.default_server;
		ret->api_uri = api_uri;
		ret->token = token;
		ret->ca_file = s->opt.ca_file;
	}
	/* Unless an API URI was configured, a server other than Instant's own
	 * serves its auth endpoints beside the sync socket. */
	if (!ret->api_uri && strcmp(s->opt.default_api_uri, CONFIG_DEFAULT_API_URI) == 0 &&
	    strcmp(ret->server, CONFIG_DEFAULT_SERVER) != 0) {
		if ((ret->derived_api_uri = api_uri_for(ret->server)) == NULL)
			return -ENOMEM;
		ret->api_uri = ret->derived_api_uri;
	}
	if (!ret->api_uri)
		ret->api_uri = s->opt.default_api_uri;
	return 0;
}

/* Two configured profiles are two profiles even when they share the server
 * and app id (say, two users); an unconfigured one is its server and app id. */
static char *
profile_key_of(const char *name, const char *server, const char *app_id)
{
	char *key = NULL;

	if (name ? asprintf(&key, "%s\n%s\nprofile %s", server, app_id, name) < 0 :
	    asprintf(&key, "%s\n%s", server, app_id) < 0)
		return NULL;
	return key;
}

static char *
profile_key(const struct profile_spec *sp)
{
	return profile_key_of(sp->name, sp->server, sp->app_id);
}

/* Open (or find) the profile sp describes. db_path: the database to use, when
 * start-up found it; NULL = the profile's own. */
static int
profile_open(struct sync *s, const struct profile_spec *sp, const char *db_path, struct profile **ret)
{
	_cleanup_free_ char *key = profile_key(sp);
	struct upstream_config ucfg = { 0 };
	const char *name = sp->name, *app_id = sp->app_id, *server = sp->server;
	const char *api_uri = sp->api_uri, *token = sp->token, *ca_file = sp->ca_file;
	struct profile *p;
	int r;

	if (key == NULL)
		return -ENOMEM;
	TAILQ_FOREACH(p, &s->profiles_list, entry)
		if (strcmp(p->key, key) == 0) {
			/* A program that brings a token signs the profile in with it. */
			if (token && (p->token == NULL || strcmp(p->token, token) != 0)) {
				r = profile_set_token(p, token);
				if (r < 0)
					return r;
			}
			*ret = p;
			return 0;
		}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->s = s;
	TAILQ_INIT(&p->queries);
	TAILQ_INIT(&p->outbox);
	TAILQ_INIT(&p->writes);
	p->key = TAKE_PTR(key);
	p->app_id = strdup(app_id);
	p->name = strdup(name ? name : app_id);
	p->server = strdup(server);
	p->api_uri = xstrdup(api_uri);
	p->ca_file = xstrdup(ca_file);
	p->token = xstrdup(token);
	p->configured = sp->name != NULL;
	p->server_attrs = attrs_new();
	p->attrs = attrs_new();
	if (!p->app_id || !p->name || !p->server || !p->server_attrs || !p->attrs ||
	    (db_path ? (p->db_path = strdup(db_path)) == NULL :
	    profile_db_path(s, sp->name, app_id, server, &p->db_path) < 0)) {
		profile_free(p);
		return -ENOMEM;
	}
	{
		/* Made by us (never through a planted link) or already ours. */
		_cleanup_free_ char *err = NULL;

		r = fs_check_file(p->db_path, true, &err);
		if (r < 0) {
			log_error("%s: %s", p->name, err ? err : strerror(-r));
			profile_free(p);
			return r;
		}
	}
	r = db_open(p->db_path, &p->db);
	if (r < 0) {
		log_error("%s: cannot open %s: %s", p->name, p->db_path, strerror(-r));
		profile_free(p);
		return r;
	}
	note_recovery(p->db, p->name);
	if (s->opt.max_database_bytes > 0 && (r = db_set_size_limit(p->db, s->opt.max_database_bytes)) < 0)
		log_warn("%s: cannot limit the database size: %s", p->name, strerror(-r));
	(void)db_meta_get(p->db, "recovered-from", &p->recovered_from);
	if (p->token == NULL)
		(void)profile_read_token(p->db_path, &p->token);	/* it logs why not */
	if ((r = db_meta_set(p->db, "server", p->server)) < 0 ||
	    (r = db_meta_set(p->db, "app-id", p->app_id)) < 0 ||
	    (r = db_meta_set(p->db, "name", p->name)) < 0 ||
	    (p->token && (r = profile_write_token(p)) < 0) ||
	    (r = profile_rebuild_attrs(p, true)) < 0 ||
	    (r = profile_load_outbox(p)) < 0) {
		log_error("%s: cannot prepare the profile: %s", p->name, strerror(-r));
		profile_free(p);
		return r;
	}
	{
		/* The server attrs mirrored last time, so offline writes reuse them. */
		_cleanup_json_ cJSON *all = NULL;
		const cJSON *x;

		if (db_attrs_load(p->db, &all) == 0)
			cJSON_ArrayForEach(x, all)
				if (!attr_unsynced(x))
					(void)attrs_add(p->server_attrs, x);
		(void)profile_rebuild_attrs(p, true);
	}
	ucfg.url = p->server;
	ucfg.app_id = p->app_id;
	ucfg.refresh_token = p->token;
	ucfg.ca_file = p->ca_file;
	ucfg.backoff_base_ms = s->opt.backoff_base_ms;
	ucfg.backoff_cap_ms = s->opt.backoff_cap_ms;
	ucfg.ping_interval_s = s->opt.ping_interval_s;
	ucfg.idle_timeout_s = s->opt.idle_timeout_s;
	ucfg.connect_timeout_s = s->opt.connect_timeout_s;
	if (p->token)
		(void)log_add_secret(p->token);
	r = upstream_new(s->ctx, s->vh, &ucfg, &profile_upstream_cb, p, &p->up);
	if (r < 0) {
		log_error("%s: bad server URL %s: %s", p->name, p->server, strerror(-r));
		profile_free(p);
		return r;
	}
	TAILQ_INSERT_TAIL(&s->profiles_list, p, entry);
	r = upstream_start(p->up);
	if (r < 0) {
		log_warn("%s: cannot start connecting: %s", p->name, strerror(-r));
		p->unreachable = true;	/* nothing will answer: do not make queries wait */
	}
	upstream_transact_watch(p->up, s->opt.transact_timeout_s);
	log_info("%s: profile open (%s, app %s)", p->name, p->server, p->app_id);
	*ret = p;
	return 0;
}

/* ---- local ops ---- */

static void
op_init(struct client *c, const cJSON *msg, const char *ceid)
{
	struct sync *s = c->s;
	const char *app_id = json_get_string(msg, "app-id");
	const char *server = json_get_string(msg, "server");
	const char *api_uri = json_get_string(msg, "api-uri");
	const char *token = json_get_string(msg, "refresh-token");
	const char *pname = json_get_string(msg, "profile"), *why = NULL;
	struct profile_spec spec = { 0 };
	_cleanup_json_ cJSON *out = NULL;
	struct profile *p;
	int r;

	if (c->p) {
		client_error(c, ceid, "invalid-request", "init has already run on this connection");
		return;
	}
	if (pname == NULL && app_id == NULL) {
		client_error(c, ceid, "invalid-request", "init needs an app-id (or a profile)");
		return;
	}
	if (app_id && !uuid_valid(app_id)) {
		client_error(c, ceid, "invalid-request", "app-id must be a UUID");
		return;
	}
	if (server && strncmp(server, "ws://", 5) != 0 && strncmp(server, "wss://", 6) != 0) {
		client_error(c, ceid, "invalid-request", "server must be a ws:// or wss:// URL");
		return;
	}
	r = profile_resolve(s, pname, true, app_id, server, api_uri, token, &spec, &why);
	if (r < 0) {
		if (why)
			client_error(c, ceid, "invalid-request", "profile '%s': %s", pname ? pname : "",
			    why);
		else
			client_error(c, ceid, "internal", "%s", strerror(-r));
		profile_spec_clear(&spec);
		return;
	}
	r = profile_open(s, &spec, NULL, &p);
	profile_spec_clear(&spec);
	if (r < 0) {
		client_error(c, ceid, r == -ENOSPC ? "storage-full" : "internal",
		    "cannot open the profile: %s", strerror(-r));
		return;
	}
	c->p = p;
	p->nclients++;
	free(c->name);
	c->name = xstrdup(json_get_string(msg, "client-name"));
	out = reply_new("init-ok", ceid);
	cJSON_AddNumberToObject(out, "protocol-version", IPC_PROTOCOL_VERSION);
	cJSON_AddItemToObject(out, "status", profile_status_json(p));
	client_send(c, out);
}

static int
parse_policy(const char *s)
{
	if (s == NULL || strcmp(s, "cache-first") == 0)
		return ONCE_CACHE_FIRST;
	if (strcmp(s, "network-only") == 0)
		return ONCE_NETWORK_ONLY;
	if (strcmp(s, "cache-only") == 0)
		return ONCE_CACHE_ONLY;
	return -1;
}

/* A day: longer is a mistake, and the timer math stays far from overflow. */
#define QUERY_TIMEOUT_MAX_MS 86400000

/* A query-once whose timeout-ms passed without an answer from the server. */
static void
listener_timeout_cb(lws_sorted_usec_list_t *sul)
{
	struct listener *l = lws_container_of(sul, struct listener, timeout);
	struct query *q = l->q;

	client_error(l->c, l->ceid, "timeout", "the server did not answer within timeout-ms "
	    "(the daemon is %s)", profile_online(q->p) ? "connected" : "still connecting");
	listener_free(l);
	query_maybe_release(q);
}

static void
op_add_query(struct client *c, const cJSON *msg, const char *ceid, bool once)
{
	const cJSON *qj = json_get(msg, "q");
	_cleanup_free_ char *err = NULL;
	struct listener *l;
	struct query *q;
	int64_t timeout_ms = 0;
	int policy = ONCE_NONE, r;
	bool no_partial = cJSON_IsFalse(json_get(msg, "allow-partial"));

	if (instaql_validate(qj, &err) < 0) {
		client_error(c, ceid, "invalid-query", "%s", err ? err : "invalid query");
		return;
	}
	if (once) {
		const cJSON *t = json_get(msg, "timeout-ms");

		policy = parse_policy(json_get_string(msg, "policy"));
		if (policy < 0) {
			client_error(c, ceid, "invalid-request",
			    "policy must be cache-first, network-only or cache-only");
			return;
		}
		if (t && (!cJSON_IsNumber(t) || t->valuedouble < 1 || t->valuedouble > QUERY_TIMEOUT_MAX_MS)) {
			client_error(c, ceid, "invalid-request", "timeout-ms must be a number from 1 to %d",
			    QUERY_TIMEOUT_MAX_MS);
			return;
		}
		timeout_ms = t ? (int64_t)t->valuedouble : 0;
	} else if (c->nsubs >= c->s->opt.max_subs_per_conn) {
		client_error(c, ceid, "too-many-subscriptions", "at most %zu subscriptions per connection",
		    c->s->opt.max_subs_per_conn);
		return;
	}
	r = query_get(c->p, qj, &q);
	if (r < 0) {
		client_error(c, ceid, "internal", "%s", strerror(-r));
		return;
	}
	if (once && policy == ONCE_CACHE_ONLY && !query_has_result(q) && no_partial) {
		client_error(c, ceid, "not-found", "this query is not in the cache");
		query_maybe_release(q);
		return;
	}
	/* A query-once that needs the server waits while the session is still
	 * connecting (a fresh daemon, a new profile) and fails only once the
	 * daemon knows it cannot have an answer: the attempt failed, or timeout-ms. */
	if (once && !profile_online(c->p) && c->p->unreachable &&
	    (policy == ONCE_NETWORK_ONLY || (policy == ONCE_CACHE_FIRST && !query_has_result(q) &&
	    (no_partial || !profile_partial_mode(c->p))))) {
		const char *why, *type = profile_unreachable_error(c->p, &why);

		client_error(c, ceid, type, "%s%s", policy == ONCE_CACHE_FIRST && strcmp(type, "offline") == 0 ?
		    "this query is not cached and " : "", why);
		query_maybe_release(q);
		return;
	}
	if (!once && c->p->up && upstream_get_state(c->p->up) == UPSTREAM_APP_NOT_FOUND && !query_has_result(q)) {
		const char *why, *type = profile_unreachable_error(c->p, &why);

		/* Told, but kept: it is answered if the server later knows the app. */
		client_error(c, ceid, type, "%s", why);
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL || (ceid && (l->ceid = strdup(ceid)) == NULL)) {
		free(l);
		client_error(c, ceid, "internal", "out of memory");
		query_maybe_release(q);
		return;
	}
	l->q = q;
	l->c = c;
	l->once = policy;
	l->no_partial = no_partial;
	LIST_INSERT_HEAD(&q->listeners, l, by_query);
	LIST_INSERT_HEAD(&c->listeners, l, by_client);
	if (timeout_ms > 0)
		lws_sul_schedule(c->s->ctx, 0, &l->timeout, listener_timeout_cb,
		    (lws_usec_t)timeout_ms * LWS_US_PER_MS);
	if (!once)
		c->nsubs++;
	if (policy != ONCE_CACHE_ONLY)	/* cache-only never asks the server */
		query_subscribe(q);
	if (!(once && policy == ONCE_NETWORK_ONLY))
		query_push(q);	/* without a result, only a partial answer if l takes one */
}

static void
op_remove_query(struct client *c, const cJSON *msg, const char *ceid)
{
	const cJSON *qj = json_get(msg, "q");
	/* Without q, the request's client-event-id names the add-query it ends (PROTOCOL.md). */
	const char *sub = json_get_string(msg, "query-event-id") ? json_get_string(msg, "query-event-id") :
	    (qj ? NULL : ceid);
	_cleanup_free_ char *key = qj ? json_canonical(qj) : NULL;
	_cleanup_json_ cJSON *out = NULL;
	struct listener *l, *next;
	int removed = 0;

	for (l = LIST_FIRST(&c->listeners); l; l = next) {
		struct query *q = l->q;

		next = LIST_NEXT(l, by_client);
		if (l->once)
			continue;
		if ((key && strcmp(q->key, key) == 0) || (sub && l->ceid && strcmp(l->ceid, sub) == 0)) {
			listener_free(l);
			query_maybe_release(q);
			removed++;
		}
	}
	if (!removed) {
		client_error(c, ceid, "not-found", "no such subscription on this connection");
		return;
	}
	out = reply_new("remove-query-ok", ceid);
	if (qj)
		cJSON_AddItemToObject(out, "q", cJSON_Duplicate(qj, 1));
	client_send(c, out);
}

/* The JS client decides create vs update mode on its server stores, without
 * the optimistic layer: so do we, over every loaded query's base store. */
static bool
mode_entity_exists(void *ud, const char *etype, const char *eid)
{
	struct profile *p = ud;
	struct query *q;
	struct tstore *ts;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_has_result(q) && query_base(q, &ts) == 0 && tstore_has_entity(ts, etype, eid))
			return true;
	return false;
}

static bool
mode_lookup_exists(void *ud, const char *attr, const cJSON *value)
{
	struct profile *p = ud;
	struct query *q;
	struct tstore *ts;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_has_result(q) && query_base(q, &ts) == 0 && tstore_has_av(ts, attr, value))
			return true;
	return false;
}

static void
op_transact(struct client *c, const cJSON *msg, const char *ceid)
{
	struct profile *p = c->p;
	const cJSON *ops = json_get(msg, "ops"), *raw = json_get(msg, "tx-steps");
	_cleanup_json_ cJSON *steps = NULL, *newattrs = NULL;
	_cleanup_free_ char *err = NULL;
	struct instaml_ctx ictx = {
		.entity_exists = mode_entity_exists,
		.lookup_exists = mode_lookup_exists,
		.userdata = p,
	};
	struct pending_write *w;
	struct db_mutation *m;
	const cJSON *a;
	char mid[37];
	int r;

	if (ops) {
		r = instaml_transform(p->attrs, ops, &ictx, &steps, &err);
	} else {
		r = instaml_validate_steps(raw, &err);
		if (r == 0 && (steps = cJSON_Duplicate(raw, 1)) == NULL)
			r = -ENOMEM;
	}
	if (r < 0) {
		client_error(c, ceid, r == -EINVAL ? "invalid-transaction" : "internal", "%s",
		    err ? err : strerror(-r));
		return;
	}
	/* New attrs join the optimistic attrs at once so the next write reuses them. */
	r = instaml_new_attrs(steps, &newattrs);
	if (r < 0) {
		client_error(c, ceid, "internal", "%s", strerror(-r));
		return;
	}
	if (cJSON_GetArraySize(newattrs) > 0) {
		r = db_attrs_add_local(p->db, newattrs);
		if (r < 0) {
			client_error(c, ceid, r == -ENOSPC ? "storage-full" : "internal",
			    "the write could not be stored: %s", strerror(-r));
			return;
		}
		cJSON_ArrayForEach(a, newattrs)
			if (!attrs_by_id(p->attrs, attr_id(a)))
				(void)attrs_add(p->attrs, a);
		profile_reads_changed(p);
	}
	if (uuid_v4(mid) < 0) {
		client_error(c, ceid, "internal", "no randomness for a mutation id");
		return;
	}
	m = calloc(1, sizeof(*m));
	w = calloc(1, sizeof(*w));
	if (m == NULL || w == NULL) {
		free(m);
		free(w);
		client_error(c, ceid, "internal", "out of memory");
		return;
	}
	m->mutation_id = strdup(mid);
	m->ops = ops ? cJSON_Duplicate(ops, 1) : NULL;
	m->steps = TAKE_PTR(steps);
	m->state = DB_MUT_PENDING;
	m->origin = xstrdup(c->name ? c->name : "unnamed");
	w->m = m;
	w->origin = c;
	w->ceid = xstrdup(ceid);
	w->ord = ++p->next_ord;
	TAILQ_INSERT_TAIL(&p->writes, w, entry);
	{
		struct mref x = mref_of_write(w);

		profile_on_write(p, NULL, &x);
	}
	if (!p->flush_armed) {
		/* Zero delay: runs after the loop has read every request that is ready. */
		lws_sul_schedule(c->s->ctx, 0, &p->flush, profile_flush_cb, 1);
		p->flush_armed = true;
	}
}

static cJSON *
mutation_json(const struct mutation *m)
{
	cJSON *o = cJSON_CreateObject();
	const char *st;

	cJSON_AddStringToObject(o, "mutation-id", m->m->mutation_id);
	cJSON_AddItemToObject(o, "seq", json_new_int64(m->m->seq));
	st = db_mut_state_to_string(m->m->state);
	cJSON_AddStringToObject(o, "state", st ? st : "unknown");
	if (m->m->tx_id)
		cJSON_AddItemToObject(o, "tx-id", json_new_int64(m->m->tx_id));
	if (m->m->ops)
		cJSON_AddItemToObject(o, "ops", cJSON_Duplicate(m->m->ops, 1));
	cJSON_AddItemToObject(o, "tx-steps", cJSON_Duplicate(m->m->steps, 1));
	if (m->m->error) {
		cJSON *e = cJSON_Parse(m->m->error);

		cJSON_AddItemToObject(o, "error", e ? e : cJSON_CreateString(m->m->error));
	}
	cJSON_AddNumberToObject(o, "created", (double)m->m->created_ms);
	cJSON_AddNumberToObject(o, "updated", (double)m->m->updated_ms);
	if (m->m->origin)
		cJSON_AddStringToObject(o, "origin", m->m->origin);
	return o;
}

static void
op_list_mutations(struct client *c, const cJSON *msg, const char *ceid)
{
	_cleanup_json_ cJSON *out = reply_new("mutations", ceid);
	cJSON *arr = cJSON_AddArrayToObject(out, "mutations");
	struct mutation *m;

	TAILQ_FOREACH(m, &c->p->outbox, entry)
		cJSON_AddItemToArray(arr, mutation_json(m));
	if (cJSON_IsTrue(json_get(msg, "attr-names")))
		cJSON_AddItemToObject(out, "attr-names", mutations_attr_names(c->p));
	client_send(c, out);
}

static void
op_retry_or_discard(struct client *c, const cJSON *msg, const char *ceid, bool retry)
{
	struct profile *p = c->p;
	struct mutation *m = mutation_find(p, json_get_string(msg, "mutation-id"));
	_cleanup_json_ cJSON *out = NULL;
	struct mref before;
	int r;

	if (m == NULL) {
		client_error(c, ceid, "not-found", "no such mutation");
		return;
	}
	before = mref_of(m);
	if (retry) {
		if (m->m->state != DB_MUT_FAILED) {
			client_error(c, ceid, "invalid-request", "only a failed mutation can be retried");
			return;
		}
		/* Stored as sent when it was: the mark survives the retry. */
		r = db_outbox_set_state(p->db, m->m->mutation_id,
		    m->ever_sent ? DB_MUT_SENT : DB_MUT_PENDING, 0, NULL);
		if (r < 0) {
			client_error(c, ceid, "internal", "%s", strerror(-r));
			return;
		}
		m->m->state = DB_MUT_PENDING;
		m->marked = m->ever_sent;
		m->sent = false;
		m->origin = c;
		free(m->origin_ceid);
		m->origin_ceid = xstrdup(ceid);
	} else {
		if (m->m->state == DB_MUT_CONFIRMED) {
			client_error(c, ceid, "invalid-request", "a confirmed mutation cannot be discarded");
			return;
		}
		r = db_outbox_remove(p->db, m->m->mutation_id);
		if (r < 0) {
			client_error(c, ceid, "internal", "%s", strerror(-r));
			return;
		}
	}
	out = reply_new(retry ? "retry-mutation-ok" : "discard-mutation-ok", ceid);
	cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
	client_send(c, out);
	if (retry) {
		struct mref after = mref_of(m);

		profile_on_write(p, &before, &after);
	} else {
		profile_on_write(p, &before, NULL);
		replay_resolved(p, m);
		TAILQ_REMOVE(&p->outbox, m, entry);
		mutation_free(m);
	}
	profile_pump(p);
	profile_status_changed(p);
}

static void
op_status(struct client *c, const cJSON *msg, const char *ceid, bool watch)
{
	_cleanup_json_ cJSON *out = reply_new("status", ceid);

	if (c->p)
		cJSON_AddItemToObject(out, "status", profile_status_json(c->p));
	else {
		cJSON *all = cJSON_AddArrayToObject(out, "profiles");
		struct profile *p;

		TAILQ_FOREACH(p, &c->s->profiles_list, entry)
			cJSON_AddItemToArray(all, profile_status_json(p));
		status_add_unopened(c->s, all);
	}
	if (watch)	/* "enabled": false stops the pushes again */
		c->watch_status = !cJSON_IsFalse(json_get(msg, "enabled"));
	client_send(c, out);
}

static void
op_room(struct client *c, const char *op, const cJSON *msg, const char *ceid)
{
	struct profile *p = c->p;
	int r;

	if (c->rooms == NULL) {
		struct rooms_config rc = {
			.ctx = c->s->ctx, .vh = c->s->vh, .server = p->server, .app_id = p->app_id,
			.token = p->token, .ca_file = p->ca_file,
			.backoff_base_ms = c->s->opt.backoff_base_ms,
			.backoff_cap_ms = c->s->opt.backoff_cap_ms,
			.ping_interval_s = c->s->opt.ping_interval_s,
			.idle_timeout_s = c->s->opt.idle_timeout_s,
			.connect_timeout_s = c->s->opt.connect_timeout_s,
		};

		if (strcmp(op, "join-room") != 0) {
			client_error(c, ceid, "not-found", "not in this room; send join-room first");
			return;
		}
		r = rooms_new(&rc, c->conn, &c->rooms);
		if (r < 0) {
			client_error(c, ceid, "internal", "cannot open a presence session: %s", strerror(-r));
			return;
		}
	}
	rooms_request(c->rooms, op, msg, ceid);
}

/* ---- signing in (protocol.md 9.1) ---- */

static void
auth_call_free(struct auth_call *a)
{
	LIST_REMOVE(a, entry);
	free(a->ceid);
	free(a->op);
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

	if (strcmp(a->op, "sign-out") == 0) {
		/* Forgotten here whatever the server said; the reply tells which. */
		_cleanup_json_ cJSON *out = reply_new("sign-out-ok", a->ceid);

		cJSON_AddBoolToObject(out, "server-signed-out", status == 200);
		client_send(a->c, out);
	} else if (status != 200) {
		auth_reply_error(a, status, body);
	} else if (strcmp(a->op, "send-magic-code") == 0) {
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

static void
op_auth(struct client *c, const char *op, const cJSON *msg, const char *ceid)
{
	struct profile *p = c->p;
	_cleanup_json_ cJSON *body = cJSON_CreateObject();
	const char *path, *method = json_get_string(msg, "method");
	struct auth_call *a;
	int r;

	if (strcmp(op, "whoami") == 0) {
		_cleanup_json_ cJSON *out = reply_new("whoami", ceid);

		cJSON_AddItemToObject(out, "user", user_public(p->user));
		cJSON_AddBoolToObject(out, "signed-in", p->token != NULL && !p->signed_out);
		cJSON_AddStringToObject(out, "state", profile_state(p));
		client_send(c, out);
		return;
	}
	if (strcmp(op, "send-magic-code") == 0) {
		path = "/runtime/auth/send_magic_code";
		cJSON_AddStringToObject(body, "app-id", p->app_id);
		cJSON_AddStringToObject(body, "email", json_get_string(msg, "email"));
	} else if (strcmp(op, "sign-out") == 0) {
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
	if (a == NULL || (a->op = strdup(op)) == NULL || (ceid && (a->ceid = strdup(ceid)) == NULL)) {
		if (a)
			free(a->op);
		free(a);
		client_error(c, ceid, "internal", "out of memory");
		return;
	}
	a->s = c->s;
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

/* ---- state, replay progress, and managing what is stored ---- */

/* With o: add what status shows beyond the session (since when the state
 * holds, replay progress). Without: only note a change of state. */
static void
profile_status_extra(struct profile *p, cJSON *o)
{
	const char *st = profile_state(p);

	if (p->state_shown == NULL || strcmp(p->state_shown, st) != 0) {
		p->state_shown = st;
		p->state_since_ms = now_ms();
	}
	if (o == NULL)
		return;
	cJSON_AddNumberToObject(o, "state-since", (double)p->state_since_ms);
	if (p->replay_total) {
		cJSON *r = cJSON_AddObjectToObject(o, "replay");

		cJSON_AddNumberToObject(r, "done", (double)p->replay_done);
		cJSON_AddNumberToObject(r, "total", (double)p->replay_total);
	}
}

/* A session is up: the writes waiting to be sent are the backlog it replays
 * (a reconnect during a replay adds what is not counted yet). */
static void
replay_begin(struct profile *p)
{
	struct mutation *m;
	size_t n = 0;

	if (!profile_can_write(p))
		return;		/* nothing is sent: no progress to show */
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (!m->replaying && (m->m->state == DB_MUT_PENDING || m->m->state == DB_MUT_SENT)) {
			m->replaying = true;
			n++;
		}
	if (n == 0)
		return;
	if (p->replay_total == 0) {
		p->replay_done = 0;
		p->replay_start_us = mono_us();
	}
	p->replay_total += n;
	log_info("%s: replaying %zu queued writes", p->name, p->replay_total - p->replay_done);
}

/* m was confirmed, rejected or discarded: one more of the backlog is done. */
static void
replay_resolved(struct profile *p, struct mutation *m)
{
	if (!m->replaying)
		return;
	m->replaying = false;
	if (++p->replay_done < p->replay_total)
		return;
	log_info("%s: replay finished: %zu writes in %.1f s", p->name, p->replay_total,
	    (double)(mono_us() - p->replay_start_us) / 1e6);
	p->replay_total = p->replay_done = 0;
}

/* The database of a profile (see profile_key); the same name whoever opens it.
 * name: the configured profile's name, NULL for an unconfigured one. */
static int
profile_db_path(struct sync *s, const char *name, const char *app_id, const char *server,
    char **ret)
{
	_cleanup_free_ char *key = profile_key_of(name, server, app_id);
	char digest[17];

	if (key == NULL)
		return -ENOMEM;
	hex_digest(key, digest);
	if (asprintf(ret, "%s/%s-%s.sqlite", s->opt.state_dir, app_id, digest) < 0)
		return -ENOMEM;
	return 0;
}

/* {attr-id: "etype.label"} for the attrs the outbox's tx-steps name, so a
 * person reads what a write does. */
static cJSON *
mutations_attr_names(struct profile *p)
{
	cJSON *names = cJSON_CreateObject();
	struct mutation *m;
	const cJSON *st;

	TAILQ_FOREACH(m, &p->outbox, entry)
		cJSON_ArrayForEach(st, m->m->steps) {
			const cJSON *aid = cJSON_GetArrayItem(st, 2);
			const cJSON *attr;
			char *name = NULL;

			if (!cJSON_IsString(aid) || json_get(names, aid->valuestring))
				continue;
			attr = attrs_by_id(p->attrs, aid->valuestring);
			if (attr == NULL || !attr_fwd_etype(attr) || !attr_fwd_label(attr) ||
			    asprintf(&name, "%s.%s", attr_fwd_etype(attr),
			    attr_fwd_label(attr)) < 0)
				continue;
			cJSON_AddStringToObject(names, aid->valuestring, name);
			free(name);
		}
	return names;
}

/* One profile with data or configuration, open or not. */
struct stored {
	struct profile *p;		/* borrowed: the open profile, or NULL */
	char *name, *app_id, *server, *path;	/* owned */
	bool configured;
};

static void
stored_free(struct stored *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].app_id);
		free(v[i].server);
		free(v[i].path);
	}
	free(v);
}

static int
stored_add(struct stored **v, size_t *n, struct profile *p, const char *name, const char *app_id,
    const char *server, char *path, bool configured)
{
	struct stored *nv;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].path, path) == 0) {
			(*v)[i].configured |= configured;
			free(path);
			return 0;
		}
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL) {
		free(path);
		return -ENOMEM;
	}
	*v = nv;
	nv[*n] = (struct stored){ .p = p, .name = xstrdup(name ? name : app_id),
	    .app_id = xstrdup(app_id), .server = xstrdup(server), .path = path,
	    .configured = configured };
	(*n)++;
	return nv[*n - 1].name && nv[*n - 1].app_id && nv[*n - 1].server ? 0 : -ENOMEM;
}

/* Every profile: the open ones, the configured ones, and every database in
 * the state directory (named by what it recorded when it was last open). */
static int
stored_collect(struct sync *s, struct stored **ret, size_t *ret_n)
{
	struct stored *v = NULL;
	size_t n = 0;
	struct profile *p;
	DIR *d;
	int r = 0;

	TAILQ_FOREACH(p, &s->profiles_list, entry)
		if (r == 0)
			r = stored_add(&v, &n, p, p->name, p->app_id, p->server, xstrdup(p->db_path), false);
	for (size_t i = 0; r == 0 && i < s->opt.n_profiles; i++) {
		const struct sync_profile_option *po = &s->profiles[i];
		const char *server = po->server ? po->server : s->opt.default_server;
		char *path = NULL;

		r = profile_db_path(s, po->name, po->app_id, server, &path);
		if (r == 0)
			r = stored_add(&v, &n, NULL, po->name, po->app_id, server, path, true);
	}
	d = r == 0 ? opendir(s->opt.state_dir) : NULL;
	for (struct dirent *de; d && r == 0 && (de = readdir(d));) {
		_cleanup_free_ char *server = NULL, *app = NULL, *name = NULL;
		size_t len = strlen(de->d_name);
		struct db *db = NULL;
		char *path = NULL;
		bool known = false;

		if (len < 8 || strcmp(de->d_name + len - 7, ".sqlite") != 0)
			continue;
		if (asprintf(&path, "%s/%s", s->opt.state_dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(v[i].path, path) == 0;
		/* Someone else's file is not a profile of ours (as at start-up). */
		if (!known) {
			_cleanup_free_ char *err = NULL;

			if (fs_check_file(path, false, &err) < 0)
				known = true;
		}
		if (known || db_open(path, &db) < 0) {
			free(path);
			continue;
		}
		(void)db_meta_get(db, "server", &server);
		(void)db_meta_get(db, "app-id", &app);
		(void)db_meta_get(db, "name", &name);
		db_close(db);
		if (server && app)
			r = stored_add(&v, &n, NULL, name, app, server, path, false);
		else
			free(path);
	}
	if (d)
		closedir(d);
	if (r < 0) {
		stored_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The entry a request's "profile" names (a name, else an app id); NULL after
 * answering the request with the error. */
static struct stored *
stored_find(struct client *c, struct stored *v, size_t n, const char *ceid, const char *name)
{
	struct stored *hit = NULL;
	size_t hits = 0;

	for (int pass = 0; pass < 2 && hits == 0; pass++)
		for (size_t i = 0; i < n; i++)
			if (strcmp(pass == 0 ? v[i].name : v[i].app_id, name) == 0) {
				hit = &v[i];
				hits++;
			}
	if (hits == 1)
		return hit;
	if (hits == 0)
		client_error(c, ceid, "not-found", "no profile named %s (instantctl profiles lists them)",
		    name);
	else
		client_error(c, ceid, "invalid-request", "%zu profiles are named %s; name one by its "
		    "app id", hits, name);
	return NULL;
}

/* The database of v: the open profile's, or *tmp opened for this request
 * (NULL when there is no file). */
static int
stored_db(const struct stored *v, struct db **tmp, struct db **ret)
{
	struct stat st;
	int r;

	*tmp = NULL;
	if (v->p) {
		*ret = v->p->db;
		return 0;
	}
	*ret = NULL;
	if (stat(v->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	r = db_open(v->path, tmp);
	if (r < 0)
		return r;
	*ret = *tmp;
	return 0;
}

/* Configured profiles that are not open: in status too, so a person sees
 * every profile they set up. */
static void
status_add_unopened(struct sync *s, cJSON *all)
{
	for (size_t i = 0; i < s->opt.n_profiles; i++) {
		const struct sync_profile_option *po = &s->profiles[i];
		const char *server = po->server ? po->server : s->opt.default_server;
		bool open = false;
		struct profile *p;
		cJSON *o;

		TAILQ_FOREACH(p, &s->profiles_list, entry)
			open |= strcmp(p->app_id, po->app_id) == 0 && strcmp(p->server, server) == 0;
		if (open)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "profile", po->name);
		cJSON_AddStringToObject(o, "app-id", po->app_id);
		cJSON_AddStringToObject(o, "server", server);
		cJSON_AddStringToObject(o, "state", "unopened");
		cJSON_AddItemToArray(all, o);
	}
}

static void
op_list_profiles(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	_cleanup_json_ cJSON *out = reply_new("profiles", ceid);
	cJSON *arr = cJSON_AddArrayToObject(out, "profiles");

	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		struct db *tmp = NULL, *db = NULL;
		int r;

		cJSON_AddStringToObject(o, "profile", v[i].name);
		cJSON_AddStringToObject(o, "app-id", v[i].app_id);
		cJSON_AddStringToObject(o, "server", v[i].server);
		cJSON_AddStringToObject(o, "database", v[i].path);
		cJSON_AddBoolToObject(o, "open", v[i].p != NULL);
		cJSON_AddBoolToObject(o, "configured", v[i].configured);
		r = stored_db(&v[i], &tmp, &db);
		if (r == 0)
			r = store_summary(db, v[i].path, o);
		if (r < 0)
			cJSON_AddStringToObject(o, "error", strerror(-r));
		db_close(tmp);
		if (v[i].p) {
			/* The loop's view is newer than the database's. */
			cJSON_DeleteItemFromObjectCaseSensitive(o, "queue");
			cJSON_AddItemToObject(o, "queue", profile_queue_json(v[i].p));
			if (v[i].p->last_sync_ms)
				cJSON_AddNumberToObject(o, "last-sync", (double)v[i].p->last_sync_ms);
		}
		cJSON_AddItemToArray(arr, o);
	}
	client_send(c, out);
}

/* Close an open profile for good: its programs are disconnected (they would
 * otherwise write into a database that is gone), its sign-in calls end. */
static void
profile_close(struct profile *p)
{
	struct sync *s = p->s;
	struct auth_call *a, *an;
	struct client *c;

	TAILQ_FOREACH(c, &s->clients, entry) {
		struct listener *l;

		if (c->p != p)
			continue;
		while ((l = LIST_FIRST(&c->listeners)))
			listener_free(l);
		rooms_free(c->rooms);
		c->rooms = NULL;
		c->p = NULL;
		ipc_conn_close(c->conn);
	}
	for (a = LIST_FIRST(&s->auth_calls); a; a = an) {
		an = LIST_NEXT(a, entry);
		if (a->p != p)
			continue;
		auth_cancel(a->req);
		auth_call_free(a);
	}
	TAILQ_REMOVE(&s->profiles_list, p, entry);
	profile_free(p);
}

static void
op_forget_profile(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	struct stored *t = stored_find(c, v, n, ceid, json_get_string(msg, "profile"));
	_cleanup_json_ cJSON *out = NULL;
	size_t queued = 0;
	int r;

	if (t == NULL)
		return;
	if (t->p && c->p == t->p) {
		client_error(c, ceid, "invalid-request", "this connection uses %s; forget it from "
		    "a connection that did not init it", t->name);
		return;
	}
	if (t->p) {
		struct mutation *m;
		struct pending_write *w;

		TAILQ_FOREACH(m, &t->p->outbox, entry)
			queued += m->m->state != DB_MUT_CONFIRMED;
		TAILQ_FOREACH(w, &t->p->writes, entry)
			queued++;
	} else {
		struct db *tmp = NULL, *db = NULL;
		size_t counts[DB_MUT_STATE_MAX] = { 0 };

		r = stored_db(t, &tmp, &db);
		if (r == 0 && db)
			r = db_outbox_counts(db, counts);
		db_close(tmp);
		if (r < 0) {
			client_error(c, ceid, "internal", "cannot read %s: %s", t->path, strerror(-r));
			return;
		}
		queued = counts[DB_MUT_PENDING] + counts[DB_MUT_SENT] + counts[DB_MUT_FAILED];
	}
	if (queued && !cJSON_IsTrue(json_get(msg, "discard-queued"))) {
		out = reply_new("error", ceid);
		cJSON_AddStringToObject(out, "type", "invalid-request");
		cJSON_AddStringToObject(out, "message", "the profile has writes the server has not "
		    "taken; they would be lost (pass discard-queued to drop them)");
		cJSON_AddNumberToObject(out, "queued", (double)queued);
		client_send(c, out);
		return;
	}
	if (t->p) {
		profile_close(t->p);
		t->p = NULL;
	}
	r = store_remove_files(t->path);
	if (r < 0) {
		client_error(c, ceid, "internal", "cannot remove %s: %s", t->path, strerror(-r));
		return;
	}
	log_notice("%s: its stored data was removed on request (%zu queued writes dropped)",
	    t->name, queued);
	out = reply_new("forget-profile-ok", ceid);
	cJSON_AddStringToObject(out, "profile", t->name);
	cJSON_AddNumberToObject(out, "discarded", (double)queued);
	cJSON_AddBoolToObject(out, "configured", t->configured);
	client_send(c, out);
}

static void
op_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n,
    bool clear)
{
	struct stored *t = stored_find(c, v, n, ceid, json_get_string(msg, "profile"));
	_cleanup_json_ cJSON *out = NULL, *data = NULL;
	struct db *tmp = NULL, *db = NULL;
	int r, removed = 0;

	if (t == NULL)
		return;
	if (t->p) {
		struct query *q;

		/* Results waiting for the write-behind belong in the export and must
		 * not come back after a clear. */
		TAILQ_FOREACH(q, &t->p->queries, entry) {
			if (!clear)
				query_persist(q);
			q->dirty = false;
		}
	}
	r = stored_db(t, &tmp, &db);
	if (r == 0 && db)
		r = clear ? store_clear_cache(db, &removed) : store_export(db, &data);
	db_close(tmp);
	if (r < 0) {
		client_error(c, ceid, "internal", "cannot read %s: %s", t->path, strerror(-r));
		return;
	}
	out = reply_new(clear ? "clear-cache-ok" : "cache", ceid);
	cJSON_AddStringToObject(out, "profile", t->name);
	if (clear) {
		cJSON_AddNumberToObject(out, "removed", removed);
	} else {
		cJSON_AddItemToObject(out, "attrs", data ? cJSON_DetachItemFromObject(data, "attrs") :
		    cJSON_CreateArray());
		cJSON_AddItemToObject(out, "queries", data ? cJSON_DetachItemFromObject(data, "queries") :
		    cJSON_CreateArray());
	}
	client_send(c, out);
}

static void
op_export_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	op_cache(c, msg, ceid, v, n, false);
}

static void
op_clear_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	op_cache(c, msg, ceid, v, n, true);
}

/* The ops that manage stored profiles; they name a profile, so need no init. */
static bool
store_op(struct client *c, const char *op, const cJSON *msg, const char *ceid)
{
	static const struct {
		const char *name;
		void (*fn)(struct client *, const cJSON *, const char *, struct stored *, size_t);
	} ops[] = {
		{ "list-profiles", op_list_profiles },
		{ "forget-profile", op_forget_profile },
		{ "export-cache", op_export_cache },
		{ "clear-cache", op_clear_cache },
	};
	struct stored *v = NULL;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(op, ops[i].name) != 0)
			continue;
		r = stored_collect(c->s, &v, &n);
		if (r < 0) {
			client_error(c, ceid, "internal", "cannot list the profiles: %s", strerror(-r));
			return true;
		}
		ops[i].fn(c, msg, ceid, v, n);
		stored_free(v, n);
		return true;
	}
	return false;
}

/* ---- ipc callbacks ---- */

static void
sync_on_open(void *ud, struct ipc_conn *conn)
{
	struct sync *s = ud;
	struct client *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		ipc_conn_close(conn);
		return;
	}
	c->s = s;
	c->conn = conn;
	LIST_INIT(&c->listeners);
	TAILQ_INSERT_TAIL(&s->clients, c, entry);
	ipc_conn_set_data(conn, c);
}

static void
sync_on_close(void *ud, struct ipc_conn *conn)
{
	struct sync *s = ud;
	struct client *c = ipc_conn_get_data(conn);
	struct listener *l;
	struct profile *p;

	if (c == NULL)
		return;
	while ((l = LIST_FIRST(&c->listeners))) {
		struct query *q = l->q;

		listener_free(l);
		query_maybe_release(q);
	}
	/* Writes it made stay queued; only the reply path goes away. */
	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		struct mutation *m;
		struct pending_write *w;

		TAILQ_FOREACH(m, &p->outbox, entry)
			if (m->origin == c)
				m->origin = NULL;
		TAILQ_FOREACH(w, &p->writes, entry)
			if (w->origin == c)
				w->origin = NULL;
	}
	if (c->p)
		c->p->nclients--;
	{
		struct auth_call *a;

		LIST_FOREACH(a, &s->auth_calls, entry)
			if (a->c == c)
				a->c = NULL;
	}
	/* Leaving: its presence session closes, so the room sees the peer go. */
	rooms_free(c->rooms);
	c->rooms = NULL;
	TAILQ_REMOVE(&s->clients, c, entry);
	ipc_conn_set_data(conn, NULL);
	free(c->name);
	free(c);
}

static void
sync_on_request(void *ud, struct ipc_conn *conn, const cJSON *msg)
{
	struct client *c = ipc_conn_get_data(conn);
	const char *op = json_get_string(msg, "op");
	const char *ceid = json_get_string(msg, "client-event-id");

	/* ipc-server has checked the request's shape (ipc_protocol_check). */
	if (c == NULL || op == NULL)
		return;
	if (strcmp(op, "init") == 0) {
		op_init(c, msg, ceid);
		return;
	}
	if (strcmp(op, "status") == 0 || strcmp(op, "watch-status") == 0) {
		op_status(c, msg, ceid, strcmp(op, "watch-status") == 0);
		return;
	}
	if (store_op(c, op, msg, ceid))
		return;
	if (c->p == NULL) {
		client_error(c, ceid, "not-initialized", "send init first");
		return;
	}
	if (strcmp(op, "add-query") == 0)
		op_add_query(c, msg, ceid, false);
	else if (strcmp(op, "query-once") == 0)
		op_add_query(c, msg, ceid, true);
	else if (strcmp(op, "remove-query") == 0)
		op_remove_query(c, msg, ceid);
	else if (strcmp(op, "transact") == 0)
		op_transact(c, msg, ceid);
	else if (strcmp(op, "list-mutations") == 0)
		op_list_mutations(c, msg, ceid);
	else if (strcmp(op, "retry-mutation") == 0)
		op_retry_or_discard(c, msg, ceid, true);
	else if (strcmp(op, "discard-mutation") == 0)
		op_retry_or_discard(c, msg, ceid, false);
	else if (strcmp(op, "send-magic-code") == 0 || strcmp(op, "sign-in") == 0 ||
	    strcmp(op, "sign-out") == 0 || strcmp(op, "whoami") == 0)
		op_auth(c, op, msg, ceid);
	else
		op_room(c, op, msg, ceid);
}

const struct ipc_callbacks sync_ipc_callbacks = {
	.on_open = sync_on_open,
	.on_request = sync_on_request,
	.on_close = sync_on_close,
};

/* ---- lifecycle ---- */

static void
sync_options_clear(struct sync *s)
{
	for (size_t i = 0; s->profiles && i < s->opt.n_profiles; i++) {
		struct sync_profile_option *po = &s->profiles[i];

		free((char *)po->name);
		free((char *)po->app_id);
		free((char *)po->server);
		free((char *)po->api_uri);
		if (po->token)
			explicit_bzero((char *)po->token, strlen(po->token));
		free((char *)po->token);
		free((char *)po->ca_file);
	}
	free(s->profiles);
	free((char *)s->opt.state_dir);
	free((char *)s->opt.default_server);
	free((char *)s->opt.default_api_uri);
	free((char *)s->opt.ca_file);
	s->profiles = NULL;
	s->opt.n_profiles = 0;
}

static const struct sync_profile_option *
sync_find_profile(const struct sync *s, const char *name)
{
	for (size_t i = 0; i < s->opt.n_profiles; i++)
		if (strcmp(s->profiles[i].name, name) == 0)
			return &s->profiles[i];
	return NULL;
}

static bool
str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* After a reload, each open configured profile is resolved again: a changed
 * api-uri or token-file (one whose token changed) applies at once; a changed server or ca-file would
 * need a new session, so it is logged by name (the open session keeps the
 * old one until the daemon restarts; a server change makes programs that
 * init from now on get a new session). */
static void
sync_reapply_profiles(struct sync *s, const struct sync *old)
{
	struct profile *p;

	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		const struct sync_profile_option *po, *opo;
		struct profile_spec spec;
		const char *why;

		if (!p->configured)
			continue;
		po = sync_find_profile(s, p->name);
		if (po == NULL || strcmp(po->app_id, p->app_id) != 0) {
			log_notice("profile %s: no longer configured (or its app-id changed); its open "
			    "session stays until instantd restarts", p->name);
			continue;
		}
		if (profile_resolve(s, p->name, false, NULL, NULL, NULL, NULL, &spec, &why) < 0) {
			log_warn("profile %s: cannot apply the new configuration: out of memory", p->name);
			profile_spec_clear(&spec);
			continue;
		}
		if (str_differs(spec.server, p->server))
			log_notice("profile %s: 'server' changed; programs that init from now on use %s, "
			    "the open session stays on %s until instantd restarts", p->name, spec.server,
			    p->server);
		if (str_differs(spec.ca_file, p->ca_file))
			log_warn("profile %s: 'ca-file' changed; it takes effect only when instantd restarts",
			    p->name);
		if (str_differs(spec.api_uri, p->api_uri)) {
			char *u = strdup(spec.api_uri);

			if (u) {
				free(p->api_uri);
				p->api_uri = u;
				log_notice("profile %s: 'api-uri' is now %s", p->name, u);
			}
		}
		/* Only a token-file whose token changed: a sign-in since start-up stays. */
		opo = sync_find_profile(old, p->name);
		if (spec.token && (opo == NULL || str_differs(spec.token, opo->token)) &&
		    str_differs(spec.token, p->token)) {
			if (profile_set_token(p, spec.token) < 0)
				log_warn("profile %s: cannot apply the new token-file", p->name);
			else
				log_notice("profile %s: signed in with the new token-file's token", p->name);
		}
		profile_spec_clear(&spec);
	}
}

/* New options (a reload) apply to profiles opened from now on and to the
 * configured profiles programs name; for open ones see sync_reapply_profiles. */
int
sync_set_options(struct sync *s, const struct sync_options *opt)
{
	struct sync n = { .opt = *opt }, old = { 0 };

	n.opt.state_dir = xstrdup(opt->state_dir);
	n.opt.default_server = xstrdup(opt->default_server);
	n.opt.default_api_uri = xstrdup(opt->default_api_uri);
	n.opt.ca_file = xstrdup(opt->ca_file);
	n.profiles = calloc(opt->n_profiles ? opt->n_profiles : 1, sizeof(*n.profiles));
	n.opt.n_profiles = n.profiles ? opt->n_profiles : 0;
	for (size_t i = 0; n.profiles && i < opt->n_profiles; i++) {
		const struct sync_profile_option *po = &opt->profiles[i];

		n.profiles[i] = (struct sync_profile_option){
			.name = xstrdup(po->name), .app_id = xstrdup(po->app_id),
			.server = xstrdup(po->server), .api_uri = xstrdup(po->api_uri),
			.token = xstrdup(po->token), .ca_file = xstrdup(po->ca_file),
		};
	}
	if (!n.opt.state_dir || !n.opt.default_server || !n.opt.default_api_uri || !n.profiles) {
		sync_options_clear(&n);
		return -ENOMEM;
	}
	n.opt.profiles = n.profiles;
	old.opt = s->opt;
	old.profiles = s->profiles;
	s->opt = n.opt;
	s->profiles = n.profiles;
	sync_reapply_profiles(s, &old);
	sync_options_clear(&old);
	return 0;
}

int
sync_new(struct lws_context *ctx, struct lws_vhost *vh, const struct sync_options *opt,
    struct sync **ret)
{
	struct sync *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->ctx = ctx;
	s->vh = vh;
	TAILQ_INIT(&s->profiles_list);
	TAILQ_INIT(&s->clients);
	LIST_INIT(&s->auth_calls);
	if (sync_set_options(s, opt) < 0) {
		sync_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

/* Profiles with queued writes replay without waiting for a program. */
static int
sync_open_queued(struct sync *s)
{
	DIR *d = opendir(s->opt.state_dir);
	struct dirent *de;

	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *server = NULL, *app = NULL, *name = NULL, *token = NULL;
		const struct sync_profile_option *cpo;
		struct profile_spec spec;
		const char *why;
		_cleanup_free_ char *err = NULL;
		struct db *db = NULL;
		size_t counts[4] = { 0 };
		struct profile *p;
		size_t len = strlen(de->d_name);
		int r;

		if (len < 8 || strcmp(de->d_name + len - 7, ".sqlite") != 0)
			continue;
		if (asprintf(&path, "%s/%s", s->opt.state_dir, de->d_name) < 0)
			break;
		/* The database names a server to send our token to: only ours counts. */
		if ((r = fs_check_file(path, false, &err)) < 0) {
			log_warn("skipping a database: %s", err ? err : strerror(-r));
			continue;
		}
		if (db_open(path, &db) < 0)
			continue;
		note_recovery(db, de->d_name);
		r = db_outbox_counts(db, counts);
		if (r == 0 && counts[DB_MUT_PENDING] + counts[DB_MUT_SENT] > 0) {
			(void)db_meta_get(db, "server", &server);
			(void)db_meta_get(db, "app-id", &app);
			(void)db_meta_get(db, "name", &name);
		}
		db_close(db);
		if (server == NULL || app == NULL)
			continue;
		if (profile_read_token(path, &token) < 0)
			continue;
		log_info("%s: %zu queued writes to replay", name ? name : app,
		    counts[DB_MUT_PENDING] + counts[DB_MUT_SENT]);
		/* The same resolver as init: a database of a configured profile gets
		 * that profile's api-uri, ca-file and token-file. */
		if (name && (cpo = sync_find_profile(s, name)) && strcmp(cpo->app_id, app) == 0 &&
		    strcmp(profile_option_server(s, cpo), server) == 0)
			r = profile_resolve(s, name, false, app, server, NULL, NULL, &spec, &why);
		else
			r = profile_resolve(s, NULL, false, app, server, NULL, NULL, &spec, &why);
		if (r == 0 && spec.token == NULL)
			spec.token = token;
		if (r == 0)
			(void)profile_open(s, &spec, path, &p);
		profile_spec_clear(&spec);
	}
	closedir(d);
	return 0;
}

int
sync_start(struct sync *s)
{
	return sync_open_queued(s);
}

void
sync_free(struct sync *s)
{
	struct profile *p;
	struct client *c;

	if (s == NULL)
		return;
	while (!LIST_EMPTY(&s->auth_calls)) {
		struct auth_call *a = LIST_FIRST(&s->auth_calls);

		auth_cancel(a->req);
		auth_call_free(a);
	}
	while ((c = TAILQ_FIRST(&s->clients))) {
		TAILQ_REMOVE(&s->clients, c, entry);
		ipc_conn_set_data(c->conn, NULL);
		rooms_free(c->rooms);
		free(c->name);
		free(c);
	}
	while ((p = TAILQ_FIRST(&s->profiles_list))) {
		TAILQ_REMOVE(&s->profiles_list, p, entry);
		profile_free(p);
	}
	sync_options_clear(s);
	free(s);
}

static void
shutdown_one(void *ud)
{
	struct sync *s = ud;

	if (s->shutdown_waiting && --s->shutdown_waiting == 0 && s->shutdown_done)
		s->shutdown_done(s->shutdown_ud);
}

void
sync_shutdown(struct sync *s, void (*done)(void *ud), void *ud)
{
	struct profile *p;

	s->shutting_down = true;
	s->shutdown_done = done;
	s->shutdown_ud = ud;
	s->shutdown_waiting = 1;
	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		/* Commit whatever is waiting for the group commit before going. */
		if (p->flush_armed) {
			lws_sul_cancel(&p->flush);
			profile_flush_cb(&p->flush);
		}
		s->shutdown_waiting++;
		upstream_close(p->up, shutdown_one, s);
	}
	shutdown_one(s);
}
