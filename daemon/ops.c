/* ops.c: the local ops of the sync core: one table from the protocol's op
 * to its handler, and the handlers of init, queries, transact, the outbox,
 * status and rooms (sign-in in ops-auth.c, stored profiles in ops-store.c). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ops.h"
#include "daemon/ops-auth.h"
#include "daemon/ops-store.h"
#include "daemon/outbox.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "daemon/rooms.h"
#include "daemon/upstream.h"
#include "ipc/ipc-server.h"
#include "store/attrs.h"
#include "store/db.h"
#include "store/instaml.h"
#include "store/instaql.h"
#include "store/util.h"

static void
status_add_unopened(struct sync *s, cJSON *all);

static void
op_init(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
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
	/* An app of the Instant endpoint reads only what its own token fetched. */
	if (pname == NULL && cJSON_IsTrue(json_get(msg, "token-profile")) &&
	    (r = profile_bind_token(s, &spec, token)) < 0) {
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
	if (cJSON_IsTrue(json_get(msg, "with-attrs")))	/* the Instant endpoint's init-ok needs them */
		cJSON_AddItemToObject(out, "attrs", attrs_to_json(p->attrs));
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
op_add_query(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
{
	bool once = op == IPC_OP_QUERY_ONCE;
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
	/* ipc_protocol_check allows only "data" and "triples"; a query-once is always data. */
	l->triples = !once && json_get_string(msg, "format") &&
	    strcmp(json_get_string(msg, "format"), "triples") == 0;
	LIST_INSERT_HEAD(&q->listeners, l, by_query);
	LIST_INSERT_HEAD(&c->listeners, l, by_client);
	if (timeout_ms > 0)
		lws_sul_schedule(c->s->ctx, 0, &l->timeout, listener_timeout_cb,
		    (lws_usec_t)timeout_ms * LWS_US_PER_MS);
	if (!once)
		c->nsubs++;
	if (policy != ONCE_CACHE_ONLY)	/* cache-only never asks the server */
		query_subscribe(q);
	/* network-only takes only a result of this session: one that is already
	 * fresh answers now (the server sends nothing until the data changes). */
	if (!(once && policy == ONCE_NETWORK_ONLY) || q->fresh)
		query_push(q);	/* without a result, only a partial answer if l takes one */
}

static void
op_remove_query(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
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

static void
op_transact(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
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
	/* Each write re-sends the add-attr steps of the attrs the server does not
	 * know yet: those held as sent are not new (storing them and computing
	 * every query's reads again per write made a queue of N such writes cost
	 * O(N^2) per query). */
	for (cJSON *x = newattrs ? newattrs->child : NULL, *nx; x; x = nx) {
		const cJSON *have = attrs_by_id(p->attrs, attr_id(x));

		nx = x->next;
		if (have && cJSON_Compare(have, x, 1))
			cJSON_Delete(cJSON_DetachItemViaPointer(newattrs, x));
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

static void
op_list_mutations(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
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
op_retry_or_discard(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
{
	bool retry = op == IPC_OP_RETRY_MUTATION;
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
op_status(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
{
	bool watch = op == IPC_OP_WATCH_STATUS;
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
op_room(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
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

		if (op != IPC_OP_JOIN_ROOM) {
			client_error(c, ceid, "not-found", "not in this room; send join-room first");
			return;
		}
		r = rooms_new(&rc, c->conn, &c->rooms);
		if (r < 0) {
			client_error(c, ceid, "internal", "cannot open a presence session: %s", strerror(-r));
			return;
		}
	}
	rooms_request(c->rooms, ipc_op_to_string(op), msg, ceid);
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

/* Every local op the core answers, indexed by the protocol's enum (which
 * ops need init is the protocol's, ipc_op_needs_init). set-log-level is
 * the daemon's own (main.c). */
static const struct {
	void (*fn)(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid);
	/* An op on stored profiles: gets every profile, open or not (ops-store.h). */
	void (*on_stored)(struct client *c, const cJSON *msg, const char *ceid, struct stored *v,
	    size_t n);
} op_handlers[_IPC_OP_MAX] = {
	[IPC_OP_INIT] = { .fn = op_init },
	[IPC_OP_ADD_QUERY] = { .fn = op_add_query },
	[IPC_OP_REMOVE_QUERY] = { .fn = op_remove_query },
	[IPC_OP_QUERY_ONCE] = { .fn = op_add_query },
	[IPC_OP_TRANSACT] = { .fn = op_transact },
	[IPC_OP_LIST_MUTATIONS] = { .fn = op_list_mutations },
	[IPC_OP_RETRY_MUTATION] = { .fn = op_retry_or_discard },
	[IPC_OP_DISCARD_MUTATION] = { .fn = op_retry_or_discard },
	[IPC_OP_JOIN_ROOM] = { .fn = op_room },
	[IPC_OP_LEAVE_ROOM] = { .fn = op_room },
	[IPC_OP_SET_PRESENCE] = { .fn = op_room },
	[IPC_OP_CLIENT_BROADCAST] = { .fn = op_room },
	[IPC_OP_STATUS] = { .fn = op_status },
	[IPC_OP_WATCH_STATUS] = { .fn = op_status },
	[IPC_OP_SEND_MAGIC_CODE] = { .fn = op_auth },
	[IPC_OP_SIGN_IN] = { .fn = op_auth },
	[IPC_OP_SIGN_OUT] = { .fn = op_auth },
	[IPC_OP_WHOAMI] = { .fn = op_whoami },
	[IPC_OP_LIST_PROFILES] = { .on_stored = op_list_profiles },
	[IPC_OP_FORGET_PROFILE] = { .on_stored = op_forget_profile },
	[IPC_OP_EXPORT_CACHE] = { .on_stored = op_export_cache },
	[IPC_OP_CLEAR_CACHE] = { .on_stored = op_clear_cache },
};

void
ops_dispatch(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid)
{
	struct stored *v = NULL;
	size_t n = 0;
	int r;

	if ((int)op < 0 || op >= _IPC_OP_MAX || (!op_handlers[op].fn && !op_handlers[op].on_stored)) {
		client_error(c, ceid, "invalid-op", "%s is not an op of the sync core",
		    ipc_op_to_string(op) ? ipc_op_to_string(op) : "this");
		return;
	}
	if (ipc_op_needs_init(op) && c->p == NULL) {
		client_error(c, ceid, "not-initialized", "send init first");
		return;
	}
	if (op_handlers[op].fn) {
		op_handlers[op].fn(c, op, msg, ceid);
		return;
	}
	r = stored_collect(c->s, &v, &n);
	if (r < 0) {
		client_error(c, ceid, "internal", "cannot list the profiles: %s", strerror(-r));
		return;
	}
	op_handlers[op].on_stored(c, msg, ceid, v, n);
	stored_free(v, n);
}
