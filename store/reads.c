/* What an InstaQL query reads (attrs, and the etypes whose deletion reaches
 * them) and whether a mutation's tx-steps can change its result. The walk
 * mirrors store/instaql.c's resolution but takes every candidate attr. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/reads.h"
#include "store/util.h"

struct rattr {
	const char *id;			/* all borrowed from query_reads.attrs */
	const char *fwd_e, *fwd_l, *rev_e, *rev_l;
	int fwd_ei, rev_ei;		/* index in etypes, -1 if none */
	bool ref, blob, primary, del_cascade, del_rev_cascade;
	bool read;			/* the result depends on it somewhere */
	bool structural;		/* ...and not only through objects' fields */
	bool link_id;			/* an id attr of an etype reached only through links */
};

struct query_reads {
	struct attrs *attrs;		/* owned copy: the strings below point into it */
	struct rattr *v;		/* sorted by id */
	size_t n;
	const char **etypes;		/* distinct fwd/rev etypes, borrowed */
	bool *del_hits;			/* per etype: can delete-entity of it touch a read attr? */
	size_t netypes;
	bool all;			/* a query too deep to walk: every mutation affects it */
	struct query_reads_filter filter;	/* of the attrs read */
};

static bool
str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int
rattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rattr *)a)->id, ((const struct rattr *)b)->id);
}

/* Non-const result: the walk marks the attrs it finds. */
static struct rattr *
find_attr(const struct query_reads *r, const char *id)
{
	struct rattr key = { .id = id };

	if (id == NULL || r->n == 0)
		return NULL;
	return bsearch(&key, r->v, r->n, sizeof(*r->v), rattr_cmp);
}

static int
etype_index(struct query_reads *r, const char *e)
{
	if (e == NULL)
		return -1;
	for (size_t i = 0; i < r->netypes; i++)
		if (strcmp(r->etypes[i], e) == 0)
			return (int)i;
	r->etypes[r->netypes] = e;
	return (int)r->netypes++;
}

static bool
str_field_is(const cJSON *j, const char *k, const char *v)
{
	return str_eq(json_get_string(j, k), v);
}

/* One bit of the 256 per attr id. */
static void
filter_add(struct query_reads_filter *f, const char *id)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (const unsigned char *c = (const unsigned char *)id; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	h ^= h >> 29;
	f->w[(h >> 6) & 3] |= 1ull << (h & 63);
}

static int
load_attrs(struct query_reads *r, const struct attrs *attrs)
{
	int ret = attrs_dup(attrs, &r->attrs);

	if (ret < 0)
		return ret;
	r->n = attrs_count(r->attrs);
	r->v = calloc(r->n + 1, sizeof(*r->v));
	r->etypes = calloc(2 * r->n + 1, sizeof(*r->etypes));
	if (r->v == NULL || r->etypes == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		const cJSON *j = attrs_at(r->attrs, i);
		struct rattr *a = &r->v[i];

		a->id = attr_id(j);
		if (a->id == NULL) {
			/* not expected in a registry; judge nothing about it */
			a->id = "";
			r->all = true;
		}
		a->fwd_e = attr_fwd_etype(j);
		a->fwd_l = attr_fwd_label(j);
		a->rev_e = attr_rev_etype(j);
		a->rev_l = attr_rev_label(j);
		a->ref = attr_is_ref(j);
		a->blob = str_field_is(j, "value-type", "blob");
		a->primary = cJSON_IsTrue(json_get(j, "primary?"));
		a->del_cascade = str_field_is(j, "on-delete", "cascade");
		a->del_rev_cascade = str_field_is(j, "on-delete-reverse", "cascade");
	}
	qsort(r->v, r->n, sizeof(*r->v), rattr_cmp);
	for (size_t i = 0; i < r->n; i++) {
		r->v[i].fwd_ei = etype_index(r, r->v[i].fwd_e);
		r->v[i].rev_ei = etype_index(r, r->v[i].rev_e);
	}
	r->del_hits = calloc(r->netypes + 1, sizeof(*r->del_hits));
	return r->del_hits ? 0 : -ENOMEM;
}

/* ---- the walk over the query ---- */

