/* The local InstaQL engine: compiles each namespace of a query into triple
 * patterns with variables named by (etype, depth), as @instantdb/core's
 * instaql.ts does, runs them with a nested-loop datalog over the tstore
 * indexes, then sorts, pages, shapes and nests the objects. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/instaql.h"
#include "store/instaql-js.h"
#include "store/tstore-internal.h"
#include "store/util.h"

/* ---- arena for compiled queries ---- */

struct ablock {
	struct ablock *next;
	size_t used, size;
	max_align_t data[];
};

struct arena {
	struct ablock *head;
};

static void *
arena_alloc(struct arena *a, size_t n)
{
	struct ablock *b = a->head;
	void *p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (b == NULL || b->used + n > b->size) {
		size_t size = n > 16384 ? n : 16384;

		b = malloc(sizeof(*b) + size);
		if (b == NULL)
			return NULL;
		b->size = size;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

static char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = arena_alloc(a, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a->head) {
		struct ablock *n = a->head->next;

		free(a->head);
		a->head = n;
	}
}

/* ---- compiled patterns ---- */

enum { TK_VAR, TK_CONST, TK_NOMATCH, TK_ARGS, TK_PARAM };
enum { F_IN, F_NOT, F_ISNULL, F_CMP };
enum { OP_GT, OP_GTE, OP_LT, OP_LTE, OP_LIKE, OP_ILIKE };
enum { PK_TRIPLE, PK_OR, PK_AND };

struct cmpop {
	int op;
	struct jv val;
	struct js_like *like;
};

struct filt {
	int kind;
	uint32_t *vids;		/* F_IN: one per list element, VID_NONE if absent */
	uint32_t nvids;
	uint32_t not_vid;	/* F_NOT */
	uint32_t isnull_attr;	/* F_ISNULL */
	bool isnull, reverse;
	struct cmpop ops[6];	/* F_CMP, all must hold */
	int nops;
	bool date;
};

struct term {
	int kind;
	uint32_t x;		/* slot (TK_VAR) or vid (TK_CONST) */
	struct filt *f;
};

struct plist;

struct pat {
	int kind;
	struct term t[4];
	struct plist *br;	/* PK_OR / PK_AND: branches */
	uint32_t nbr;
};

struct plist {
	struct pat *v;
	uint32_t n, cap;
};

/* makeVar: the root names ?x-level; an and/or branch appends -i except for
 * the branch's join symbol. */
struct mkvar {
	const struct mkvar *parent;
	const char *join_sym;
	int idx;
};

struct cchild;

/* One compiled namespace form at one depth. */
struct cns {
	const cJSON *form;
	const char *etype;
	uint32_t etype_vid;
	int level;
	const char *path;
	int status;		/* 0 or -ENOENT: the namespace is [] */
	bool leading;
	struct plist pats;
	char **vars;
	uint32_t nvars, capvars;
	uint32_t ent_slot, time_slot;
	/* object attrs: labels and attrs (NULL labels: no blob attrs at all) */
	const char **labels;
	const struct tattr **oattrs;
	uint32_t nattrs;
	bool no_attrs;
	int64_t limit;		/* 0: none */
	const char *parent_var;	/* child forms: the join's parameter */
	struct cchild *kids;
	uint32_t nkids;
};

struct cchild {
	const char *label;
	bool shadows_attr;	/* an object attr has the same label */
	bool singular;
	bool compiled;
	int status;		/* 0, -ENOENT */
	struct cns *ns;
};

struct ev {
	struct tstore *s;
	const struct instaql_opts *opts;
	struct arena ar;
	unsigned seed;
	char *err;
	cJSON *owned;		/* JSON made during compile ($ne rewrites) */
	struct js_like **likes;
	size_t nlikes, caplikes;
};

static int
ev_fail(struct ev *ev, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	if (ev->err)
		return -EINVAL;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	ev->err = m;
	return m ? -EINVAL : -ENOMEM;
}

static int
plist_push(struct ev *ev, struct plist *l, struct pat **ret)
{
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 8;
		struct pat *nv = arena_alloc(&ev->ar, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		if (l->n)
			memcpy(nv, l->v, l->n * sizeof(*nv));
		l->v = nv;
		l->cap = cap;
	}
	*ret = &l->v[l->n++];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

static const char *
mv_make(struct ev *ev, const struct mkvar *mv, const char *x, int level)
{
	const char *base;

	if (mv == NULL)
		return arena_printf(&ev->ar, "?%s-%d", x, level);
	base = mv_make(ev, mv->parent, x, level);
	if (base == NULL || strcmp(base, mv->join_sym) == 0)
		return base;
	return arena_printf(&ev->ar, "%s-%d", base, mv->idx);
}

static const char *
wildcard(struct ev *ev, const char *name)
{
	return arena_printf(&ev->ar, "?_%s-%u", name, ev->seed++);
}

static int
slot_of(struct ev *ev, struct cns *ns, const char *name, uint32_t *ret)
{
	for (uint32_t i = 0; i < ns->nvars; i++)
		if (strcmp(ns->vars[i], name) == 0) {
			*ret = i;
			return 0;
		}
	if (ns->nvars == ns->capvars) {
		uint32_t cap = ns->capvars ? ns->capvars * 2 : 16;
		char **nv = arena_alloc(&ev->ar, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		if (ns->nvars)
			memcpy(nv, ns->vars, ns->nvars * sizeof(*nv));
		ns->vars = nv;
		ns->capvars = cap;
	}
	ns->vars[ns->nvars] = (char *)name;
	*ret = ns->nvars++;
	return 0;
}

static int
term_var(struct ev *ev, struct cns *ns, const char *name, struct term *t)
{
	if (name == NULL)
		return -ENOMEM;
	if (ns->parent_var && strcmp(name, ns->parent_var) == 0) {
		t->kind = TK_PARAM;
		return 0;
	}
	t->kind = TK_VAR;
	return slot_of(ev, ns, name, &t->x);
}

/* A JSON scalar as a pattern part: a string starting with ? is a variable,
 * as in the JS datalog; other scalars are constants; objects never match. */
static int
term_value(struct ev *ev, struct cns *ns, const cJSON *v, struct term *t)
{
	if (cJSON_IsString(v) && v->valuestring[0] == '?') {
		const char *name = arena_printf(&ev->ar, "%s", v->valuestring);

		t->kind = TK_VAR;
		return name ? slot_of(ev, ns, name, &t->x) : -ENOMEM;
	}
	if (v == NULL || cJSON_IsObject(v) || cJSON_IsArray(v)) {
		t->kind = TK_NOMATCH;
		return 0;
	}
	t->x = tstore_tv_find_json(ev->s, v);
	t->kind = t->x == VID_NONE ? TK_NOMATCH : TK_CONST;
	return 0;
}

static const char *
vid_str(const struct tstore *s, uint32_t vid)
{
	return vid ? tstore_tv_get(s, vid)->str : NULL;
}

static const char *
attr_id_str(const struct tstore *s, const struct tattr *at)
{
	return vid_str(s, at->id);
}

/* refAttrPat: one hop through a link label of etype. */
static int
ref_attr_pat(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype,
    int level, const char *label, const char *where, const char **ret_next_etype,
    struct pat *ret)
{
	uint32_t ev_etype = tstore_tv_find_str(ev->s, etype), ev_label = tstore_tv_find_str(ev->s, label);
	const struct tattr *fwd = tstore_attr_fwd(ev->s, ev_etype, ev_label);
	const struct tattr *rev = tstore_attr_rev(ev->s, ev_etype, ev_label);
	const struct tattr *at = fwd ? fwd : rev;
	const char *fe, *re;
	int r;

	if (at == NULL)
		return -ENOENT;
	if (!at->ref)
		return ev_fail(ev, "%s: %s is not a link of %s (attr %s is not a ref)",
		    where, label, etype, attr_id_str(ev->s, at));
	fe = vid_str(ev->s, at->fwd_etype);
	re = vid_str(ev->s, at->rev_etype);
	if (fe == NULL || re == NULL)
		return ev_fail(ev, "%s: link attr %s has no reverse identity", where, attr_id_str(ev->s, at));
	ret->kind = PK_TRIPLE;
	if (fwd) {
		if ((r = term_var(ev, ns, mv_make(ev, mv, fe, level), &ret->t[0])) < 0 ||
		    (r = term_var(ev, ns, mv_make(ev, mv, re, level + 1), &ret->t[2])) < 0)
			return r;
	} else {
		if ((r = term_var(ev, ns, mv_make(ev, mv, fe, level + 1), &ret->t[0])) < 0 ||
		    (r = term_var(ev, ns, mv_make(ev, mv, re, level), &ret->t[2])) < 0)
			return r;
	}
	ret->t[1] = (struct term){ .kind = TK_CONST, .x = at->id };
	if ((r = term_var(ev, ns, wildcard(ev, "time"), &ret->t[3])) < 0)
		return r;
	*ret_next_etype = fwd ? re : fe;
	return 0;
}

static bool
has_key(const cJSON *v, const char *k)
{
	return cJSON_IsObject(v) && json_get(v, k) != NULL;
}

static bool
json_truthy(const cJSON *j)
{
	if (j == NULL || cJSON_IsNull(j) || cJSON_IsFalse(j))
		return false;
	if (cJSON_IsNumber(j))
		return j->valuedouble != 0 && !isnan(j->valuedouble);
	if (cJSON_IsString(j))
		return j->valuestring[0] != 0;
	return true;
}

static int
add_like(struct ev *ev, const cJSON *p, bool icase, struct js_like **ret)
{
	struct js_like *l = arena_alloc(&ev->ar, sizeof(*l));
	int r;

	if (l == NULL)
		return -ENOMEM;
	if (ev->nlikes == ev->caplikes) {
		size_t cap = ev->caplikes ? ev->caplikes * 2 : 8;
		struct js_like **nv = realloc(ev->likes, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		ev->likes = nv;
		ev->caplikes = cap;
	}
	if ((r = instaql_js_like_compile(p, icase, l)) < 0)
		return r;
	ev->likes[ev->nlikes++] = l;
	*ret = l;
	return 0;
}

/* parseValue for a forward attr: the value part of the pattern. */
static int
parse_value(struct ev *ev, struct cns *ns, const struct tattr *at, const cJSON *v, struct term *t)
{
	static const char *const cmp_keys[] = { "$gt", "$gte", "$lt", "$lte", "$like", "$ilike" };
	struct filt *f;
	bool has_in, has_not;
	int ncmp = 0;

	if (!cJSON_IsObject(v))
		return term_value(ev, ns, v, t);
	has_in = has_key(v, "$in") || has_key(v, "in");
	has_not = has_key(v, "$not");
	for (size_t i = 0; i < ELEMENTSOF(cmp_keys); i++)
		ncmp += has_key(v, cmp_keys[i]);
	if (!has_in && ncmp == 0 && !has_not) {
		t->kind = TK_NOMATCH;	/* a literal object: identity keys never match */
		return 0;
	}
	f = arena_alloc(&ev->ar, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	t->kind = TK_ARGS;
	t->f = f;
	if (has_in || ncmp == 0) {
		const cJSON *list, *c;
		uint32_t n = 0;

		if (has_not) {
			f->kind = F_NOT;
			f->not_vid = tstore_tv_find_json(ev->s, json_get(v, "$not"));
			return 0;
		}
		f->kind = F_IN;
		list = json_get(v, "in");
		if (!json_truthy(list))
			list = json_get(v, "$in");
		if (!json_truthy(list) || !cJSON_IsArray(list)) {
			t->kind = TK_NOMATCH;
			return 0;
		}
		f->vids = arena_alloc(&ev->ar, (size_t)(cJSON_GetArraySize(list) + 1) * sizeof(*f->vids));
		if (f->vids == NULL)
			return -ENOMEM;
		cJSON_ArrayForEach(c, list)
			f->vids[n++] = (cJSON_IsObject(c) || cJSON_IsArray(c)) ? VID_NONE : tstore_tv_find_json(ev->s, c);
		f->nvids = n;
		return 0;
	}
	/* Comparators: the server applies every one given (the JS client only
	 * the first; store/QUERY-DIFFERENCES.md). */
	f->kind = F_CMP;
	f->date = at->ctype == CT_DATE;
	for (size_t i = 0; i < ELEMENTSOF(cmp_keys); i++) {
		const cJSON *x = json_get(v, cmp_keys[i]);
		struct cmpop *op;
		int r;

		if (x == NULL)
			continue;
		op = &f->ops[f->nops++];
		op->op = (int)i;
		op->val = instaql_jv_from_json(x);
		if (i >= OP_LIKE && (r = add_like(ev, x, i == OP_ILIKE, &op->like)) < 0)
			return r;
	}
	return 0;
}

/* valueAttrPat: the last segment of a where path. */
static int
value_attr_pat(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype,
    int level, const char *label, const cJSON *v, const char *where, struct pat *ret)
{
	uint32_t ev_etype = tstore_tv_find_str(ev->s, etype), ev_label = tstore_tv_find_str(ev->s, label);
	const struct tattr *fwd = tstore_attr_fwd(ev->s, ev_etype, ev_label);
	const struct tattr *rev = tstore_attr_rev(ev->s, ev_etype, ev_label);
	const struct tattr *at = fwd ? fwd : rev;
	int r;

	if (at == NULL)
		return -ENOENT;
	ret->kind = PK_TRIPLE;
	if ((r = term_var(ev, ns, wildcard(ev, "time"), &ret->t[3])) < 0)
		return r;
	if (has_key(v, "$isNull")) {
		const struct tattr *id = tstore_attr_fwd(ev->s, ev_etype, tstore_tv_find_str(ev->s, "id"));
		struct filt *f;

		if (id == NULL)
			return -ENOENT;
		f = arena_alloc(&ev->ar, sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		f->kind = F_ISNULL;
		f->isnull_attr = at->id;
		f->isnull = json_truthy(json_get(v, "$isNull"));
		f->reverse = fwd == NULL;
		ret->t[1] = (struct term){ .kind = TK_CONST, .x = id->id };
		ret->t[2] = (struct term){ .kind = TK_ARGS, .f = f };
		return term_var(ev, ns, mv_make(ev, mv, etype, level), &ret->t[0]);
	}
	if (cJSON_IsNull(v))
		return ev_fail(ev, "%s: null is not a valid where value (use {\"$isNull\": true})", where);
	ret->t[1] = (struct term){ .kind = TK_CONST, .x = at->id };
	if (fwd) {
		if ((r = term_var(ev, ns, mv_make(ev, mv, etype, level), &ret->t[0])) < 0)
			return r;
		return parse_value(ev, ns, at, v, &ret->t[2]);
	}
	if ((r = term_value(ev, ns, v, &ret->t[0])) < 0)
		return r;
	return term_var(ev, ns, mv_make(ev, mv, etype, level), &ret->t[2]);
}

/* whereCondAttrPats: the hops of path[0..n-1) then the value pattern. */
static int
where_cond_pats(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype,
    int level, char **path, int n, const cJSON *v, const char *where, struct plist *out)
{
	const char *cur = etype;
	int lvl = level, r;
	struct pat *p;

	for (int i = 0; i < n - 1; i++) {
		const char *next;

		if ((r = plist_push(ev, out, &p)) < 0)
			return r;
		r = ref_attr_pat(ev, ns, mv, cur, lvl, path[i], where, &next, p);
		if (r < 0)
			return r;
		cur = next;
		lvl++;
	}
	if ((r = plist_push(ev, out, &p)) < 0)
		return r;
	return value_attr_pat(ev, ns, mv, cur, lvl, path[n - 1], v, where, p);
}

static int parse_where(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype,
    int level, const cJSON *where, const char *wpath, struct plist *out);

/* The OR of "path[0..i] is null" for every prefix: any missing hop counts. */
static int
null_prefix_pats(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype,
    int level, char **path, int n, const char *where, struct pat *orp, int first_branch)
{
	static cJSON *is_null_true;
	int r;

	if (is_null_true == NULL) {
		/* a constant {"$isNull": true}, kept for the life of the process */
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || cJSON_AddTrueToObject(o, "$isNull") == NULL) {
			cJSON_Delete(o);
			return -ENOMEM;
		}
		is_null_true = o;
	}
	for (int i = 1; i <= n; i++) {
		struct plist *b = &orp->br[first_branch + i - 1];

		if ((r = where_cond_pats(ev, ns, mv, etype, level, path, i, is_null_true, where, b)) < 0)
			return r;
	}
	return 0;
}

static int
split_path(struct ev *ev, const char *k, char ***ret, int *ret_n)
{
	int n = 1;
	char *copy = arena_printf(&ev->ar, "%s", k), **parts, *p;

	if (copy == NULL)
		return -ENOMEM;
	for (const char *q = k; *q; q++)
		n += *q == '.';
	parts = arena_alloc(&ev->ar, (size_t)n * sizeof(*parts));
	if (parts == NULL)
		return -ENOMEM;
	n = 0;
	parts[n++] = copy;
	for (p = copy; *p; p++)
		if (*p == '.') {
			*p = 0;
			parts[n++] = p + 1;
		}
	*ret = parts;
	*ret_n = n;
	return 0;
}

static int
parse_clauses(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype, int level,
    const cJSON *arr, int kind, const char *wpath, struct plist *out)
{
	const char *join_sym = mv_make(ev, mv, etype, level);
	struct pat *p;
	const cJSON *w;
	int i = 0, r;

	if (join_sym == NULL || (r = plist_push(ev, out, &p)) < 0)
		return join_sym ? r : -ENOMEM;
	p->kind = kind;
	p->nbr = (uint32_t)cJSON_GetArraySize(arr);
	p->br = arena_alloc(&ev->ar, (p->nbr + 1) * sizeof(*p->br));
	if (p->br == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(w, arr) {
		struct mkvar *sub = arena_alloc(&ev->ar, sizeof(*sub));
		const char *sp = arena_printf(&ev->ar, "%s.%s[%d]", wpath, kind == PK_OR ? "or" : "and", i);
		struct plist tmp = {0};

		if (sub == NULL || sp == NULL)
			return -ENOMEM;
		sub->parent = mv;
		sub->join_sym = join_sym;
		sub->idx = i;
		if (!cJSON_IsObject(w))
			return ev_fail(ev, "%s: must be an object", sp);
		r = parse_where(ev, ns, sub, etype, level, w, sp, &tmp);
		if (r < 0)
			return r;
		/* p may have moved if out grew; re-fetch */
		p = &out->v[out->n - 1];
		p->br[i] = tmp;
		i++;
	}
	return 0;
}

static int
parse_where(struct ev *ev, struct cns *ns, const struct mkvar *mv, const char *etype,
    int level, const cJSON *where, const char *wpath, struct plist *out)
{
	const cJSON *kv;
	int r;

	cJSON_ArrayForEach(kv, where) {
		const char *k = kv->string;
		const cJSON *v = kv;
		const char *kp = arena_printf(&ev->ar, "%s.%s", wpath, k);
		char **path;
		int n;

		if (kp == NULL)
			return -ENOMEM;
		if ((strcmp(k, "or") == 0 || strcmp(k, "and") == 0)) {
			if (!cJSON_IsArray(v))
				return ev_fail(ev, "%s: must be an array of where clauses", kp);
			r = parse_clauses(ev, ns, mv, etype, level, v, k[0] == 'o' ? PK_OR : PK_AND, wpath, out);
			if (r < 0)
				return r;
			continue;
		}
		if (strcmp(k, "$entityIdStartsWith") == 0)
			continue;
		if ((r = split_path(ev, k, &path, &n)) < 0)
			return r;
		if (has_key(v, "$ne")) {
			/* $ne is $not */
			cJSON *c = cJSON_Duplicate(v, 1), *x;

			if (c == NULL)
				return -ENOMEM;
			cJSON_AddItemToArray(ev->owned, c);
			x = cJSON_DetachItemFromObjectCaseSensitive(c, "$ne");
			cJSON_DeleteItemFromObjectCaseSensitive(c, "$not");
			cJSON_AddItemToObject(c, "$not", x);
			v = c;
		}
		if (has_key(v, "$not") ||
		    (has_key(v, "$isNull") && cJSON_IsTrue(json_get(v, "$isNull")) && n > 1)) {
			bool is_not = has_key(v, "$not");
			struct pat *p;
			int nb = n + (is_not ? 1 : 0);

			if ((r = plist_push(ev, out, &p)) < 0)
				return r;
			p->kind = PK_OR;
			p->nbr = (uint32_t)nb;
			p->br = arena_alloc(&ev->ar, (size_t)nb * sizeof(*p->br));
			if (p->br == NULL)
				return -ENOMEM;
			if (is_not && (r = where_cond_pats(ev, ns, mv, etype, level, path, n, v, kp, &p->br[0])) < 0)
				return r;
			if ((r = null_prefix_pats(ev, ns, mv, etype, level, path, n, kp, p, is_not ? 1 : 0)) < 0)
				return r;
			continue;
		}
		if ((r = where_cond_pats(ev, ns, mv, etype, level, path, n, v, kp, out)) < 0)
			return r;
	}
	return 0;
}

/* ---- compiling a namespace ---- */

static bool
form_leading(const cJSON *form)
{
	const cJSON *d = json_get(form, "$");

	return !json_truthy(json_get(d, "offset")) && !json_truthy(json_get(d, "before")) &&
	    !json_truthy(json_get(d, "after"));
}

static int
compile_object_attrs(struct ev *ev, struct cns *ns)
{
	const cJSON *fields = json_get(json_get(ns->form, "$"), "fields");
	uint32_t id_vid = tstore_tv_find_str(ev->s, "id");

	if (!cJSON_IsArray(fields)) {
		const struct u32vec *bl = tstore_blob_attrs(ev->s, ns->etype_vid);

		if (bl == NULL) {
			ns->no_attrs = true;
			return 0;
		}
		ns->labels = arena_alloc(&ev->ar, (bl->n + 1) * sizeof(*ns->labels));
		ns->oattrs = arena_alloc(&ev->ar, (bl->n + 1) * sizeof(*ns->oattrs));
		if (ns->labels == NULL || ns->oattrs == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < bl->n; i++) {
			uint32_t ai = tstore_hmap_get(&ev->s->at_blob, ns->etype_vid, bl->v[i], 0);

			if (ai == 0)
				continue;
			ns->labels[ns->nattrs] = vid_str(ev->s, bl->v[i]);
			ns->oattrs[ns->nattrs++] = &ev->s->at[ai - 1];
		}
		return 0;
	} else {
		int n = cJSON_GetArraySize(fields) + 1;
		const cJSON *f;
		bool has_id = false;

		ns->labels = arena_alloc(&ev->ar, (size_t)n * sizeof(*ns->labels));
		ns->oattrs = arena_alloc(&ev->ar, (size_t)n * sizeof(*ns->oattrs));
		if (ns->labels == NULL || ns->oattrs == NULL)
			return -ENOMEM;
		cJSON_ArrayForEach(f, fields) {
			const struct tattr *at;
			bool dup = false;

			if (!cJSON_IsString(f))
				continue;
			at = tstore_attr_fwd(ev->s, ns->etype_vid, tstore_tv_find_str(ev->s, f->valuestring));
			if (at == NULL || !at->blob)
				continue;
			for (uint32_t i = 0; i < ns->nattrs; i++)
				if (strcmp(ns->labels[i], f->valuestring) == 0) {
					ns->oattrs[i] = at;
					dup = true;
				}
			if (dup)
				continue;
			if (strcmp(f->valuestring, "id") == 0)
				has_id = true;
			ns->labels[ns->nattrs] = vid_str(ev->s, at->fwd_label);
			ns->oattrs[ns->nattrs++] = at;
		}
		if (!has_id) {
			const struct tattr *at = tstore_attr_fwd(ev->s, ns->etype_vid, id_vid);

			if (at) {
				ns->labels[ns->nattrs] = "id";
				ns->oattrs[ns->nattrs++] = at;
			}
		}
	}
	return 0;
}

/* Compile the where, the id pattern and the options of a namespace.
 * join (may be NULL) is the link pattern to the parent, placed first. */
static int
compile_ns(struct ev *ev, struct cns *ns, const struct pat *join)
{
	const cJSON *d = json_get(ns->form, "$");
	const cJSON *where = json_get(d, "where");
	const struct tattr *pk;
	struct pat *p;
	const char *wpath;
	int r;

	ns->etype_vid = tstore_tv_find_str(ev->s, ns->etype);
	ns->leading = form_leading(ns->form);
	if (join) {
		if ((r = plist_push(ev, &ns->pats, &p)) < 0)
			return r;
		*p = *join;
	}
	wpath = arena_printf(&ev->ar, "%s.$.where", ns->path);
	if (wpath == NULL)
		return -ENOMEM;
	if (json_truthy(where)) {
		if (!cJSON_IsObject(where))
			return ev_fail(ev, "%s: must be an object", wpath);
		if ((r = parse_where(ev, ns, NULL, ns->etype, ns->level, where, wpath, &ns->pats)) < 0)
			return r;
	}
	pk = tstore_attr_pk(ev->s, ns->etype_vid);
	if (pk == NULL)
		return -ENOENT;
	if ((r = plist_push(ev, &ns->pats, &p)) < 0)
		return r;
	p->kind = PK_TRIPLE;
	if ((r = term_var(ev, ns, mv_make(ev, NULL, ns->etype, ns->level), &p->t[0])) < 0 ||
	    (r = term_var(ev, ns, mv_make(ev, NULL, ns->etype, ns->level), &p->t[2])) < 0 ||
	    (r = term_var(ev, ns, mv_make(ev, NULL, "time", ns->level), &p->t[3])) < 0)
		return r;
	p->t[1] = (struct term){ .kind = TK_CONST, .x = pk->id };
	ns->ent_slot = p->t[0].x;
	ns->time_slot = p->t[3].x;
	if (p->t[0].kind != TK_VAR || p->t[3].kind != TK_VAR)
		return ev_fail(ev, "%s: unsupported variable naming", ns->path);
	{
		const cJSON *l = json_get(d, "limit");

		if (!json_truthy(l))
			l = json_get(d, "first");
		if (!json_truthy(l))
			l = json_get(d, "last");
		ns->limit = json_truthy(l) && cJSON_IsNumber(l) ? (int64_t)l->valuedouble : 0;
	}
	if ((r = compile_object_attrs(ev, ns)) < 0)
		return r;
	for (uint32_t i = 0; i < ns->nkids; i++)
		for (uint32_t j = 0; j < ns->nattrs; j++)
			if (strcmp(ns->kids[i].label, ns->labels[j]) == 0)
				ns->kids[i].shadows_attr = true;
	return 0;
}

static int
new_ns(struct ev *ev, const cJSON *form, const char *etype, int level, const char *path, struct cns **ret)
{
	struct cns *ns = arena_alloc(&ev->ar, sizeof(*ns));
	const cJSON *c;
	uint32_t n = 0;

	if (ns == NULL)
		return -ENOMEM;
	ns->form = form;
	ns->etype = etype;
	ns->level = level;
	ns->path = path;
	cJSON_ArrayForEach(c, form)
		n += strcmp(c->string, "$") != 0;
	ns->kids = arena_alloc(&ev->ar, (n + 1) * sizeof(*ns->kids));
	if (ns->kids == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(c, form) {
		if (strcmp(c->string, "$") == 0)
			continue;
		ns->kids[ns->nkids++].label = c->string;
	}
	*ret = ns;
	return 0;
}

static bool
link_singular(struct ev *ev, const char *etype, const char *label)
{
	const cJSON *li = ev->opts ? ev->opts->link_index : NULL;

	return cJSON_IsTrue(json_get(json_get(json_get(li, etype), label), "isSingular"));
}

/* Compile a child link of parent: makeJoin, then the child's namespace. */
static int
compile_child(struct ev *ev, struct cns *parent, struct cchild *k)
{
	struct cns tmp = {0};
	struct pat join = {0};
	const char *next_etype;
	const char *path = arena_printf(&ev->ar, "%s.%s", parent->path, k->label);
	struct cns *ns;
	int r;

	k->compiled = true;
	k->singular = link_singular(ev, parent->etype, k->label);
	if (path == NULL)
		return -ENOMEM;
	/* the join's variables live in the child's table: compile into tmp
	 * first to learn the next etype, then again into the child */
	tmp.parent_var = mv_make(ev, NULL, parent->etype, parent->level);
	if (tmp.parent_var == NULL)
		return -ENOMEM;
	r = ref_attr_pat(ev, &tmp, NULL, parent->etype, parent->level, k->label, path, &next_etype, &join);
	if (r == -ENOENT) {
		k->status = -ENOENT;
		return 0;
	}
	if (r < 0)
		return r;
	if ((r = new_ns(ev, json_get(parent->form, k->label), next_etype, parent->level + 1, path, &ns)) < 0)
		return r;
	ns->parent_var = tmp.parent_var;
	r = ref_attr_pat(ev, ns, NULL, parent->etype, parent->level, k->label, path, &next_etype, &join);
	if (r < 0)
		return r;
	k->ns = ns;
	if (!form_leading(ns->form)) {
		/* a nested non-leading form never gets page-info: [] */
		ns->status = -ENOENT;
		return 0;
	}
	r = compile_ns(ev, ns, &join);
	if (r == -ENOENT) {
		ns->status = -ENOENT;
		return 0;
	}
	return r;
}

/* ---- datalog ---- */

/* Bound on the rows one pattern list may produce, so a query that joins
 * everything with everything fails instead of exhausting memory. */
#define INSTAQL_MAX_ROWS 4000000

struct ctxs {
	uint32_t *v;
	size_t n, cap;
	uint32_t stride;
};

static int
ctx_push(struct ctxs *c, const uint32_t *row)
{
	if (c->n >= INSTAQL_MAX_ROWS)
		return -E2BIG;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		uint32_t *nv = realloc(c->v, cap * c->stride * sizeof(*nv) + 1);

		if (nv == NULL)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	memcpy(&c->v[c->n * c->stride], row, c->stride * sizeof(*row));
	c->n++;
	return 0;
}

struct tlist {
	uint32_t *v;
	size_t n, cap;
	bool on_stack;		/* v is the caller's buffer */
};

static int
tl_push(struct tlist *l, uint32_t x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint32_t *nv;

		if (l->on_stack) {
			nv = malloc(cap * sizeof(*nv));
			if (nv && l->n)
				memcpy(nv, l->v, l->n * sizeof(*nv));
		} else
			nv = realloc(l->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
		l->on_stack = false;
	}
	l->v[l->n++] = x;
	return 0;
}

static bool
cmp_holds(const struct tstore *s, const struct filt *f, uint32_t vid)
{
	struct jv v = instaql_jv_from_vid(s, vid);

	for (int i = 0; i < f->nops; i++) {
		const struct cmpop *op = &f->ops[i];
		bool ok;

		if (op->op >= OP_LIKE) {
			ok = instaql_js_like_match(op->like, &v);
		} else if (f->date) {
			double a = instaql_jv_date_ms(&v), b = instaql_jv_date_ms(&op->val);

			switch (op->op) {
			case OP_GT: ok = a > b; break;
			case OP_GTE: ok = a >= b; break;
			case OP_LT: ok = a < b; break;
			default: ok = a <= b; break;
			}
		} else {
			switch (op->op) {
			case OP_GT: ok = instaql_jv_gt(&v, &op->val); break;
			case OP_GTE: ok = instaql_jv_ge(&v, &op->val); break;
			case OP_LT: ok = instaql_jv_lt(&v, &op->val); break;
			default: ok = instaql_jv_le(&v, &op->val); break;
			}
		}
		if (!ok)
			return false;
	}
	return true;
}

/* Does the value key `cand` count as null for attr a (the $isNull test)? */
static bool
is_val_null(const struct tstore *s, const struct filt *f, uint32_t cand)
{
	if (f->reverse) {
		const struct u32vec *l = tstore_vae(s, cand);

		if (l)
			for (uint32_t i = 0; i < l->n; i++)
				if (s->tr[l->v[i]].a == f->isnull_attr)
					return false;
		return true;
	} else {
		const struct cell *c = tstore_cell(s, cand, f->isnull_attr);

		if (c == NULL || c->tr.n == 0)
			return true;
		for (uint32_t i = 0; i < c->tr.n; i++)
			if (tstore_tv_get(s, s->tr[c->tr.v[i]].v)->type == TV_NULL)
				return true;
		return false;
	}
}

/* triplesByValue over one (e, a) value map. */
static int
by_value(const struct tstore *s, const struct cell *c, const struct term *vt, uint32_t vbound, struct tlist *out)
{
	int r;

	if (vt->kind != TK_ARGS) {
		uint32_t ti = tstore_hmap_get(&s->tr_by_eav, c->e, c->a, vbound);

		return ti ? tl_push(out, ti) : 0;
	}
	switch (vt->f->kind) {
	case F_IN:
		for (uint32_t i = 0; i < vt->f->nvids; i++) {
			uint32_t ti = vt->f->vids[i] ? tstore_hmap_get(&s->tr_by_eav, c->e, c->a, vt->f->vids[i]) : 0;

			if (ti && (r = tl_push(out, ti)) < 0)
				return r;
		}
		return 0;
	case F_NOT:
		for (uint32_t i = 0; i < c->tr.n; i++)
			if (s->tr[c->tr.v[i]].v != vt->f->not_vid && (r = tl_push(out, c->tr.v[i])) < 0)
				return r;
		return 0;
	case F_ISNULL:
		for (uint32_t i = 0; i < c->tr.n; i++) {
			bool n = is_val_null(s, vt->f, s->tr[c->tr.v[i]].v);

			if ((vt->f->isnull ? n : !n) && (r = tl_push(out, c->tr.v[i])) < 0)
				return r;
		}
		return 0;
	default:
		for (uint32_t i = 0; i < c->tr.n; i++)
			if (cmp_holds(s, vt->f, s->tr[c->tr.v[i]].v) && (r = tl_push(out, c->tr.v[i])) < 0)
				return r;
		return 0;
	}
}

struct seqent {
	uint32_t seq, k, ti;
};

static int
seqent_cmp(const void *a, const void *b)
{
	const struct seqent *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

/* 'av' lookups of plain values through the AVE index, in aev order. */
static int
av_lookup(const struct tstore *s, uint32_t a, const uint32_t *vals, uint32_t nvals, struct tlist *out)
{
	struct seqent *tmp = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	for (uint32_t k = 0; k < nvals; k++) {
		const struct u32vec *l = vals[k] ? tstore_ave(s, a, vals[k]) : NULL;

		if (l == NULL)
			continue;
		for (uint32_t i = 0; i < l->n; i++) {
			if (n == cap) {
				size_t c = cap ? cap * 2 : 16;
				struct seqent *nv = realloc(tmp, c * sizeof(*nv));

				if (nv == NULL) {
					free(tmp);
					return -ENOMEM;
				}
				tmp = nv;
				cap = c;
			}
			tmp[n++] = (struct seqent){ s->cells[s->tr[l->v[i]].cell].aseq, k, l->v[i] };
		}
	}
	if (n > 1)
		qsort(tmp, n, sizeof(*tmp), seqent_cmp);
	for (size_t i = 0; i < n && r == 0; i++)
		r = tl_push(out, tmp[i].ti);
	free(tmp);
	return r;
}

/* getTriples for one pattern under one context. */
static int
get_triples(const struct tstore *s, const struct pat *p, const uint32_t *ctx, uint32_t param, struct tlist *out)
{
	const struct term *et = &p->t[0], *vt = &p->t[2];
	uint32_t a = p->t[1].x, e = VID_NONE, v = VID_NONE;
	bool v_given;

	switch (et->kind) {
	case TK_VAR:
		e = ctx[et->x] == VID_UNDEF ? VID_NONE : ctx[et->x];
		break;
	case TK_CONST:
		e = et->x;
		break;
	case TK_PARAM:
		e = param;
		break;
	default:
		return 0;
	}
	switch (vt->kind) {
	case TK_VAR:
		v = ctx[vt->x] == VID_UNDEF ? VID_NONE : ctx[vt->x];
		v_given = v != VID_NONE;
		break;
	case TK_CONST:
		v = vt->x;
		v_given = true;
		break;
	case TK_PARAM:
		v = param;
		v_given = true;
		break;
	case TK_ARGS:
		v_given = true;
		break;
	default:
		return 0;
	}
	if (e != VID_NONE) {
		const struct cell *c = tstore_cell(s, e, a);

		if (c == NULL)
			return 0;
		if (!v_given) {
			for (uint32_t i = 0; i < c->tr.n; i++) {
				int r = tl_push(out, c->tr.v[i]);

				if (r < 0)
					return r;
			}
			return 0;
		}
		return by_value(s, c, vt, v, out);
	} else {
		const struct u32vec *al = tstore_aev(s, a);

		if (al == NULL)
			return 0;
		if (v_given && vt->kind != TK_ARGS)
			return av_lookup(s, a, &v, 1, out);
		if (v_given && vt->f->kind == F_IN)
			return av_lookup(s, a, vt->f->vids, vt->f->nvids, out);
		for (uint32_t i = 0; i < al->n; i++) {
			const struct cell *c = &s->cells[al->v[i]];
			int r;

			if (!c->live)
				continue;
			if (!v_given) {
				for (uint32_t j = 0; j < c->tr.n; j++)
					if ((r = tl_push(out, c->tr.v[j])) < 0)
						return r;
			} else if ((r = by_value(s, c, vt, v, out)) < 0)
				return r;
		}
		return 0;
	}
}

static bool
match_part(const struct term *t, uint32_t part, uint32_t *row, uint32_t param)
{
	switch (t->kind) {
	case TK_VAR:
		if (row[t->x] != VID_NONE)
			return row[t->x] == part;
		row[t->x] = part;
		return true;
	case TK_CONST:
		return t->x == part;
	case TK_PARAM:
		return param == part;
	case TK_ARGS:
		return true;
	default:
		return false;
	}
}

static int run_plist(const struct tstore *s, const struct plist *pl, uint32_t param, struct ctxs *in, struct ctxs *out);

static int
run_pat(const struct tstore *s, const struct pat *p, uint32_t param, struct ctxs *in, struct ctxs *out)
{
	int r = 0;

	if (p->kind == PK_TRIPLE) {
		uint32_t tlbuf[64], rowbuf[64];
		struct tlist tl = { .v = tlbuf, .cap = ELEMENTSOF(tlbuf), .on_stack = true };
		uint32_t *row = in->stride <= ELEMENTSOF(rowbuf) ? rowbuf : malloc(in->stride * sizeof(*row));

		if (row == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < in->n && r == 0; i++) {
			const uint32_t *ctx = &in->v[i * in->stride];

			tl.n = 0;
			if ((r = get_triples(s, p, ctx, param, &tl)) < 0)
				break;
			for (size_t j = 0; j < tl.n && r == 0; j++) {
				const struct triple *t = &s->tr[tl.v[j]];

				memcpy(row, ctx, in->stride * sizeof(*row));
				if (match_part(&p->t[0], t->e, row, param) &&
				    match_part(&p->t[1], t->a, row, param) &&
				    match_part(&p->t[2], t->v, row, param) &&
				    match_part(&p->t[3], t->t, row, param))
					r = ctx_push(out, row);
			}
		}
		if (!tl.on_stack)
			free(tl.v);
		if (row != rowbuf)
			free(row);
		return r;
	}
	if (p->kind == PK_OR) {
		for (uint32_t b = 0; b < p->nbr && r == 0; b++) {
			struct ctxs tmp = { .stride = in->stride };

			r = run_plist(s, &p->br[b], param, in, &tmp);
			for (size_t i = 0; i < tmp.n && r == 0; i++)
				r = ctx_push(out, &tmp.v[i * tmp.stride]);
			free(tmp.v);
		}
		return r;
	}
	/* AND: each clause narrows the contexts in turn */
	{
		struct ctxs cur = { .stride = in->stride };

		for (size_t i = 0; i < in->n && r == 0; i++)
			r = ctx_push(&cur, &in->v[i * in->stride]);
		for (uint32_t b = 0; b < p->nbr && r == 0; b++) {
			struct ctxs next = { .stride = in->stride };

			r = run_plist(s, &p->br[b], param, &cur, &next);
			free(cur.v);
			cur = next;
		}
		for (size_t i = 0; i < cur.n && r == 0; i++)
			r = ctx_push(out, &cur.v[i * cur.stride]);
		free(cur.v);
		return r;
	}
}

static int
run_plist(const struct tstore *s, const struct plist *pl, uint32_t param, struct ctxs *in, struct ctxs *out)
{
	struct ctxs cur = { .stride = in->stride };
	int r = 0;

	if (pl->n == 0) {
		for (size_t i = 0; i < in->n && r == 0; i++)
			r = ctx_push(out, &in->v[i * in->stride]);
		return r;
	}
	/* the first pattern reads `in`, the last writes `out` */
	for (uint32_t k = 0; k < pl->n && r == 0; k++) {
		struct ctxs next = { .stride = in->stride };
		bool last = k + 1 == pl->n;

		r = run_pat(s, &pl->v[k], param, k == 0 ? in : &cur, last ? out : &next);
		free(cur.v);
		cur = next;
	}
	free(cur.v);
	return r;
}

/* ---- sorting ---- */

struct idvec {
	struct jv id, v;
};

static int
compare_order(const struct jv *ia, const struct jv *va, const struct jv *ib, const struct jv *vb, bool collate)
{
	if (instaql_jv_strict_eq(va, vb) || (instaql_jv_is_nullish(va) && instaql_jv_is_nullish(vb)))
		return instaql_js_uuid_compare(ia, ib);
	if (instaql_jv_is_nullish(vb))
		return 1;
	if (instaql_jv_is_nullish(va))
		return -1;
	if (collate)
		return instaql_js_collate(va, vb);
	return instaql_jv_gt(va, vb) ? 1 : -1;
}

struct sortctx {
	bool desc, collate;
};

static int
idvec_cmp(const struct idvec *a, const struct idvec *b, const struct sortctx *sc)
{
	if (sc->desc)
		return compare_order(&b->id, &b->v, &a->id, &a->v, sc->collate);
	return compare_order(&a->id, &a->v, &b->id, &b->v, sc->collate);
}

/* Array.prototype.sort as V8 runs it (TimSort): natural runs, binary
 * insertion sort up to the minimum run length, then stable merges. For a
 * consistent comparator any stable sort gives this order; following V8's run
 * detection and insertion sort also reproduces its order for the
 * inconsistent comparisons of mixed-type values, exactly for lists shorter
 * than 64 (the merges of longer lists skip V8's galloping). */
static size_t
min_run_length(size_t n)
{
	size_t r = 0;

	while (n >= 64) {
		r |= n & 1;
		n >>= 1;
	}
	return n + r;
}

static size_t
count_and_make_run(struct idvec *v, size_t low_arg, size_t high, const struct sortctx *sc)
{
	size_t low = low_arg + 1, run = 2;
	bool desc;
	struct idvec *prev;

	if (low == high)
		return 1;
	desc = idvec_cmp(&v[low], &v[low - 1], sc) < 0;
	prev = &v[low];
	for (size_t i = low + 1; i < high; i++) {
		int order = idvec_cmp(&v[i], prev, sc);

		if (desc ? order >= 0 : order < 0)
			break;
		prev = &v[i];
		run++;
	}
	if (desc)
		for (size_t a = low_arg, b = low_arg + run - 1; a < b; a++, b--) {
			struct idvec t = v[a];

			v[a] = v[b];
			v[b] = t;
		}
	return run;
}

static void
binary_insertion_sort(struct idvec *v, size_t low, size_t start, size_t high, const struct sortctx *sc)
{
	if (low == start)
		start++;
	for (; start < high; start++) {
		size_t left = low, right = start;
		struct idvec pivot = v[start];

		while (left < right) {
			size_t mid = left + ((right - left) >> 1);

			if (idvec_cmp(&pivot, &v[mid], sc) < 0)
				right = mid;
			else
				left = mid + 1;
		}
		memmove(&v[left + 1], &v[left], (start - left) * sizeof(*v));
		v[left] = pivot;
	}
}

struct run {
	size_t base, len;
};

static void
merge_at(struct idvec *v, struct idvec *tmp, struct run *runs, size_t *nruns, size_t i, const struct sortctx *sc)
{
	size_t a = runs[i].base, na = runs[i].len, b = runs[i + 1].base, nb = runs[i + 1].len;
	size_t x = 0, y = 0, k = a;

	memcpy(tmp, &v[a], na * sizeof(*v));
	while (x < na && y < nb)
		v[k++] = idvec_cmp(&v[b + y], &tmp[x], sc) < 0 ? v[b + y++] : tmp[x++];
	while (x < na)
		v[k++] = tmp[x++];
	runs[i].len = na + nb;
	memmove(&runs[i + 1], &runs[i + 2], (*nruns - i - 2) * sizeof(*runs));
	(*nruns)--;
}

static void
v8_sort(struct idvec *v, struct idvec *tmp, size_t n, const struct sortctx *sc)
{
	struct run runs[128];
	size_t nruns = 0, low = 0, remaining = n, minrun;

	if (n < 2)
		return;
	minrun = min_run_length(n);
	while (remaining) {
		size_t run = count_and_make_run(v, low, low + remaining, sc);

		if (run < minrun) {
			size_t forced = minrun < remaining ? minrun : remaining;

			binary_insertion_sort(v, low, low + run, low + forced, sc);
			run = forced;
		}
		runs[nruns++] = (struct run){ low, run };
		/* merge_collapse, with the corrected invariant */
		while (nruns > 1) {
			size_t k = nruns - 2;

			if ((k > 0 && runs[k - 1].len <= runs[k].len + runs[k + 1].len) ||
			    (k > 1 && runs[k - 2].len <= runs[k - 1].len + runs[k].len)) {
				if (runs[k - 1].len < runs[k + 1].len)
					k--;
				merge_at(v, tmp, runs, &nruns, k, sc);
			} else if (runs[k].len <= runs[k + 1].len)
				merge_at(v, tmp, runs, &nruns, k, sc);
			else
				break;
		}
		low += run;
		remaining -= run;
	}
	while (nruns > 1) {
		size_t k = nruns - 2;

		if (k > 0 && runs[k - 1].len < runs[k + 1].len)
			k--;
		merge_at(v, tmp, runs, &nruns, k, sc);
	}
}

static struct jv
comparable_date(struct jv v)
{
	if (instaql_jv_is_nullish(&v))
		return v;
	return instaql_jv_number(instaql_jv_date_ms(&v));
}

/* compareToCursor */
static int
compare_to_cursor(const cJSON *cursor, const struct tattr *oa, const struct tstore *s,
    const struct idvec *iv)
{
	struct jv ce = instaql_jv_from_json(cJSON_GetArrayItem(cursor, 0));
	struct jv cv = instaql_jv_from_json(cJSON_GetArrayItem(cursor, 2));
	struct jv ct = instaql_jv_from_json(cJSON_GetArrayItem(cursor, 3));
	const char *label = vid_str(s, oa->fwd_label);

	if (label && strcmp(label, "id") == 0)
		return compare_order(&iv->id, &iv->v, &ce, &ct, false);
	if (oa->ctype == CT_DATE) {
		struct jv a = comparable_date(iv->v), b = comparable_date(cv);

		return compare_order(&iv->id, &a, &ce, &b, false);
	}
	return compare_order(&iv->id, &iv->v, &ce, &cv, oa->ctype == CT_STRING);
}

/* ---- evaluation ---- */

static int eval_ns(struct ev *ev, struct cns *ns, uint32_t param, const cJSON *page_info, cJSON **ret);

static int
add_children(struct ev *ev, struct cns *ns, uint32_t id, cJSON *obj)
{
	int r;

	for (uint32_t i = 0; i < ns->nkids; i++) {
		struct cchild *k = &ns->kids[i];
		cJSON *arr = NULL, *val;

		if (!k->compiled && (r = compile_child(ev, ns, k)) < 0)
			return r;
		if (k->status == -ENOENT) {
			arr = cJSON_CreateArray();
		} else if ((r = eval_ns(ev, k->ns, id, NULL, &arr)) < 0)
			return r;
		if (arr == NULL)
			return -ENOMEM;
		if (k->singular) {
			val = cJSON_DetachItemFromArray(arr, 0);
			cJSON_Delete(arr);
			if (val == NULL) {
				if (k->shadows_attr)
					cJSON_DeleteItemFromObjectCaseSensitive(obj, k->label);
				continue;
			}
		} else
			val = arr;
		if (k->shadows_attr && json_get(obj, k->label))
			cJSON_ReplaceItemInObjectCaseSensitive(obj, k->label, val);
		else
			cJSON_AddItemToObject(obj, k->label, val);
	}
	return 0;
}

static cJSON *
make_object(struct ev *ev, struct cns *ns, uint32_t id)
{
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL || ns->no_attrs)
		return obj;
	for (uint32_t i = 0; i < ns->nattrs; i++) {
		const struct cell *c = tstore_cell(ev->s, id, ns->oattrs[i]->id);
		cJSON *v;

		if (c == NULL || c->tr.n == 0)
			continue;
		v = tstore_tv_to_json(ev->s, ev->s->tr[c->tr.v[c->tr.n - 1]].v);
		if (v == NULL) {
			cJSON_Delete(obj);
			return NULL;
		}
		/* labels are unique per namespace (compile_object_attrs) */
		cJSON_AddItemToObject(obj, ns->labels[i], v);
	}
	return obj;
}

static int
shown_add(struct instaql_shown *sh, const struct tstore *s, uint32_t vid)
{
	const struct tval *tv = tstore_tv_get(s, vid);
	char *c;

	if (vid == VID_UNDEF || tv->type != TV_STR)
		return 0;
	if (sh->n == sh->cap) {
		size_t cap = sh->cap ? sh->cap * 2 : 16;
		char **nv = realloc(sh->ids, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		sh->ids = nv;
		sh->cap = cap;
	}
	c = strndup(tv->str, tv->len);
	if (c == NULL)
		return -ENOMEM;
	sh->ids[sh->n++] = c;
	return 0;
}

static int
str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
shown_finish(struct instaql_shown *sh)
{
	size_t k = 0;

	if (sh->n == 0)
		return;
	qsort(sh->ids, sh->n, sizeof(*sh->ids), str_ptr_cmp);
	for (size_t i = 0; i < sh->n; i++) {
		if (k > 0 && strcmp(sh->ids[k - 1], sh->ids[i]) == 0) {
			free(sh->ids[i]);
			continue;
		}
		sh->ids[k++] = sh->ids[i];
	}
	sh->n = k;
}

void
instaql_shown_clear(struct instaql_shown *sh)
{
	for (size_t i = 0; i < sh->n; i++)
		free(sh->ids[i]);
	free(sh->ids);
	*sh = (struct instaql_shown){0};
}

bool
instaql_shown_has(const struct instaql_shown *sh, const char *id)
{
	return sh->n && bsearch(&id, sh->ids, sh->n, sizeof(*sh->ids), str_ptr_cmp) != NULL;
}

static int
eval_ns(struct ev *ev, struct cns *ns, uint32_t param, const cJSON *page_info, cJSON **ret)
{
	const cJSON *d = json_get(ns->form, "$");
	const cJSON *order = json_get(d, "order");
	const cJSON *start = json_get(page_info, "start-cursor");
	const cJSON *end = json_get(page_info, "end-cursor");
	const struct tattr *oa = NULL;
	struct ctxs in = {0}, out = {0};
	struct idvec *iv = NULL, *tmp = NULL;
	struct hmap seen = {0};
	struct sortctx sc = {0};
	cJSON *arr = NULL;
	uint32_t *row = NULL, *ids = NULL;
	size_t nids = 0;
	int r = 0;

	arr = cJSON_CreateArray();
	if (arr == NULL)
		return -ENOMEM;
	if (ns->status == -ENOENT)
		goto done;
	if (!ns->leading && !json_truthy(start))
		goto done;
	in.stride = out.stride = ns->nvars ? ns->nvars : 1;
	row = calloc(in.stride, sizeof(*row));
	if (row == NULL || (r = ctx_push(&in, row)) < 0) {
		r = -ENOMEM;
		goto done;
	}
	if ((r = run_plist(ev->s, &ns->pats, param, &in, &out)) < 0)
		goto done;
	/* the order attr: the start cursor's, else order's first key's */
	if (json_truthy(start)) {
		const cJSON *ca = cJSON_GetArrayItem(start, 1);

		oa = cJSON_IsString(ca) ? tstore_attr(ev->s, tstore_tv_find_str(ev->s, ca->valuestring)) : NULL;
	} else if (json_truthy(order) && cJSON_IsObject(order) && order->child) {
		oa = tstore_attr_fwd(ev->s, ns->etype_vid, tstore_tv_find_str(ev->s, order->child->string));
	}
	if (cJSON_IsObject(order) && order->child) {
		const cJSON *dir = order->child;

		sc.desc = json_truthy(dir) && !(cJSON_IsString(dir) && strcmp(dir->valuestring, "asc") == 0);
	}
	iv = calloc(out.n + 1, sizeof(*iv));
	tmp = calloc(out.n + 1, sizeof(*tmp));
	if (iv == NULL || tmp == NULL) {
		r = -ENOMEM;
		goto done;
	}
	{
		const char *olabel = oa ? vid_str(ev->s, oa->fwd_label) : NULL;
		bool by_attr = oa && !(olabel && strcmp(olabel, "id") == 0);

		for (size_t i = 0; i < out.n; i++) {
			const uint32_t *c = &out.v[i * out.stride];

			iv[i].id = instaql_jv_from_vid(ev->s, c[ns->ent_slot]);
			if (by_attr) {
				const struct cell *cl = tstore_cell(ev->s, c[ns->ent_slot], oa->id);

				iv[i].v = cl && cl->tr.n ? instaql_jv_from_vid(ev->s, ev->s->tr[cl->tr.v[0]].v) :
				    instaql_jv_from_vid(ev->s, VID_UNDEF);
				if (oa->ctype == CT_DATE)
					iv[i].v = comparable_date(iv[i].v);
			} else
				iv[i].v = instaql_jv_from_vid(ev->s, c[ns->time_slot] ? c[ns->time_slot] : VID_UNDEF);
		}
		sc.collate = oa && oa->ctype == CT_STRING;
	}
	v8_sort(iv, tmp, out.n, &sc);
	ids = malloc((out.n + 1) * sizeof(*ids));
	if (ids == NULL) {
		r = -ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < out.n; i++) {
		uint32_t id = iv[i].id.vid ? iv[i].id.vid : VID_UNDEF;

		if (tstore_hmap_get(&seen, id, 0, 0))
			continue;
		if (!ns->leading && oa) {
			if (json_truthy(start)) {
				int c = compare_to_cursor(start, oa, ev->s, &iv[i]);

				if (sc.desc ? c > 0 : c < 0)
					continue;
			}
			if (json_truthy(end)) {
				int c = compare_to_cursor(end, oa, ev->s, &iv[i]);

				if (sc.desc ? c < 0 : c > 0)
					continue;
			}
		}
		if ((r = tstore_hmap_put(&seen, id, 0, 0, 1)) < 0)
			goto done;
		ids[nids++] = id;
	}
	if (ns->limit > 0 && (size_t)ns->limit < nids)
		nids = (size_t)ns->limit;
	for (size_t i = 0; i < nids; i++) {
		cJSON *obj;

		if (ev->opts && ev->opts->shown && (r = shown_add(ev->opts->shown, ev->s, ids[i])) < 0)
			goto done;
		obj = make_object(ev, ns, ids[i]);

		if (obj == NULL) {
			r = -ENOMEM;
			goto done;
		}
		cJSON_AddItemToArray(arr, obj);
		if ((r = add_children(ev, ns, ids[i], obj)) < 0)
			goto done;
	}
done:
	free(in.v);
	free(out.v);
	free(row);
	free(iv);
	free(tmp);
	free(ids);
	tstore_hmap_clear(&seen);
	if (r < 0) {
		cJSON_Delete(arr);
		return r;
	}
	*ret = arr;
	return 0;
}

/* ---- validation ---- */

static const char *const dollar_keys[] = {
	"where", "order", "limit", "last", "first", "offset", "after",
	"afterInclusive", "before", "beforeInclusive", "fields", "aggregate",
};

static int
verr(char **ret_err, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (ret_err)
		*ret_err = m;
	else
		free(m);
	return -EINVAL;
}

static bool
is_nonneg_int(const cJSON *j)
{
	return cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble == floor(j->valuedouble) &&
	    j->valuedouble <= 9007199254740991.0;
}

static int validate_where(const cJSON *w, const char *path, char **ret_err, int depth);

static int
validate_value(const cJSON *v, const char *path, char **ret_err)
{
	const cJSON *op;

	if (cJSON_IsNull(v))
		return verr(ret_err, "%s: null is not a valid where value (use {\"$isNull\": true})", path);
	if (!cJSON_IsObject(v))
		return 0;
	cJSON_ArrayForEach(op, v) {
		const char *k = op->string;

		if (strcmp(k, "$in") == 0 || strcmp(k, "in") == 0) {
			if (!cJSON_IsArray(op))
				return verr(ret_err, "%s.%s: must be an array", path, k);
		} else if (strcmp(k, "$like") == 0 || strcmp(k, "$ilike") == 0) {
			if (!cJSON_IsString(op))
				return verr(ret_err, "%s.%s: must be a string", path, k);
		} else if (strcmp(k, "$isNull") == 0) {
			if (!cJSON_IsBool(op))
				return verr(ret_err, "%s.%s: must be true or false", path, k);
		} else if (strcmp(k, "$gt") == 0 || strcmp(k, "$gte") == 0 ||
		    strcmp(k, "$lt") == 0 || strcmp(k, "$lte") == 0) {
			if (cJSON_IsObject(op) || cJSON_IsArray(op))
				return verr(ret_err, "%s.%s: must be a number, string, boolean or null", path, k);
		} else if (strcmp(k, "$not") == 0 || strcmp(k, "$ne") == 0) {
			/* any value */
		} else if (k[0] == '$') {
			return verr(ret_err, "%s: unknown operator %s", path, k);
		}
	}
	return 0;
}

static int
validate_where(const cJSON *w, const char *path, char **ret_err, int depth)
{
	const cJSON *kv;
	int r;

	if (depth > 64)
		return verr(ret_err, "%s: nested too deeply", path);
	if (!cJSON_IsObject(w))
		return verr(ret_err, "%s: must be an object", path);
	cJSON_ArrayForEach(kv, w) {
		_cleanup_free_ char *kp = NULL;

		if (asprintf(&kp, "%s.%s", path, kv->string) < 0)
			return -ENOMEM;
		if (strcmp(kv->string, "or") == 0 || strcmp(kv->string, "and") == 0) {
			const cJSON *c;
			int i = 0;

			if (!cJSON_IsArray(kv))
				return verr(ret_err, "%s: must be an array of where clauses", kp);
			cJSON_ArrayForEach(c, kv) {
				_cleanup_free_ char *cp = NULL;

				if (asprintf(&cp, "%s[%d]", kp, i++) < 0)
					return -ENOMEM;
				if (!cJSON_IsObject(c))
					return verr(ret_err, "%s: must be an object", cp);
				if ((r = validate_where(c, cp, ret_err, depth + 1)) < 0)
					return r;
			}
			continue;
		}
		if (strcmp(kv->string, "$entityIdStartsWith") == 0)
			continue;
		if (kv->string[0] == 0 || strstr(kv->string, "..") || kv->string[0] == '.' ||
		    kv->string[strlen(kv->string) - 1] == '.')
			return verr(ret_err, "%s: empty path segment", kp);
		if ((r = validate_value(kv, kp, ret_err)) < 0)
			return r;
	}
	return 0;
}

static int
validate_form(const cJSON *form, const char *path, int depth, char **ret_err)
{
	const cJSON *c;
	int r;

	if (depth > 64)
		return verr(ret_err, "%s: nested too deeply", path);
	if (!cJSON_IsObject(form))
		return verr(ret_err, "%s: must be an object", path);
	cJSON_ArrayForEach(c, form) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s.%s", path, c->string) < 0)
			return -ENOMEM;
		if (strcmp(c->string, "$") == 0) {
			const cJSON *o;

			if (!cJSON_IsObject(c))
				return verr(ret_err, "%s: must be an object", p);
			cJSON_ArrayForEach(o, c) {
				_cleanup_free_ char *op = NULL;
				bool known = false;

				for (size_t i = 0; i < ELEMENTSOF(dollar_keys); i++)
					known |= strcmp(o->string, dollar_keys[i]) == 0;
				if (asprintf(&op, "%s.%s", p, o->string) < 0)
					return -ENOMEM;
				if (!known)
					return verr(ret_err, "%s: unknown query option (valid: where, order, limit, first, last, offset, before, beforeInclusive, after, afterInclusive, fields, aggregate)", op);
				if (strcmp(o->string, "where") == 0) {
					if (!cJSON_IsNull(o) && (r = validate_where(o, op, ret_err, 0)) < 0)
						return r;
				} else if (strcmp(o->string, "order") == 0) {
					const cJSON *k;

					if (!cJSON_IsObject(o))
						return verr(ret_err, "%s: must be an object like {\"field\": \"asc\"}", op);
					cJSON_ArrayForEach(k, o)
						if (!cJSON_IsString(k) || (strcmp(k->valuestring, "asc") != 0 &&
						    strcmp(k->valuestring, "desc") != 0))
							return verr(ret_err, "%s.%s: must be \"asc\" or \"desc\"", op, k->string);
				} else if (strcmp(o->string, "limit") == 0 || strcmp(o->string, "first") == 0 ||
				    strcmp(o->string, "last") == 0 || strcmp(o->string, "offset") == 0) {
					if (!is_nonneg_int(o))
						return verr(ret_err, "%s: must be a non-negative integer", op);
				} else if (strcmp(o->string, "fields") == 0) {
					const cJSON *f;

					if (!cJSON_IsArray(o))
						return verr(ret_err, "%s: must be an array of attribute names", op);
					cJSON_ArrayForEach(f, o)
						if (!cJSON_IsString(f))
							return verr(ret_err, "%s: must be an array of attribute names", op);
				}
			}
			continue;
		}
		if ((r = validate_form(c, p, depth + 1, ret_err)) < 0)
			return r;
	}
	return 0;
}

int
instaql_validate(const cJSON *q, char **ret_err)
{
	const cJSON *c;
	int r;

	if (!cJSON_IsObject(q))
		return verr(ret_err, "query: must be an object of namespaces");
	cJSON_ArrayForEach(c, q) {
		if (strcmp(c->string, "$$ruleParams") == 0)
			continue;
		if (c->string[0] == 0)
			return verr(ret_err, "query: empty namespace name");
		if ((r = validate_form(c, c->string, 0, ret_err)) < 0)
			return r;
	}
	return 0;
}

/* ---- entry points ---- */

static cJSON *
format_page_info(const cJSON *pi)
{
	cJSON *res = cJSON_CreateObject();
	const cJSON *k;
	static const char *const map[][2] = {
		{ "start-cursor", "startCursor" }, { "end-cursor", "endCursor" },
		{ "has-next-page?", "hasNextPage" }, { "has-previous-page?", "hasPreviousPage" },
	};

	if (res == NULL)
		return NULL;
	cJSON_ArrayForEach(k, pi) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL) {
			cJSON_Delete(res);
			return NULL;
		}
		cJSON_AddItemToObject(res, k->string, o);
		for (size_t i = 0; i < ELEMENTSOF(map); i++) {
			const cJSON *x = json_get(k, map[i][0]);
			cJSON *c;

			if (x == NULL)
				continue;
			c = cJSON_Duplicate(x, 1);
			if (c == NULL) {
				cJSON_Delete(res);
				return NULL;
			}
			cJSON_AddItemToObject(o, map[i][1], c);
		}
	}
	return res;
}

int
instaql_eval_opts(struct tstore *s, const cJSON *q, const struct instaql_opts *opts,
    cJSON **ret_data, cJSON **ret_page_info, char **ret_err)
{
	struct ev ev = { .s = s, .opts = opts };
	cJSON *data = NULL, *pi = NULL;
	const cJSON *c;
	int r;

	if (opts && opts->shown)
		instaql_shown_clear(opts->shown);
	r = instaql_validate(q, ret_err);
	if (r < 0)
		return r;
	ev.owned = cJSON_CreateArray();
	data = cJSON_CreateObject();
	if (ev.owned == NULL || data == NULL) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(c, q) {
		const cJSON *agg = opts ? opts->aggregate : NULL;
		struct cns *ns;
		cJSON *arr = NULL;

		if (strcmp(c->string, "$$ruleParams") == 0 || json_truthy(json_get(agg, c->string)))
			continue;
		r = new_ns(&ev, c, c->string, 0, c->string, &ns);
		if (r < 0)
			goto out;
		ns->status = 0;
		{
			const cJSON *pik = opts && opts->page_info ? json_get(opts->page_info, c->string) : NULL;

			if (!form_leading(c) && !json_truthy(json_get(pik, "start-cursor"))) {
				ns->status = -ENOENT;
			} else {
				r = compile_ns(&ev, ns, NULL);
				if (r == -ENOENT)
					ns->status = -ENOENT;
				else if (r < 0)
					goto out;
			}
			r = eval_ns(&ev, ns, VID_NONE, pik, &arr);
		}
		if (r < 0)
			goto out;
		if (json_get(data, c->string))
			cJSON_ReplaceItemInObjectCaseSensitive(data, c->string, arr);
		else
			cJSON_AddItemToObject(data, c->string, arr);
	}
	if (opts && opts->page_info && !cJSON_IsNull(opts->page_info)) {
		pi = format_page_info(opts->page_info);
		if (pi == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = 0;
out:
	if (r == -E2BIG && ev.err == NULL) {
		if (asprintf(&ev.err, "query too large: more than %d intermediate rows", INSTAQL_MAX_ROWS) < 0)
			ev.err = NULL;
		r = -EINVAL;
	}
	if (r == -EINVAL) {
		if (ret_err)
			*ret_err = ev.err ? ev.err : strdup("invalid query");
		else
			free(ev.err);
		ev.err = NULL;
	}
	free(ev.err);
	for (size_t i = 0; i < ev.nlikes; i++)
		instaql_js_like_free(ev.likes[i]);
	free(ev.likes);
	cJSON_Delete(ev.owned);
	arena_free(&ev.ar);
	if (r < 0) {
		if (opts && opts->shown)
			instaql_shown_clear(opts->shown);
		cJSON_Delete(data);
		cJSON_Delete(pi);
		return r;
	}
	if (opts && opts->shown)
		shown_finish(opts->shown);
	*ret_data = data;
	if (ret_page_info)
		*ret_page_info = pi;
	else
		cJSON_Delete(pi);
	return 0;
}

const cJSON *
instaql_result_page_info(const cJSON *result)
{
	return cJSON_IsArray(result) ? json_get(json_get(cJSON_GetArrayItem(result, 0), "data"), "page-info") : NULL;
}

const cJSON *
instaql_result_aggregate(const cJSON *result)
{
	return cJSON_IsArray(result) ? json_get(json_get(cJSON_GetArrayItem(result, 0), "data"), "aggregate") : NULL;
}

int
instaql_eval(struct tstore *s, const cJSON *q, cJSON **ret_data, cJSON **ret_page_info, char **ret_err)
{
	return instaql_eval_opts(s, q, NULL, ret_data, ret_page_info, ret_err);
}

bool
instaql_mutation_applies(int64_t tx_id, int64_t processed_tx_id)
{
	return tx_id == 0 || (processed_tx_id != 0 && tx_id > processed_tx_id);
}

/* Apply the mutations that apply to s in place, then evaluate. */
static int
layer_and_eval(struct tstore *s, const struct instaql_mutation *muts, size_t n_muts,
    int64_t processed_tx_id, unsigned flags, const cJSON *q, const struct instaql_opts *opts,
    size_t *ret_applied, cJSON **ret_data, cJSON **ret_page_info, char **ret_err)
{
	size_t applied = 0;
	int r;

	for (size_t i = 0; i < n_muts; i++) {
		char *err = NULL;

		if (!instaql_mutation_applies(muts[i].tx_id, processed_tx_id))
			continue;
		r = tstore_apply_steps(s, muts[i].tx_steps, &err);
		if (r == -EINVAL && (flags & INSTAQL_SKIP_FAILING)) {
			free(err);
			continue;
		}
		if (r < 0) {
			if (r == -EINVAL && ret_err) {
				if (asprintf(ret_err, "mutation %zu: %s", i, err ? err : "invalid tx-steps") < 0)
					*ret_err = NULL;
			}
			free(err);
			return r;
		}
		applied++;
	}
	r = instaql_eval_opts(s, q, opts, ret_data, ret_page_info, ret_err);
	if (r == 0 && ret_applied)
		*ret_applied = applied;
	return r;
}

int
instaql_eval_base(struct tstore *base, const struct instaql_mutation *muts, size_t n_muts,
    int64_t processed_tx_id, unsigned flags, const cJSON *q, const struct instaql_opts *opts,
    size_t *ret_applied, cJSON **ret_data, cJSON **ret_page_info, char **ret_err)
{
	struct tstore *s = NULL;
	bool any = false;
	int r;

	for (size_t i = 0; i < n_muts && !any; i++)
		any = instaql_mutation_applies(muts[i].tx_id, processed_tx_id);
	if (!any) {
		r = instaql_eval_opts(base, q, opts, ret_data, ret_page_info, ret_err);
		if (r == 0 && ret_applied)
			*ret_applied = 0;
		return r;
	}
	r = instaql_validate(q, ret_err);
	if (r < 0)
		return r;
	if ((r = tstore_dup(base, &s)) < 0)
		return r;
	r = layer_and_eval(s, muts, n_muts, processed_tx_id, flags, q, opts, ret_applied,
	    ret_data, ret_page_info, ret_err);
	tstore_free(s);
	return r;
}

int
instaql_eval_layered(const struct attrs *attrs, const cJSON *triples, const cJSON *result,
    const struct instaql_mutation *muts, size_t n_muts, int64_t processed_tx_id,
    const cJSON *q, const struct instaql_opts *opts, cJSON **ret_data, cJSON **ret_page_info,
    char **ret_err)
{
	struct tstore *s = NULL;
	int r;

	r = instaql_validate(q, ret_err);
	if (r < 0)
		return r;
	if ((r = tstore_new(attrs, &s)) < 0)
		return r;
	if (triples)
		r = tstore_add_triples(s, triples);
	else if (result)
		r = tstore_add_result(s, result);
	if (r < 0) {
		tstore_free(s);
		if (r == -EINVAL && ret_err)
			*ret_err = strdup(triples ? "triples: not an array" : "result: not a result tree");
		return r;
	}
	/* the store is private: layer in place */
	r = layer_and_eval(s, muts, n_muts, processed_tx_id, 0, q, opts, NULL, ret_data, ret_page_info, ret_err);
	tstore_free(s);
	return r;
}
