/* session.c: what the upstream session's events do to a profile: state
 * changes, and each server message (init-ok, add-query-ok, refresh-ok,
 * transact-ok, error, app-status-changed) from one table (see session.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/frame.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "daemon/session.h"
#include "daemon/upstream.h"
#include "store/attrs.h"
#include "store/db.h"
#include "store/instaml.h"
#include "store/util.h"

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

/* States in which the daemon knows the server will not answer for now. */
static bool
profile_gave_up(enum upstream_state st)
{
	return st == UPSTREAM_BACKOFF || st == UPSTREAM_AUTH_FAILED || st == UPSTREAM_APP_NOT_FOUND ||
	    st == UPSTREAM_STOPPED;
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
		TAILQ_FOREACH(m, &p->outbox, entry) {
			m->sent = false;
			/* Shown as PROTOCOL.md says: not sent in this session. ever_sent
			 * keeps it a replay; the database keeps its mark. */
			if (m->m->state == DB_MUT_SENT)
				m->m->state = DB_MUT_PENDING;
		}
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
	/* Writes confirmed before a restart may be retired now. */
	profile_prune(p);
	/* The queued writes go before the subscriptions (the JS client sends
	 * them after): they are what exists nowhere else, and a server that
	 * handles a session's messages one at a time then runs them before it
	 * evaluates every query, and evaluates each once with them all in,
	 * instead of refreshing every query that shows them once per write. A
	 * server that runs them concurrently (the real one) is not affected. */
	replay_begin(p);
	profile_pump(p);
	TAILQ_FOREACH(q, &p->queries, entry)
		if (!LIST_EMPTY(&q->listeners))
			query_subscribe(q);
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

/* One computation of a refresh-ok: the new result of the query it names. A
 * raw one (a large frame's, see frame.h) is parsed here, and dropped if it
 * is not JSON. */
static void
computation_apply(struct profile *p, const cJSON *c, int64_t ptx)
{
	_cleanup_json_ cJSON *parsed = NULL;
	_cleanup_free_ char *key = NULL;
	struct query *q;

	if (cJSON_IsRaw(c)) {
		if (frame_item_parse(c, &parsed) < 0) {
			log_warn("%s: a result in a refresh from the server is not JSON; dropped", p->name);
			return;
		}
		c = parsed;
	}
	key = json_canonical(json_get(c, "instaql-query"));
	q = key ? query_find(p, key) : NULL;
	if (q != NULL)
		query_set_result(q, json_get(c, "instaql-result"), ptx);
}

static void
refresh_parts_free(struct profile *p)
{
	for (size_t i = p->refresh_next; i < p->nrefresh_parts; i++)
		cJSON_Delete(p->refresh_parts[i].c);
	free(p->refresh_parts);
	p->refresh_parts = NULL;
	p->nrefresh_parts = p->refresh_next = 0;
}

/* Apply the next kept computation; true if more are left. */
static bool
refresh_apply_next(struct profile *p)
{
	struct refresh_part *rp = &p->refresh_parts[p->refresh_next++];

	computation_apply(p, rp->c, rp->processed_tx_id);
	cJSON_Delete(rp->c);
	rp->c = NULL;
	profile_prune(p);
	profile_schedule_push(p);
	if (p->refresh_next < p->nrefresh_parts)
		return true;
	refresh_parts_free(p);
	return false;
}

/* One kept computation per loop turn, so the push of the ones before it,
 * and a program's request, get in between. */
static void
refresh_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, refresh);

	if (p->refresh_parts != NULL && refresh_apply_next(p))
		lws_sul_schedule(p->s->ctx, 0, &p->refresh, refresh_cb, 1);
}

/* Every kept computation now: the server's next message must find them
 * applied, as it would had they been applied when they came. */
static void
refresh_drain(struct profile *p)
{
	if (p->refresh_parts == NULL)
		return;
	lws_sul_cancel(&p->refresh);
	while (refresh_apply_next(p))
		;
}

void
session_free(struct profile *p)
{
	lws_sul_cancel(&p->refresh);
	refresh_parts_free(p);
}