static void
mark(struct rattr *a, bool structural)
{
	a->read = true;
	a->structural |= structural;
}

/* The id attrs of an etype: its primary? attrs and forward "id" (the
 * evaluator's pk pattern, where {id: ...} and $isNull use them). They
 * choose the entities of a namespace, so they are structural, except for
 * an etype the query only reaches through links (linked): there a new or
 * removed id triple matters only for an entity that is linked. */
static void
mark_ids(struct query_reads *r, const char *etype, bool linked)
{
	for (size_t i = 0; i < r->n; i++)
		if (str_eq(r->v[i].fwd_e, etype) && (r->v[i].primary || str_eq(r->v[i].fwd_l, "id"))) {
			mark(&r->v[i], !linked);
			r->v[i].link_id |= linked;
		}
}

/* structural: the attr decides which entities a namespace holds or their
 * order (where, order, cursors, links, ids); else it only fills the
 * objects of entities already chosen. */
static void
mark_fwd(struct query_reads *r, const char *etype, const char *label, bool structural)
{
	for (size_t i = 0; i < r->n; i++)
		if (str_eq(r->v[i].fwd_e, etype) && str_eq(r->v[i].fwd_l, label))
			mark(&r->v[i], structural);
}

/* One segment of a where path from etype, then the rest from wherever each
 * candidate attr leads (forward label: its reverse etype, and back). */
static void
walk_path(struct query_reads *r, const char *etype, char **parts, int i, int n)
{
	mark_ids(r, etype, false);
	for (size_t k = 0; k < r->n; k++) {
		struct rattr *a = &r->v[k];
		bool fwd = str_eq(a->fwd_e, etype) && str_eq(a->fwd_l, parts[i]);
		bool rev = str_eq(a->rev_e, etype) && str_eq(a->rev_l, parts[i]);

		if (!fwd && !rev)
			continue;
		mark(a, true);
		if (i + 1 < n) {
			if (fwd)
				walk_path(r, a->rev_e, parts, i + 1, n);
			if (rev)
				walk_path(r, a->fwd_e, parts, i + 1, n);
		}
	}
}

static int
walk_where(struct query_reads *r, const char *etype, const cJSON *where, int depth)
{
	const cJSON *kv;
	int ret;

	if (depth > 64) {
		r->all = true;
		return 0;
	}
	cJSON_ArrayForEach(kv, where) {
		const char *k = kv->string;
		char *copy, *parts[64];
		int n = 0;

		if (k == NULL)
			continue;
		if ((strcmp(k, "or") == 0 || strcmp(k, "and") == 0) && cJSON_IsArray(kv)) {
			const cJSON *w;

			cJSON_ArrayForEach(w, kv)
				if ((ret = walk_where(r, etype, w, depth + 1)) < 0)
					return ret;
			continue;
		}
		if (strcmp(k, "$entityIdStartsWith") == 0)
			continue;	/* the evaluator ignores it */
		copy = strdup(k);
		if (copy == NULL)
			return -ENOMEM;
		parts[n++] = copy;
		for (char *p = copy; *p; p++)
			if (*p == '.') {
				if (n == (int)ELEMENTSOF(parts)) {
					free(copy);
					r->all = true;
					return 0;
				}
				*p = 0;
				parts[n++] = p + 1;
			}
		walk_path(r, etype, parts, 0, n);
		free(copy);
	}
	return 0;
}

