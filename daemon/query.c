/* query.c: shared query subscriptions: evaluation over the server's result
 * with the optimistic overlay, fan-out to listeners, the write-behind to the
 * mirror and the unsubscribe grace period (see query.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "daemon/upstream.h"
#include "ipc/ipc-server.h"
#include "store/attrs.h"
#include "store/db.h"
#include "store/instaql.h"
#include "store/reads.h"
#include "store/tstore.h"
#include "store/util.h"

/* A new store over p's attrs interning into p's value table, so what
 * several results hold (attr ids, etypes, shared entities) is held once; the
 * attr objects too are shared with a store built over p's attrs as they are
 * now. The table is made on first use; without it a store has values of its
 * own. */
static int
query_store_new(struct profile *p, struct tstore **ret)
{
	struct query *o;

	TAILQ_FOREACH(o, &p->queries, entry)
		if (o->base && o->base_current)
			return tstore_new_like(o->base, ret);
	if (p->values == NULL && tstore_values_new(&p->values) < 0)
		p->values = NULL;
	return tstore_new_shared(p->values, p->attrs, ret);
}

/* The query's server result: its store, rebuilt over the profile's attrs
 * after they changed (from the triples the old store was built from, so
 * triples of an attr it did not know count once the attr is known). */
static int
query_base(struct query *q, struct tstore **ret)
{
	int r;

	if (q->base == NULL)
		return -ENOENT;
	if (q->base_stale) {
		struct tstore *ts = NULL;

		r = query_store_new(q->p, &ts);
		if (r < 0)
			return r;
		r = tstore_add_store(ts, q->base);
		if (r < 0) {
			tstore_free(ts);
			return r;
		}
		tstore_trim(ts);
		tstore_free(q->base);
		q->base = ts;
		q->base_stale = false;
		q->base_current = true;
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

struct mref
mref_of(const struct mutation *m)
{
	return (struct mref){ .steps = m->m->steps, .tx_id = m->m->tx_id, .ord = m->ord,
	    .failed = m->m->state == DB_MUT_FAILED };
}

void
mref_filter(const struct profile *p, struct mref *m)
{
	m->filtered = query_reads_steps_filter(m->steps, p->attrs, &m->filter);
}

struct mref
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

/* Call fn for each entry of p's queue in queue order: the outbox, then the
 * writes awaiting the group commit. fn's first negative return stops it and
 * is returned. */
static int
profile_queue_each(struct profile *p, int (*fn)(struct query *q, void *ud, const struct mref *m),
    struct query *q, void *ud)
{
	struct pending_write *w;
	struct mutation *m;
	int r;

	TAILQ_FOREACH(m, &p->outbox, entry) {
		struct mref x = mref_of(m);

		if ((r = fn(q, ud, &x)) < 0)
			return r;
	}
	TAILQ_FOREACH(w, &p->writes, entry) {
		struct mref x = mref_of_write(w);

		if ((r = fn(q, ud, &x)) < 0)
			return r;
	}
	return 0;
}

/* The store a write m is layered on, as store/reads.h asks about it: q's
 * server store and the writes before m that apply to it. A link can only
 * come from one of them, so it is looked up in the server store and the
 * writes are only scanned for steps naming the entity. */
struct layer {
	struct query *q;		/* borrowed */
	const struct mref *m;		/* borrowed */
	struct tstore *base;		/* borrowed: q's server store */
	const char *eid;		/* borrowed, for layer_names */
	size_t n;			/* writes scanned */
};

/* A queue longer than this is not scanned: its writes count as naming every entity. */
#define LAYER_SCAN_MAX 256

/* Does a step of a write before l->m that adds a link name l->eid (or an
 * entity it cannot tell)? -EEXIST stops the walk with yes. */
static int
layer_names(struct query *q, void *ud, const struct mref *m)
{
	struct layer *l = ud;
	const cJSON *st;

	if (m->ord >= l->m->ord || !mref_applies(q, m))
		return 0;
	if (++l->n > LAYER_SCAN_MAX || !cJSON_IsArray(m->steps))
		return -EEXIST;
	cJSON_ArrayForEach(st, m->steps) {
		const char *act = cJSON_GetStringValue(cJSON_GetArrayItem(st, 0));
		const char *a = cJSON_GetStringValue(cJSON_GetArrayItem(st, 2));
		const cJSON *e = cJSON_GetArrayItem(st, 1), *v = cJSON_GetArrayItem(st, 3);
		const cJSON *attr = a ? attrs_by_id(q->p->attrs, a) : NULL;

		if (act == NULL)
			return -EEXIST;
		if (strcmp(act, "add-triple") != 0 && strcmp(act, "deep-merge-triple") != 0)
			continue;	/* retracts and deletes take links away; attr steps change the reads */
		if (attr && !attr_is_ref(attr))
			continue;	/* not a link */
		/* a lookup ref (an array) may name any entity */
		if (!cJSON_IsString(e) || strcmp(e->valuestring, l->eid) == 0 || cJSON_IsArray(v) ||
		    (cJSON_IsString(v) && strcmp(v->valuestring, l->eid) == 0))
			return -EEXIST;
	}
	return 0;
}

static bool
layer_pending_names(struct layer *l, const char *eid)
{
	l->eid = eid;
	l->n = 0;
	return profile_queue_each(l->q->p, layer_names, l->q, l) < 0;
}

static bool
layer_has_ref_to(void *ud, const char *attr_id, const char *eid)
{
	struct layer *l = ud;
	cJSON v = { .type = cJSON_String, .valuestring = (char *)eid };

	return tstore_has_av(l->base, attr_id, &v) || layer_pending_names(l, eid);
}

static bool
layer_has_entity(void *ud, const char *etype, const char *eid)
{
	struct layer *l = ud;

	return tstore_has_entity(l->base, etype, eid) || layer_pending_names(l, eid);
}

/* Can m change q's result? by_shown refines it by the entities the last
 * render shows and the store m is layered on, which holds only while that
 * render is of q's current inputs (store/reads.h): not for a stale, failed
 * or partial render. */
static bool
query_affected(struct query *q, const struct mref *m, bool by_shown)
{
	const struct query_reads *r = query_reads_of(q);
	bool current = q->rendered && !q->stale && q->render_r == 0 && !q->rendered_partial;
	struct layer l = { .q = q, .m = m };
	struct query_reads_store st = { .has_ref_to = layer_has_ref_to,
	    .has_entity = layer_has_entity, .ud = &l };

	if (r == NULL)
		return true;
	if (m->filtered && !query_reads_may_touch(r, &m->filter))
		return false;
	if (!by_shown || !current)
		return query_reads_affected(r, m->steps, NULL, NULL);
	return query_reads_affected(r, m->steps, &q->shown, query_base(q, &l.base) == 0 ? &st : NULL);
}

/* m, which applies to q's result, can change it by the attrs q reads:
 * count it for has-pending-writes. With no render to judge by, it may also
 * change the render (last_aff). */
static int
query_count(struct query *q, void *ud, const struct mref *m)
{
	(void)ud;
	if (mref_applies(q, m) && query_affected(q, m, false)) {
		q->n_aff++;
		if (m->ord > q->last_aff)
			q->last_aff = m->ord;
	}
	return 0;
}

/* Count again, over the whole queue, the writes that can change q's result
 * (after its reads or its result changed). */
static void
query_scan(struct query *q)
{
	q->n_aff = 0;
	q->last_aff = 0;
	if (query_has_result(q))
		(void)profile_queue_each(q->p, query_count, q, NULL);	/* query_count cannot fail */
}

/* q's inputs changed wholesale (a new result or page-info, new attrs): its
 * view and reads are built again, and it is rendered again. */
static void
query_inputs_changed(struct query *q)
{
	query_drop_view(q);
	query_reads_free(q->reads);
	q->reads = NULL;
	q->reads_failed = false;
	q->stale = true;
	query_scan(q);
}

/* The attrs changed: the server store is rebuilt over them on use (from its
 * own triples, see query_base). */
void
query_drop_base(struct query *q)
{
	if (q->base)
		q->base_stale = true;
	q->base_current = false;
	query_inputs_changed(q);
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
	bool pure, shown = false;

	if (!query_has_result(q)) {
		q->stale = true;	/* a partial answer reads the whole mirror */
		q->by_server = false;
		return;
	}
	pure = query_affected(q, m, false);
	if (pure)	/* a stale render cannot judge it: then it counts as shown */
		shown = q->stale || query_affected(q, m, true);
	if (pure && enter)
		q->n_aff++;
	else if (pure && q->n_aff > 0)
		q->n_aff--;
	/* Only a later write that changes the render can make it depend on
	 * m: one that reads the same attrs of entities q does not show leaves
	 * m free to go, so 100 queries on books do not all hold every write
	 * to one book until the grace runs out. */
	if (enter && shown && m->ord > q->last_aff)
		q->last_aff = m->ord;
	if (q->view_ord >= m->ord)
		query_drop_view(q);	/* it must hold exactly the writes that apply up to view_ord */
	if (q->last_aff > m->ord || shown) {
		q->stale = true;
		q->by_server = false;	/* a program waits to see its write: not paced */
	}
}

/* Tell every query of p that a queue entry changed from before to after
 * (NULL: not in the queue). */
void
profile_on_write(struct profile *p, const struct mref *before_in, const struct mref *after_in)
{
	struct mref bx, ax, *before = NULL, *after = NULL;
	struct query *q;

	if (before_in) {
		bx = *before_in;
		mref_filter(p, before = &bx);
	}
	if (after_in) {
		ax = *after_in;
		mref_filter(p, after = &ax);
	}

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

void
profile_reads_changed(struct profile *p)
{
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry) {
		query_reads_free(q->reads);
		q->reads = NULL;
		q->reads_failed = false;
		q->base_current = false;	/* its store keeps the attrs it was built over */
		query_scan(q);
	}
}

/* Would retiring the confirmed m now change what q shows, before q's
 * result reflects it? */
bool
query_holds(struct query *q, const struct mref *m)
{
	if (!query_has_result(q) || !mref_applies(q, m))
		return false;
	return q->last_aff > m->ord ||
	    (query_affected(q, m, false) && query_affected(q, m, true));
}

/* Apply m to q's view if it comes after view_ord and applies. A write whose
 * steps this store cannot apply is skipped rather than failing the whole
 * query (the JS client fails the query; see QUERY-DIFFERENCES). */
static int
query_view_add(struct query *q, void *ud, const struct mref *m)
{
	struct tstore *base = ud;
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
	struct tstore *base;
	int r;

	r = query_base(q, &base);
	if (r < 0)
		return r;
	r = profile_queue_each(q->p, query_view_add, q, base);
	if (r < 0)
		return r;
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

/* Add one result (a store's triples, or a mirrored JSON array) to the
 * union; a result the store cannot read is left out (the answer is partial
 * anyway). */
static int
union_add(struct tstore *ts, const struct tstore *from, const cJSON *triples, int64_t tx_id,
    int64_t *min_tx_id)
{
	int r = from ? tstore_add_store(ts, from) : tstore_add_triples(ts, triples);

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

	r = query_store_new(p, &ts);
	if (r < 0)
		return r;
	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_has_result(q) && (r = union_add(ts, q->base, NULL, q->processed_tx_id,
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
		if ((r = union_add(ts, NULL, triples, tx_id, &min_tx_id)) < 0)
			goto fail;
	}
	*ret_ts = ts;
	*ret_tx_id = min_tx_id < 0 ? 0 : min_tx_id;
	return 0;
fail:
	tstore_free(ts);
	return r;
}

bool
query_has_result(const struct query *q)
{
	return q->base != NULL;
}

/* Whether l takes an answer from the whole mirror for its query with no result. */
static bool
listener_takes_partial(const struct listener *l)
{
	if (l->no_partial || l->once == ONCE_NETWORK_ONLY)
		return false;
	return l->once == ONCE_CACHE_ONLY || profile_partial_mode(l->q->p);
}

void
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

/* FNV-1a over a string: results are compared by the hash of their text. */
#define RESULT_HASH_SEED 1469598103934665603ULL

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
	int64_t t0 = mono_us();
	int r;

	free(q->data_text);
	free(q->pi_text);
	free(q->render_err);
	q->data_text = q->pi_text = q->render_err = NULL;
	instaql_shown_clear(&q->shown);
	q->rendered = true;
	q->stale = q->by_server = false;
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
	q->data_len = 0;
	if (r == 0) {
		q->data_text = json_print(data);
		q->data_len = q->data_text ? strlen(q->data_text) : 0;
		q->pi_text = pi ? json_print(pi) : NULL;
		if (q->data_text == NULL || (pi && q->pi_text == NULL))
			r = -ENOMEM;
	}
	q->render_r = r;
	q->render_end_us = mono_us();
	q->render_us = q->render_end_us - t0;
	if (r < 0) {
		q->render_err = err ? TAKE_PTR(err) : strdup(strerror(-r));
		q->data_hash = hash_text(hash_text(RESULT_HASH_SEED, "error"), q->render_err);
		if (r != -EINVAL)
			q->stale = true;	/* out of memory: try again on the next push */
		return;
	}
	/* The engine is deterministic, so equal results print equally. */
	q->data_hash = hash_text(hash_text(RESULT_HASH_SEED, q->data_text), q->pi_text);
}

/* ---- results as triples (the Instant endpoint's adapter asks for them) ---- */

/* Layers one queue entry on a partial answer's union store (there is no
 * per-query view without a result of its own). */
struct union_layer {
	struct tstore *ts;		/* borrowed */
	int64_t tx_id;			/* the union's oldest processed-tx-id */
	size_t applied;
};

static int
union_layer_add(struct query *q, void *ud, const struct mref *m)
{
	struct union_layer *u = ud;
	int r;

	(void)q;
	if (m->failed || !instaql_mutation_applies(m->tx_id, u->tx_id))
		return 0;
	r = tstore_apply_steps(u->ts, m->steps, NULL);
	if (r == -ENOMEM)
		return r;
	u->applied += r == 0;
	return 0;
}

/* The triples q's listeners see: its optimistic view (query_view), or for
 * a query with no result the whole mirror with the queue layered on it.
 * *ret is a new array of [e, a, v, t]. */
static int
query_view_triples(struct query *q, bool partial, cJSON **ret)
{
	struct union_layer u = { 0 };
	struct tstore *view;
	int r;

	if (!partial) {
		r = query_view(q, &view);
		if (r < 0)
			return r;
		*ret = tstore_to_json(view);
		return *ret ? 0 : -ENOMEM;
	}
	r = profile_union_store(q->p, &u.ts, &u.tx_id);
	if (r < 0)
		return r;
	r = profile_queue_each(q->p, union_layer_add, q, &u);
	if (r == 0 && (*ret = tstore_to_json(u.ts)) == NULL)
		r = -ENOMEM;
	tstore_free(u.ts);
	return r;
}

/* Send the triples listeners of q what they have not seen: like a data
 * result (same op, flags and ids) but with "triples" instead of "data", and
 * "attrs" (the profile's, server plus local) whenever they differ from what
 * the listener last had. A listener is sent again only when q's render (or
 * its flags or the attrs) changed: the app evaluates the same query over
 * these triples, so an unchanged render means an unchanged answer there. */
static void
query_push_triples(struct query *q, bool partial, bool pending)
{
	_cleanup_json_ cJSON *rows = NULL, *attrs = NULL;
	_cleanup_free_ char *q_text = NULL, *rows_text = NULL, *pi_text = NULL, *attrs_text = NULL;
	struct listener *l;
	bool any = false;
	uint64_t h, ah;
	int r;

	LIST_FOREACH(l, &q->listeners, by_query)
		if (l->triples && (!partial || listener_takes_partial(l)))
			any = true;
	if (!any)
		return;
	attrs = attrs_to_json(q->p->attrs);
	if (attrs == NULL || (attrs_text = json_print(attrs)) == NULL) {
		log_warn("%s: out of memory sending a result", q->p->name);
		return;
	}
	ah = hash_text(RESULT_HASH_SEED, attrs_text);
	h = hash_text(q->data_hash, q->fresh ? "f" : "c");
	h = hash_text(h, pending ? "w" : "-");
	h = hash_text(h, partial ? "p" : "-");
	LIST_FOREACH(l, &q->listeners, by_query) {
		_cleanup_free_ char *text = NULL, *ceid = NULL;
		cJSON tmp = { .type = cJSON_String, .valuestring = l->ceid };
		bool with_attrs = l->attrs_hash != ah;
		char ptx[48] = "";

		if (!l->triples || (partial && !listener_takes_partial(l)))
			continue;
		if (l->sent_any && l->last_hash == h && !with_attrs)
			continue;
		if (rows_text == NULL) {	/* built once per push, for the first that needs it */
			r = query_view_triples(q, partial, &rows);
			if (r < 0) {
				log_warn("%s: building a result's triples failed: %s", q->p->name,
				    strerror(-r));
				return;
			}
			rows_text = json_print(rows);
			q_text = json_print(q->q);
			pi_text = q->page_info && !partial ? json_print(q->page_info) : NULL;
			if (!rows_text || !q_text || (q->page_info && !partial && !pi_text)) {
				log_warn("%s: out of memory sending a result", q->p->name);
				return;
			}
		}
		if (l->ceid && (ceid = json_print(&tmp)) == NULL)
			continue;
		if (q->processed_tx_id && !partial)
			snprintf(ptx, sizeof(ptx), ",\"processed-tx-id\":%" PRId64, q->processed_tx_id);
		if (asprintf(&text, "{\"op\":\"%s\"%s%s,\"q\":%s,\"triples\":%s%s%s%s%s,"
		    "\"from-cache\":%s,\"has-pending-writes\":%s,\"partial\":%s%s}",
		    l->answered ? "refresh-ok" : "add-query-ok", ceid ? ",\"client-event-id\":" : "",
		    ceid ? ceid : "", q_text, rows_text, pi_text ? ",\"page-info\":" : "",
		    pi_text ? pi_text : "", with_attrs ? ",\"attrs\":" : "", with_attrs ? attrs_text : "",
		    q->fresh ? "false" : "true", pending ? "true" : "false", partial ? "true" : "false",
		    ptx) < 0) {
			text = NULL;
			continue;
		}
		r = ipc_conn_send_text(l->c->conn, text, strlen(text));
		if (r < 0 && r != -ENOBUFS)
			log_debug("send to program failed: %s", strerror(-r));
		l->answered = true;
		l->sent_any = true;
		l->last_hash = h;
		l->attrs_hash = ah;
	}
}

/* Send each listener what it has not seen yet: the first answer, or a
 * refresh when the result (or its flags) changed; q is rendered again only
 * if its inputs changed. A query with no result yet is answered, partial,
 * to the listeners that take that. */
void
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
	if (q->stale || !q->rendered || q->rendered_partial != partial)
		query_render(q);
	pending = partial ? q->rendered_pending : q->n_aff > 0;
	query_push_triples(q, partial, pending);
	if (q->render_r < 0) {
		/* Each listener is told once per distinct error; a query-once is done. */
		for (l = LIST_FIRST(&q->listeners); l; l = next) {
			next = LIST_NEXT(l, by_query);
			if (l->triples || (partial && !listener_takes_partial(l)) ||
			    (l->sent_any && l->last_hash == q->data_hash))
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
	h = hash_text(q->data_hash, q->fresh ? "f" : "c");
	h = hash_text(h, pending ? "w" : "-");
	h = hash_text(h, partial ? "p" : "-");
	for (l = LIST_FIRST(&q->listeners); l; l = next) {
		_cleanup_free_ char *text = NULL;
		const char *op;

		next = LIST_NEXT(l, by_query);
		if (l->triples || (partial && !listener_takes_partial(l)))
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

/* What pushing q costs now: nothing to render, or about its last result's size. */
static size_t
query_push_cost(const struct query *q)
{
	return q->stale || !q->rendered ? q->data_len + 1 : 0;
}

static int
query_cost_cmp(const void *a, const void *b)
{
	size_t x = query_push_cost(*(struct query *const *)a), y = query_push_cost(*(struct query *const *)b);

	return x < y ? -1 : x > y;
}

/* Pacing: a render of a new server result that took PACE_MIN_US or more
 * waits until the loop has had PACE_SHARE times as long for other work since
 * that query's last render. A server may refresh a large query many times a
 * second (a replay of many writes it shows does: each refresh re-applies the
 * writes still queued), and rendering each would leave programs' requests
 * and the replay itself little of the loop; paced, such renders take at most
 * 1 / (1 + PACE_SHARE) of it, and the last result is always shown. A
 * program waiting for a first answer, or to see its own write, is never
 * made to wait. */
#define PACE_MIN_US 2000
#define PACE_SHARE 4

/* When q may render: 0 for now. */
static int64_t
query_render_due(const struct query *q)
{
	const struct listener *l;

	if (!q->stale || !q->by_server || !q->rendered || q->render_us < PACE_MIN_US)
		return 0;
	LIST_FOREACH(l, &q->listeners, by_query)
		if (l->once || !l->sent_any)
			return 0;
	return q->render_end_us + PACE_SHARE * q->render_us;
}

static void profile_pace_cb(lws_sorted_usec_list_t *sul);

/* Push every query of p, the cheapest renders first, so a small result
 * (a program's own view of what it just wrote) does not wait behind large
 * ones. Only the queries that must render are sorted: the others cost
 * nothing and go first, so a write among 1,000 clean subscriptions sorts
 * the few it changed, not all of them. query_push frees no query (a release
 * is a timer), so the list taken before stays valid. */
static void
profile_push_all(struct profile *p)
{
	_cleanup_free_ struct query **v = NULL;
	struct query *q, *nq;
	size_t n = 0, clean = 0;
	int64_t now, next = 0;

	TAILQ_FOREACH(q, &p->queries, entry)
		n++;
	v = calloc(n + 1, sizeof(*v));
	if (v == NULL) {
		/* queue order then; still every query */
		for (q = TAILQ_FIRST(&p->queries); q; q = nq) {
			nq = TAILQ_NEXT(q, entry);
			query_push(q);
		}
		return;
	}
	n = 0;
	TAILQ_FOREACH(q, &p->queries, entry)
		v[n++] = q;
	for (size_t i = 0; i < n; i++)
		if (query_push_cost(v[i]) == 0) {
			q = v[clean];
			v[clean++] = v[i];
			v[i] = q;
		}
	qsort(v + clean, n - clean, sizeof(*v), query_cost_cmp);
	now = mono_us();
	for (size_t i = 0; i < n; i++) {
		int64_t due = query_render_due(v[i]);

		if (due > now) {
			if (next == 0 || due < next)
				next = due;
			continue;
		}
		query_push(v[i]);
	}
	lws_sul_cancel(&p->pace);
	if (next > 0)
		lws_sul_schedule(p->s->ctx, 0, &p->pace, profile_pace_cb, next - now);
}

static void
profile_push_cb(lws_sorted_usec_list_t *sul)
{
	profile_push_all(lws_container_of(sul, struct profile, push));
}

static void
profile_pace_cb(lws_sorted_usec_list_t *sul)
{
	profile_push_all(lws_container_of(sul, struct profile, pace));
}

/* Many confirmations or writes in one loop turn cost one re-evaluation of
 * each query, not one per event. */
void
profile_schedule_push(struct profile *p)
{
	if (!lws_dll2_is_detached(&p->push.list))
		return;
	lws_sul_schedule(p->s->ctx, 0, &p->push, profile_push_cb, 1);
}

void
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
void
query_maybe_release(struct query *q)
{
	if (!LIST_EMPTY(&q->listeners))
		return;
	lws_sul_schedule(q->p->s->ctx, 0, &q->grace, query_grace_cb,
	    (lws_usec_t)q->p->s->opt.unsubscribe_grace_ms * LWS_US_PER_MS);
}

void
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

struct query *
query_find(struct profile *p, const char *key)
{
	struct query *q;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (strcmp(q->key, key) == 0)
			return q;
	return NULL;
}

struct query *
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

/* The mirrored result of q, kept as its store; -ENOENT when none. */
static int
query_load(struct query *q)
{
	_cleanup_json_ cJSON *triples = NULL, *page_info = NULL;
	struct tstore *ts = NULL;
	int64_t tx_id = 0;
	int r;

	r = db_query_get(q->p->db, q->key, NULL, &triples, &page_info, &tx_id);
	if (r < 0)
		return r;
	r = query_store_new(q->p, &ts);
	if (r < 0)
		return r;
	r = tstore_add_triples(ts, triples);
	if (r < 0) {
		tstore_free(ts);
		return r;
	}
	tstore_trim(ts);
	q->base = ts;
	q->base_current = true;
	q->page_info = TAKE_PTR(page_info);
	q->processed_tx_id = tx_id;
	return 0;
}

/* Find or create the shared query for q, loading its mirrored result. */
int
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
	r = query_load(q);
	if (r < 0 && r != -ENOENT)
		log_warn("%s: reading the cached query failed: %s", p->name, strerror(-r));
	query_scan(q);
	r = db_query_set_in_use(p->db, q->key, true);
	if (r < 0 && r != -ENOENT)
		log_warn("%s: cannot mark a query in use: %s", p->name, strerror(-r));
	*ret = q;
	return 0;
}

void
query_persist(struct query *q)
{
	_cleanup_json_ cJSON *triples = NULL;
	int r;

	if (!q->dirty || q->base == NULL)
		return;
	/* Printed from the store when written, so the result is held once. */
	r = tstore_added_triples(q->base, &triples);
	if (r == 0)
		r = db_query_put(q->p->db, q->key, q->q, triples, q->page_info, q->processed_tx_id);
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
void
query_set_result(struct query *q, const cJSON *result, int64_t processed_tx_id)
{
	const cJSON *first, *pi;
	struct profile *p = q->p;
	struct tstore *ts = NULL;
	cJSON *page_info = NULL;
	bool was_clean;
	int r;

	r = query_store_new(p, &ts);
	if (r == 0)
		r = tstore_add_result(ts, result);
	if (r < 0) {
		tstore_free(ts);
		if (r != -ENOMEM)
			log_warn("%s: ignoring a malformed query result", p->name);
		return;
	}
	first = cJSON_IsArray(result) ? cJSON_GetArrayItem(result, 0) : NULL;
	pi = json_get(json_get(first, "data"), "page-info");
	if (pi && (page_info = cJSON_Duplicate(pi, 1)) == NULL) {
		tstore_free(ts);
		return;
	}
	tstore_trim(ts);
	tstore_free(q->base);
	q->base = ts;
	q->base_stale = false;
	q->base_current = true;
	cJSON_Delete(q->page_info);
	q->page_info = page_info;
	q->processed_tx_id = processed_tx_id;
	q->fresh = true;
	was_clean = !q->stale;
	query_inputs_changed(q);
	if (was_clean)
		q->by_server = true;	/* else it keeps what made it stale before */
	profile_mark_partial(p);
	query_mark_dirty(q);
	p->last_sync_ms = now_ms();
}

/* Does some loaded query's server store pass has(ts, a, b)? value is what
 * the stores would intern for it: one not in p's value table is in none of
 * the stores over that table, so a new entity (most writes) costs one probe,
 * not one per query. The bases are made current first, since rebuilding one
 * interns what it holds. */
static bool
any_base(struct profile *p, const cJSON *value,
    bool (*has)(const struct tstore *, const char *, const void *), const char *a, const void *b)
{
	struct query *q;
	struct tstore *ts;
	bool in_table;

	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_has_result(q))
			(void)query_base(q, &ts);	/* on failure the loop below skips q */
	in_table = p->values == NULL || tstore_values_has(p->values, value);
	TAILQ_FOREACH(q, &p->queries, entry) {
		if (!query_has_result(q) || query_base(q, &ts) < 0)
			continue;
		if (!in_table && tstore_values_of(ts) == p->values)
			continue;
		if (has(ts, a, b))
			return true;
	}
	return false;
}

static bool
has_entity(const struct tstore *ts, const char *etype, const void *eid)
{
	return tstore_has_entity(ts, etype, eid);
}

static bool
has_av(const struct tstore *ts, const char *attr, const void *value)
{
	return tstore_has_av(ts, attr, value);
}

/* The JS client decides create vs update mode on its server stores, without
 * the optimistic layer: so do we, over every loaded query's base store. */
bool
mode_entity_exists(void *ud, const char *etype, const char *eid)
{
	cJSON v = { .type = cJSON_String, .valuestring = (char *)eid };

	return eid && any_base(ud, &v, has_entity, etype, eid);
}

bool
mode_lookup_exists(void *ud, const char *attr, const cJSON *value)
{
	return value && any_base(ud, value, has_av, attr, value);
}