struct sized {
	const cJSON *c;		/* borrowed: a computation */
	size_t size, ord;	/* its text's length (0: parsed already), its place */
};

static int
sized_cmp(const void *a, const void *b)
{
	const struct sized *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* The computations, smallest first: the parsed ones and the smallest raw one
 * now, the other raw ones one per loop turn (refresh_cb). A small result is
 * then pushed before a large one in the same frame is even parsed. */
static void
handle_refresh_ok(struct profile *p, const cJSON *msg)
{
	const cJSON *comps = json_get(msg, "computations"), *c;
	_cleanup_free_ struct sized *v = NULL;
	size_t n = 0, i;
	int64_t ptx = 0;
	bool now = true;

	if (json_get(msg, "processed-tx-id") && json_get_int64(json_get(msg, "processed-tx-id"), &ptx) < 0)
		return;
	if (json_get(msg, "attrs"))
		profile_set_server_attrs(p, json_get(msg, "attrs"), ptx, true);
	cJSON_ArrayForEach(c, comps)
		n++;
	v = calloc(n + 1, sizeof(*v));
	p->refresh_parts = v ? calloc(n + 1, sizeof(*p->refresh_parts)) : NULL;
	if (v == NULL || p->refresh_parts == NULL) {
		/* all of them now, in order */
		free(p->refresh_parts);
		p->refresh_parts = NULL;
		cJSON_ArrayForEach(c, comps)
			computation_apply(p, c, ptx);
		profile_prune(p);
		profile_schedule_push(p);
		return;
	}
	n = 0;
	cJSON_ArrayForEach(c, comps) {
		v[n] = (struct sized){ .c = c, .ord = n,
		    .size = cJSON_IsRaw(c) && c->valuestring ? strlen(c->valuestring) : 0 };
		n++;
	}
	qsort(v, n, sizeof(*v), sized_cmp);
	for (i = 0; i < n; i++) {
		cJSON *keep = NULL;

		if (!now && (keep = cJSON_Duplicate(v[i].c, false)) != NULL) {
			p->refresh_parts[p->nrefresh_parts++] =
			    (struct refresh_part){ .c = keep, .processed_tx_id = ptx };
			continue;
		}
		computation_apply(p, v[i].c, ptx);
		if (v[i].size > 0)
			now = false;
	}
	profile_prune(p);
	profile_schedule_push(p);
	if (p->nrefresh_parts == 0)
		refresh_parts_free(p);
	else
		lws_sul_schedule(p->s->ctx, 0, &p->refresh, refresh_cb, 1);
}

static void
handle_app_status_changed(struct profile *p, const cJSON *msg)
{
	const char *st = json_get_string(msg, "status");

	if (st) {
		profile_set_app_status(p, st);
		log_notice("%s: app status is now %s", p->name, st);
		profile_pump(p);
		profile_status_changed(p);
	}
}

/* What each upstream message does; add-query-exists, remove-query-ok and
 * room replies need nothing here. */
static const struct {
	const char *op;
	void (*fn)(struct profile *p, const cJSON *msg);
} upstream_handlers[] = {
	{ "init-ok", handle_init_ok },
	{ "add-query-ok", handle_query_result },
	{ "refresh-ok", handle_refresh_ok },
	{ "transact-ok", handle_transact_ok },
	{ "error", handle_error },
	{ "app-status-changed", handle_app_status_changed },
};

static void
profile_on_message(void *ud, const cJSON *msg)
{
	struct profile *p = ud;
	const char *op = json_get_string(msg, "op");

	if (op == NULL)
		return;
	refresh_drain(p);
	for (size_t i = 0; i < ELEMENTSOF(upstream_handlers); i++)
		if (strcmp(op, upstream_handlers[i].op) == 0) {
			upstream_handlers[i].fn(p, msg);
			return;
		}
}

static void
profile_on_log(void *ud, int prio, const char *msg)
{
	struct profile *p = ud;
	struct log_fields lf = { .profile = p->name, .app_id = p->app_id };

	log_structured(prio, &lf, "%s", msg);
}

const struct upstream_callbacks profile_upstream_cb = {
	.on_state = profile_on_state,
	.on_message = profile_on_message,
	.on_log = profile_on_log,
};