static int
walk_ns(struct query_reads *r, const char *etype, const cJSON *form, int depth)
{
	const cJSON *d = json_get(form, "$");
	const cJSON *fields = json_get(d, "fields");
	const cJSON *order = json_get(d, "order");
	const cJSON *c;
	int ret;

	if (depth > 64) {
		r->all = true;
		return 0;
	}
	mark_ids(r, etype, depth > 0);
	if (cJSON_IsArray(fields)) {
		cJSON_ArrayForEach(c, fields)
			if (cJSON_IsString(c))
				mark_fwd(r, etype, c->valuestring, false);
	} else {
		/* the object shows every blob attr of the etype */
		for (size_t i = 0; i < r->n; i++)
			if (str_eq(r->v[i].fwd_e, etype) && !r->v[i].ref)
				mark(&r->v[i], false);
	}
	if (cJSON_IsObject(order))
		cJSON_ArrayForEach(c, order)
			mark_fwd(r, etype, c->string, true);
	if (cJSON_IsObject(json_get(d, "where")) &&
	    (ret = walk_where(r, etype, json_get(d, "where"), 0)) < 0)
		return ret;
	cJSON_ArrayForEach(c, form) {
		if (c->string == NULL || strcmp(c->string, "$") == 0)
			continue;
		for (size_t k = 0; k < r->n; k++) {
			struct rattr *a = &r->v[k];
			bool fwd = str_eq(a->fwd_e, etype) && str_eq(a->fwd_l, c->string);
			bool rev = str_eq(a->rev_e, etype) && str_eq(a->rev_l, c->string);

			if (!fwd && !rev)
				continue;
			mark(a, true);
			if (fwd && a->rev_e && (ret = walk_ns(r, a->rev_e, c, depth + 1)) < 0)
				return ret;
			if (rev && a->fwd_e && (ret = walk_ns(r, a->fwd_e, c, depth + 1)) < 0)
				return ret;
		}
	}
	return 0;
}

/* The attrs named by the cursors of a page-info map ({ns: {"start-cursor":
 * [e, a, v, t], "end-cursor": [...]}}): the evaluator orders by them. */
static void
walk_page_info(struct query_reads *r, const cJSON *page_info)
{
	static const char *const keys[] = { "start-cursor", "end-cursor" };
	const cJSON *ns;

	cJSON_ArrayForEach(ns, page_info)
		for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
			const cJSON *a = cJSON_GetArrayItem(json_get(ns, keys[i]), 1);
			struct rattr *ra = cJSON_IsString(a) ? find_attr(r, a->valuestring) : NULL;

			if (ra)
				mark(ra, true);
		}
}

/* delete-entity of etype x (store/tstore.c delete_entity): kills the
 * entity's cells of attrs whose forward etype is x, removes ref triples
 * into it whose reverse etype is x, deletes the targets of any of its
 * on-delete-reverse cells (whatever that attr's forward etype) and the
 * sources of on-delete ref triples into it. Close over the cascades, then
 * see whether any touched attr is read. */
static int
compute_del_hits(struct query_reads *r)
{
	bool *in = calloc(r->netypes + 1, sizeof(*in));
	bool any_rev_cascade = false;

	if (in == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		any_rev_cascade |= r->v[i].del_rev_cascade;
	for (size_t x = 0; x < r->netypes; x++) {
		bool grew = true;

		memset(in, 0, r->netypes * sizeof(*in));
		in[x] = true;
		/* an entity id may hold cells of any etype's attrs, so every
		 * on-delete-reverse attr may cascade from any deletion */
		if (any_rev_cascade)
			for (size_t i = 0; i < r->n; i++)
				if (r->v[i].del_rev_cascade && r->v[i].rev_ei >= 0)
					in[r->v[i].rev_ei] = true;
		while (grew) {
			grew = false;
			for (size_t i = 0; i < r->n; i++) {
				const struct rattr *a = &r->v[i];

				if (a->del_cascade && a->rev_ei >= 0 && in[a->rev_ei] &&
				    a->fwd_ei >= 0 && !in[a->fwd_ei])
					in[a->fwd_ei] = grew = true;
			}
		}
		for (size_t i = 0; i < r->n && !r->del_hits[x]; i++) {
			const struct rattr *a = &r->v[i];

			if (a->read && ((a->fwd_ei >= 0 && in[a->fwd_ei]) ||
			    (a->ref && a->rev_ei >= 0 && in[a->rev_ei])))
				r->del_hits[x] = true;
		}
	}
	free(in);
	return 0;
}

int
query_reads_new(const struct attrs *attrs, const cJSON *q, const cJSON *page_info,
    struct query_reads **ret)
{
	struct query_reads *r;
	const cJSON *c;
	int err;

	if (!cJSON_IsObject(q))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	if ((err = load_attrs(r, attrs)) < 0)
		goto fail;
	cJSON_ArrayForEach(c, q) {
		if (strcmp(c->string, "$$ruleParams") == 0)
			continue;
		if ((err = walk_ns(r, c->string, c, 0)) < 0)
			goto fail;
	}
	walk_page_info(r, page_info);
	if ((err = compute_del_hits(r)) < 0)
		goto fail;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].read)
			filter_add(&r->filter, r->v[i].id);
	*ret = r;
	return 0;
fail:
	query_reads_free(r);
	return err;
}

void
query_reads_free(struct query_reads *r)
{
	if (r == NULL)
		return;
	attrs_free(r->attrs);
	free(r->v);
	free(r->etypes);
	free(r->del_hits);
	free(r);
}

bool
query_reads_attr(const struct query_reads *r, const char *attr_id)
{
	const struct rattr *a = find_attr(r, attr_id);

	return a && a->read;
}

/* ---- the predicate ---- */

/* A step on one attr (add-triple, retract-triple, deep-merge-triple): e and
 * v, lookup refs or not, only select which entity; the write is to the cell
 * (e, step[2]) alone. An attr that only fills objects matters only for an
 * entity the result shows: the entities each namespace holds do not depend
 * on it, and an object reads only its own entity's cells. */
struct judge {
	const struct instaql_shown *shown;	/* NULL: by attr only */
	const struct query_reads_store *store;	/* NULL: no link is ruled out */
};

/* May eid, of etype, be linked in the store: the end of a forward link
 * into etype, or holding an attr of etype (a reverse link from it)? */
static bool
maybe_linked(const struct query_reads *r, const struct query_reads_store *st, const char *etype,
    const char *eid)
{
	if (st == NULL || etype == NULL || st->has_entity(st->ud, etype, eid))
		return true;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].ref && str_eq(r->v[i].rev_e, etype) && st->has_ref_to(st->ud, r->v[i].id, eid))
			return true;
	return false;
}

static bool
step_cell(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	const cJSON *a = cJSON_GetArrayItem(step, 2), *e = cJSON_GetArrayItem(step, 1);
	const struct rattr *ra = cJSON_IsString(a) ? find_attr(r, a->valuestring) : NULL;

	if (ra == NULL)
		return true;
	if (!ra->read)
		return false;
	if (ra->structural || j->shown == NULL || !cJSON_IsString(e))
		return true;	/* a lookup ref names an entity we cannot tell */
	if (instaql_shown_has(j->shown, e->valuestring))
		return true;
	/* an entity not shown: its objects' cells do not matter, and its id
	 * triple only once it is linked (a new link is a structural step) */
	return ra->link_id && maybe_linked(r, j->store, ra->fwd_e, e->valuestring);
}

static bool
step_triple(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	return step_cell(r, step, j);
}

static bool
step_merge(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	const cJSON *a = cJSON_GetArrayItem(step, 2);
	const struct rattr *ra = cJSON_IsString(a) ? find_attr(r, a->valuestring) : NULL;

	/* on a link the JS client throws and the query fails */
	return ra == NULL || !ra->blob || step_cell(r, step, j);
}

static bool
step_delete(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	const cJSON *t = cJSON_GetArrayItem(step, 2);

	(void)j;	/* cascades reach entities the result does not name */
	if (!cJSON_IsString(t))
		return true;	/* no etype: every attr of the entity goes */
	for (size_t x = 0; x < r->netypes; x++)
		if (strcmp(r->etypes[x], t->valuestring) == 0)
			return r->del_hits[x];
	return true;
}

/* The attr of an add-attr step when attrs already hold it exactly as sent,
 * else NULL. Every pending write re-sends the add-attr steps of the attrs it
 * created; tstore keeps such an attr as it is. */
static const char *
attr_held_as_sent(const struct attrs *attrs, const cJSON *step)
{
	const cJSON *x = cJSON_GetArrayItem(step, 1), *have;
	const char *id = cJSON_IsObject(x) ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "id")) : NULL;

	have = id ? attrs_by_id(attrs, id) : NULL;
	return have && cJSON_Compare(have, x, 1) ? id : NULL;
}

/* An add-attr of an attr the reads were computed with, as sent, can change
 * a result only where the query reads that attr: the labels and fields it
 * resolves already count it. (Until the write applies, a store built over
 * older attrs lacks it; which attrs a label names is then what the write
 * changes, and a query that reads none of them does not see it.) */
static bool
step_add_attr(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	const char *id = attr_held_as_sent(r->attrs, step);
	const struct rattr *ra = id ? find_attr(r, id) : NULL;

	(void)j;
	return ra == NULL || ra->read;
}

static bool
step_never(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	(void)r;
	(void)step;
	(void)j;
	return false;
}

static bool
step_always(const struct query_reads *r, const cJSON *step, const struct judge *j)
{
	(void)r;
	(void)step;
	(void)j;
	return true;
}

/* How the quick test (query_reads_steps_filter) may summarise a step. */
enum step_filter {
	FILTER_NO,		/* it cannot: the full test decides */
	FILTER_ATTR,		/* by its attr, when known */
	FILTER_BLOB_ATTR,	/* by its attr, when known and a blob */
	FILTER_NOTHING,		/* it affects no query */
	FILTER_ADD_ATTR,	/* by the attr it adds, when held as sent */
};

static const struct step_kind {
	const char *action;
	bool (*affects)(const struct query_reads *r, const cJSON *step, const struct judge *j);
	enum step_filter filter;
} step_table[] = {
	{ "add-triple", step_triple, FILTER_ATTR },
	{ "retract-triple", step_triple, FILTER_ATTR },
	{ "deep-merge-triple", step_merge, FILTER_BLOB_ATTR },
	{ "delete-entity", step_delete, FILTER_NO },
	{ "rule-params", step_never, FILTER_NOTHING },
	/* attrs change what every label means */
	{ "add-attr", step_add_attr, FILTER_ADD_ATTR },
	{ "update-attr", step_always, FILTER_NO },
	{ "delete-attr", step_always, FILTER_NO },
	{ "restore-attr", step_always, FILTER_NO },
};

/* The kind of a tx-step, NULL for a malformed or unknown one. */
static const struct step_kind *
step_kind_of(const cJSON *step)
{
	const char *act = cJSON_IsArray(step) ? cJSON_GetStringValue(cJSON_GetArrayItem(step, 0)) : NULL;

	for (size_t i = 0; act && i < ELEMENTSOF(step_table); i++)
		if (strcmp(step_table[i].action, act) == 0)
			return &step_table[i];
	return NULL;
}

bool
query_reads_affected(const struct query_reads *r, const cJSON *tx_steps, const struct instaql_shown *shown,
    const struct query_reads_store *store)
{
	const struct judge j = { .shown = shown, .store = store };
	const cJSON *step;

	if (r->all || !cJSON_IsArray(tx_steps))
		return true;
	cJSON_ArrayForEach(step, tx_steps) {
		const struct step_kind *k = step_kind_of(step);

		if (k == NULL || k->affects(r, step, &j))
			return true;
	}
	return false;
}

/* ---- the quick test ---- */

bool
query_reads_steps_filter(const cJSON *tx_steps, const struct attrs *attrs, struct query_reads_filter *ret)
{
	const cJSON *step;

	*ret = (struct query_reads_filter){0};
	if (!cJSON_IsArray(tx_steps) || attrs == NULL)
		return false;
	cJSON_ArrayForEach(step, tx_steps) {
		const struct step_kind *k = step_kind_of(step);
		const char *a = cJSON_GetStringValue(cJSON_GetArrayItem(step, 2));
		const cJSON *attr = a ? attrs_by_id(attrs, a) : NULL;

		if (k == NULL || k->filter == FILTER_NO)
			return false;
		if (k->filter == FILTER_NOTHING)
			continue;
		if (k->filter == FILTER_ADD_ATTR) {
			if ((a = attr_held_as_sent(attrs, step)) == NULL)
				return false;
			filter_add(ret, a);
			continue;
		}
		if (attr == NULL || (k->filter == FILTER_BLOB_ATTR && !str_field_is(attr, "value-type", "blob")))
			return false;
		filter_add(ret, a);
	}
	return true;
}

bool
query_reads_may_touch(const struct query_reads *r, const struct query_reads_filter *f)
{
	if (r->all)
		return true;
	for (size_t i = 0; i < ELEMENTSOF(f->w); i++)
		if (r->filter.w[i] & f->w[i])
			return true;
	return false;
}
