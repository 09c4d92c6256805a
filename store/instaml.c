/* The InstaML transform: ops to tx-steps with the attr guesses of
 * @instantdb/core 1.0.67, the rewrite of queued steps against the server's
 * attrs, and shape checks of raw tx-steps (client-semantics 4, protocol 5-6). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store/instaml.h"
#include "store/util.h"

enum action {
	ACT_CREATE,
	ACT_UPDATE,
	ACT_MERGE,
	ACT_DELETE,
	ACT_LINK,
	ACT_UNLINK,
	ACT_RULE_PARAMS,
};

static const char *const action_names[] = {
	[ACT_CREATE] = "create",
	[ACT_UPDATE] = "update",
	[ACT_MERGE] = "merge",
	[ACT_DELETE] = "delete",
	[ACT_LINK] = "link",
	[ACT_UNLINK] = "unlink",
	[ACT_RULE_PARAMS] = "ruleParams",
};

/* One op after shape checks. */
struct op {
	enum action act;
	const char *etype;	/* borrowed from the op */
	const cJSON *eid;	/* borrowed: string, [attr, value] or {attr: value} */
	cJSON *args;		/* owned copy of the op's object in JavaScript key order, "id" kept; NULL for delete */
	const cJSON *opts;	/* borrowed, may be NULL */
};

/* A lookup pair [attr name, value] as the op spells it. */
struct lookup {
	char *name;		/* owned */
	cJSON *value;		/* owned */
};

/* A small string-keyed hash table (open addressing), so that a transform of
 * n ops over m attrs stays near O(n + m) whatever a peer sends. */
struct hent {
	char *key;		/* owned; NULL: free slot */
	size_t len;
	const cJSON *first, *last;	/* borrowed */
	size_t idx;		/* the user's */
};

struct hmap {
	struct hent *v;
	size_t cap, n;
};

struct tx {
	const struct attrs *base;
	struct hmap base_idents;	/* identity -> last base attr with it */
	struct hmap created_idents;	/* identity -> first and last attr this transform created */
	struct hmap emitted;		/* ids of the attrs of add_steps */
	cJSON *add_steps;	/* owned: the add-attr steps, in order */
	bool merged;		/* expansion phase: created attrs are part of the attr map */
	bool oom;		/* an attr lookup ran out of memory */
	size_t op_idx;
	char *err;		/* owned: the first error */
};

static void
lookup_done(struct lookup *lk)
{
	free(lk->name);
	cJSON_Delete(lk->value);
	lk->name = NULL;
	lk->value = NULL;
}

static int
tx_fail(struct tx *t, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	if (t->err)
		return -EINVAL;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (asprintf(&t->err, "op %zu: %s", t->op_idx, msg) < 0) {
		t->err = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

/* JavaScript truthiness of a JSON value. */
static bool
js_truthy(const cJSON *v)
{
	if (v == NULL || cJSON_IsFalse(v) || cJSON_IsNull(v))
		return false;
	if (cJSON_IsNumber(v))
		return v->valuedouble != 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	return true;
}

/* Is key an array index, which JavaScript objects enumerate first, ascending? */
static bool
js_index_key(const char *k, unsigned long long *ret)
{
	unsigned long long n = 0;

	if (k[0] == '\0' || (k[0] == '0' && k[1] != '\0') || strlen(k) > 10)
		return false;
	for (const char *p = k; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (unsigned long long)(*p - '0');
	}
	if (n > 4294967294ULL)
		return false;
	*ret = n;
	return true;
}

struct js_member {
	const cJSON *first;	/* first member with this key: its place */
	const cJSON *last;	/* last member with this key: its value */
	size_t pos;		/* place of `first` */
	bool is_index;
	unsigned long long index;
};

static int
js_member_by_key(const void *a, const void *b)
{
	const struct js_member *x = a, *y = b;
	int c = strcmp(x->first->string, y->first->string);

	if (c != 0)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int
js_member_by_place(const void *a, const void *b)
{
	const struct js_member *x = a, *y = b;

	if (x->is_index != y->is_index)
		return x->is_index ? -1 : 1;
	if (x->is_index)
		return x->index < y->index ? -1 : x->index > y->index;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A copy of object `obj` with its members in the order JSON.parse +
 * Object.entries give, which decides the order of the client's steps and
 * attrs: array-index keys ascending, then the rest in first appearance; a
 * repeated key keeps its first place and its last value. O(n log n), since
 * a peer controls the object. */
static int
js_object_copy(const cJSON *obj, cJSON **ret)
{
	_cleanup_json_ cJSON *out = cJSON_CreateObject();
	_cleanup_free_ struct js_member *m = NULL;
	size_t n = 0, k = 0;
	const cJSON *c;

	if (out == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(c, obj)
		n++;
	m = calloc(n + 1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(c, obj) {
		m[k] = (struct js_member){ .first = c, .last = c, .pos = k };
		m[k].is_index = js_index_key(c->string, &m[k].index);
		k++;
	}
	/* fold repeated keys into their first member */
	qsort(m, n, sizeof(*m), js_member_by_key);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && strcmp(m[k - 1].first->string, m[i].first->string) == 0) {
			m[k - 1].last = m[i].first;
			continue;
		}
		m[k++] = m[i];
	}
	qsort(m, k, sizeof(*m), js_member_by_place);
	for (size_t i = 0; i < k; i++) {
		cJSON *copy = cJSON_Duplicate(m[i].last, 1);

		if (copy == NULL)
			return -ENOMEM;
		cJSON_AddItemToObject(out, m[i].first->string, copy);
	}
	*ret = TAKE_PTR(out);
	return 0;
}

/* Parse an id into a lookup pair. 0: a plain id string (lk untouched);
 * 1: a lookup (lk filled, caller frees with lookup_done); -EINVAL with
 * *ret_problem set; -ENOMEM. */
static int
lookup_parse(const cJSON *eid, struct lookup *lk, const char **ret_problem)
{
	_cleanup_free_ char *name = NULL;
	cJSON *value = NULL;

	if (cJSON_IsString(eid)) {
		const char *s = eid->valuestring, *p;

		if (strncmp(s, "lookup__", 8) != 0)
			return 0;
		p = strstr(s + 8, "__");
		if (p == NULL) {
			*ret_problem = "lookup string has no value (want lookup__<attr>__<json>)";
			return -EINVAL;
		}
		name = strndup(s + 8, (size_t)(p - (s + 8)));
		if (name == NULL)
			return -ENOMEM;
		value = cJSON_ParseWithOpts(p + 2, NULL, true);
		if (value == NULL) {
			*ret_problem = "lookup string's value is not JSON";
			return -EINVAL;
		}
	} else if (cJSON_IsArray(eid)) {
		const cJSON *a = cJSON_GetArrayItem(eid, 0);

		if (cJSON_GetArraySize(eid) != 2 || !cJSON_IsString(a)) {
			*ret_problem = "lookup array must be [attribute, value]";
			return -EINVAL;
		}
		name = strdup(a->valuestring);
		if (name == NULL)
			return -ENOMEM;
		value = cJSON_Duplicate(cJSON_GetArrayItem(eid, 1), 1);
		if (value == NULL)
			return -ENOMEM;
	} else if (cJSON_IsObject(eid)) {
		if (cJSON_GetArraySize(eid) != 1) {
			*ret_problem = "lookup object must have exactly one attribute";
			return -EINVAL;
		}
		name = strdup(eid->child->string);
		if (name == NULL)
			return -ENOMEM;
		value = cJSON_Duplicate(eid->child, 1);
		if (value == NULL)
			return -ENOMEM;
	} else {
		*ret_problem = "id must be a string, a lookup string, [attribute, value] or {attribute: value}";
		return -EINVAL;
	}
	if (name[0] == '\0') {
		cJSON_Delete(value);
		*ret_problem = "lookup attribute name is empty";
		return -EINVAL;
	}
	lk->name = TAKE_PTR(name);
	lk->value = value;
	return 1;
}

/* ---- attr lookups ---- */

static uint64_t
hash_bytes(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct hent *
hmap_slot(const struct hmap *h, const char *key, size_t len)
{
	size_t i;

	if (h->cap == 0)
		return NULL;
	for (i = hash_bytes(key, len) & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
		struct hent *e = &h->v[i];

		if (e->key == NULL || (e->len == len && memcmp(e->key, key, len) == 0))
			return e;
	}
}

static const struct hent *
hmap_get(const struct hmap *h, const char *key, size_t len)
{
	const struct hent *e = hmap_slot(h, key, len);

	return e && e->key ? e : NULL;
}

static int
hmap_grow(struct hmap *h)
{
	struct hmap g = { .cap = h->cap ? 2 * h->cap : 64 };

	g.v = calloc(g.cap, sizeof(*g.v));
	if (g.v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < h->cap; i++)
		if (h->v[i].key)
			*hmap_slot(&g, h->v[i].key, h->v[i].len) = h->v[i];
	g.n = h->n;
	free(h->v);
	*h = g;
	return 0;
}

/* Record attr under key: the first one stays first, the last one last.
 * *ret_e (may be NULL) is the entry, valid until the next put. */
static int
hmap_put_entry(struct hmap *h, const char *key, size_t len, const cJSON *attr, struct hent **ret_e)
{
	struct hent *e;
	int r;

	if (2 * (h->n + 1) > h->cap) {
		r = hmap_grow(h);
		if (r < 0)
			return r;
	}
	e = hmap_slot(h, key, len);
	if (e->key == NULL) {
		e->key = malloc(len ? len : 1);
		if (e->key == NULL)
			return -ENOMEM;
		memcpy(e->key, key, len);
		e->len = len;
		e->first = attr;
		h->n++;
	}
	e->last = attr;
	if (ret_e)
		*ret_e = e;
	return 0;
}

static int
hmap_put(struct hmap *h, const char *key, size_t len, const cJSON *attr)
{
	return hmap_put_entry(h, key, len, attr, NULL);
}

static void
hmap_done(struct hmap *h)
{
	for (size_t i = 0; i < h->cap; i++)
		free(h->v[i].key);
	free(h->v);
	h->v = NULL;
	h->cap = h->n = 0;
}

/* The key of an identity: direction, etype and label with their lengths, so
 * that no etype or label can make two identities collide. *ret is malloc'd. */
static int
ident_key(bool fwd, const char *etype, const char *label, char **ret, size_t *ret_len)
{
	char *k = NULL;
	int n = asprintf(&k, "%c%zu:%s%s", fwd ? 'f' : 'r', strlen(etype), etype, label);

	if (n < 0)
		return -ENOMEM;
	*ret = k;
	*ret_len = (size_t)n;
	return 0;
}

static int
index_attr(struct hmap *h, const cJSON *attr)
{
	for (int fwd = 1; fwd >= 0; fwd--) {
		const char *e = fwd ? attr_fwd_etype(attr) : attr_rev_etype(attr);
		const char *l = fwd ? attr_fwd_label(attr) : attr_rev_label(attr);
		_cleanup_free_ char *k = NULL;
		size_t len;
		int r;

		if (e == NULL || l == NULL)
			continue;
		r = ident_key(fwd, e, l, &k, &len);
		if (r < 0)
			return r;
		r = hmap_put(h, k, len, attr);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
tx_index_base(struct tx *t)
{
	for (size_t i = 0; i < attrs_count(t->base); i++) {
		int r = index_attr(&t->base_idents, attrs_at(t->base, i));

		if (r < 0)
			return r;
	}
	return 0;
}

/* Before expansion the client asks its attr map first, then the attrs it
 * created (first match); during expansion the created attrs are appended to
 * the map, so the last match over both wins. On ENOMEM (building the key)
 * *oom is set and NULL returned. */
static const cJSON *
tx_ident(struct tx *t, bool fwd, const char *etype, const char *label)
{
	_cleanup_free_ char *k = NULL;
	const struct hent *b, *c;
	size_t len;

	if (ident_key(fwd, etype, label, &k, &len) < 0) {
		t->oom = true;
		return NULL;
	}
	b = hmap_get(&t->base_idents, k, len);
	c = hmap_get(&t->created_idents, k, len);
	if (t->merged)
		return c ? c->last : b ? b->last : NULL;
	return b ? b->last : c ? c->first : NULL;
}

static const cJSON *
tx_fwd(struct tx *t, const char *etype, const char *label)
{
	return tx_ident(t, true, etype, label);
}

static const cJSON *
tx_rev(struct tx *t, const char *etype, const char *label)
{
	return tx_ident(t, false, etype, label);
}

static bool
tx_emitted(const struct tx *t, const char *id)
{
	return hmap_get(&t->emitted, id, strlen(id)) != NULL;
}

/* Append ["add-attr", attr]; takes attr. */
static int
tx_emit(struct tx *t, cJSON *attr, bool created)
{
	cJSON *step = cJSON_CreateArray();
	cJSON *name = cJSON_CreateString("add-attr");
	const char *id = attr_id(attr);
	int r;

	if (step == NULL || name == NULL || id == NULL) {
		cJSON_Delete(step);
		cJSON_Delete(name);
		cJSON_Delete(attr);
		return id ? -ENOMEM : -EINVAL;
	}
	cJSON_AddItemToArray(step, name);
	cJSON_AddItemToArray(step, attr);
	cJSON_AddItemToArray(t->add_steps, step);
	r = hmap_put(&t->emitted, id, strlen(id), attr);
	if (r < 0)
		return r;
	return created ? index_attr(&t->created_idents, attr) : 0;
}

/* Attrs made by an earlier, still unsynced mutation go out again so that
 * every transaction stands alone on the server. */
static int
tx_add_unsynced(struct tx *t, const cJSON *attr)
{
	cJSON *copy;

	if (attr == NULL || !js_truthy(json_get(attr, "isUnsynced")) ||
	    attr_id(attr) == NULL || tx_emitted(t, attr_id(attr)))
		return 0;
	copy = cJSON_Duplicate(attr, 1);
	if (copy == NULL)
		return -ENOMEM;
	return tx_emit(t, copy, false);
}

/* A new identity [fresh uuid, etype, label]. 0, -EIO (no randomness), -ENOMEM. */
static int
ident_new(const char *etype, const char *label, cJSON **ret)
{
	char id[37];
	cJSON *a;

	if (uuid_v4(id) < 0)
		return -EIO;
	a = cJSON_CreateArray();
	if (a == NULL)
		return -ENOMEM;
	cJSON_AddItemToArray(a, cJSON_CreateString(id));
	cJSON_AddItemToArray(a, cJSON_CreateString(etype));
	cJSON_AddItemToArray(a, cJSON_CreateString(label));
	if (cJSON_GetArraySize(a) != 3) {
		cJSON_Delete(a);
		return -ENOMEM;
	}
	*ret = a;
	return 0;
}

enum attr_props {
	PROPS_NONE,
	PROPS_UNIQUE,		/* an id attr */
	PROPS_LOOKUP,		/* unique and indexed */
	PROPS_REF_LOOKUP,	/* unique, indexed, cardinality one */
};

/* A new attr with the client's guesses: blob attrs are card one, refs card
 * many with the target etype guessed to be the label. */
static int
tx_create_attr(struct tx *t, bool ref, const char *etype, const char *label, enum attr_props props)
{
	_cleanup_json_ cJSON *attr = cJSON_CreateObject();
	char id[37];
	cJSON *fwd = NULL, *rev = NULL;
	bool ok;
	int r;

	if (attr == NULL)
		return -ENOMEM;
	if (uuid_v4(id) < 0)
		return -EIO;
	r = ident_new(etype, label, &fwd);
	if (r < 0)
		return r;
	if (ref) {
		r = ident_new(label, etype, &rev);
		if (r < 0) {
			cJSON_Delete(fwd);
			return r;
		}
	}
	ok = cJSON_AddStringToObject(attr, "id", id) != NULL;
	cJSON_AddItemToObject(attr, "forward-identity", fwd);
	if (rev)
		cJSON_AddItemToObject(attr, "reverse-identity", rev);
	ok = ok && cJSON_AddStringToObject(attr, "value-type", ref ? "ref" : "blob") &&
	    cJSON_AddStringToObject(attr, "cardinality",
		(ref && props != PROPS_REF_LOOKUP) ? "many" : "one") &&
	    cJSON_AddBoolToObject(attr, "unique?", props != PROPS_NONE) &&
	    cJSON_AddBoolToObject(attr, "index?", props == PROPS_LOOKUP || props == PROPS_REF_LOOKUP) &&
	    cJSON_AddBoolToObject(attr, "isUnsynced", true);
	if (!ok)
		return -ENOMEM;
	return tx_emit(t, TAKE_PTR(attr), true);
}

/* "posts.id" names the entity linked through "posts" when no attr is
 * literally called that. */
static bool
tx_is_ref_lookup(struct tx *t, const char *etype, const char *name)
{
	return strchr(name, '.') != NULL && tx_fwd(t, etype, name) == NULL;
}

static int
tx_ref_lookup_label(struct tx *t, const char *name, char **ret)
{
	const char *dot = strchr(name, '.');
	char *label;

	if (dot == NULL || strcmp(dot + 1, "id") != 0)
		return tx_fail(t, "%s is not a valid lookup attribute", name);
	label = strndup(name, (size_t)(dot - name));
	if (label == NULL)
		return -ENOMEM;
	*ret = label;
	return 0;
}

static int
tx_add_for_ref(struct tx *t, const char *etype, const char *label)
{
	const cJSON *fwd = tx_fwd(t, etype, label), *rev = tx_rev(t, etype, label);
	int r;

	r = tx_add_unsynced(t, fwd);
	if (r < 0)
		return r;
	r = tx_add_unsynced(t, rev);
	if (r < 0)
		return r;
	if (fwd == NULL && rev == NULL)
		return tx_create_attr(t, true, etype, label, PROPS_REF_LOOKUP);
	return 0;
}

/* The attrs a lookup on etype needs: a unique blob attr, or for a ref
 * lookup the link. */
static int
tx_lookup_attrs(struct tx *t, const char *etype, const char *name)
{
	const cJSON *attr;
	int r;

	if (tx_is_ref_lookup(t, etype, name)) {
		_cleanup_free_ char *label = NULL;

		r = tx_ref_lookup_label(t, name, &label);
		if (r < 0)
			return r;
		return tx_add_for_ref(t, etype, label);
	}
	attr = tx_fwd(t, etype, name);
	if (attr == NULL)
		return tx_create_attr(t, false, etype, name, PROPS_LOOKUP);
	return tx_add_unsynced(t, attr);
}

static bool
op_has_object(enum action a)
{
	return a == ACT_CREATE || a == ACT_UPDATE || a == ACT_MERGE || a == ACT_LINK || a == ACT_UNLINK;
}

static bool
op_sets_values(enum action a)
{
	return a == ACT_CREATE || a == ACT_UPDATE || a == ACT_MERGE;
}

static bool
op_links(enum action a)
{
	return a == ACT_LINK || a == ACT_UNLINK;
}

/* A lookup as a link target: the link (card one and unique when it has to be
 * made) and the lookup attr on the etype the link points at, which is
 * guessed to be the label when the link is new. */
static int
tx_link_target_attrs(struct tx *t, const char *etype, const char *label, const char *name)
{
	const cJSON *fwd, *rev;
	const char *link_etype;
	int r;

	r = tx_add_for_ref(t, etype, label);
	if (r < 0)
		return r;
	fwd = tx_fwd(t, etype, label);
	rev = tx_rev(t, etype, label);
	if ((r = tx_add_unsynced(t, fwd)) < 0 || (r = tx_add_unsynced(t, rev)) < 0)
		return r;
	if (fwd && attr_rev_etype(fwd) && attr_rev_etype(fwd)[0])
		link_etype = attr_rev_etype(fwd);
	else if (rev && attr_fwd_etype(rev) && attr_fwd_etype(rev)[0])
		link_etype = attr_fwd_etype(rev);
	else
		link_etype = label;
	return tx_lookup_attrs(t, link_etype, name);
}

/* Lookup attrs first, so that a later field of the same name does not make
 * a non-unique attr before the lookup gets its unique one. */
static int
tx_create_lookup_attrs(struct tx *t, const struct op *op)
{
	struct lookup lk = {};
	const char *problem = NULL;
	const cJSON *label;
	int r;

	r = lookup_parse(op->eid, &lk, &problem);
	if (r < 0)
		return r == -EINVAL ? tx_fail(t, "bad id: %s", problem) : r;
	if (r > 0) {
		r = tx_lookup_attrs(t, op->etype, lk.name);
		lookup_done(&lk);
		if (r < 0)
			return r;
	}
	if (op->act != ACT_LINK)
		return 0;
	/* the client looks at the raw object here, "id" key included */
	cJSON_ArrayForEach(label, op->args) {
		const cJSON *first = cJSON_IsArray(label) ? label->child : label;
		const cJSON *target;

		for (target = first; target; target = cJSON_IsArray(label) ? target->next : NULL) {
			r = lookup_parse(target, &lk, &problem);
			if (r < 0)
				return r == -EINVAL ? tx_fail(t, "bad link target for %s: %s", label->string, problem) : r;
			if (r == 0)
				continue;
			r = tx_link_target_attrs(t, op->etype, label->string, lk.name);
			lookup_done(&lk);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int
tx_create_object_attrs(struct tx *t, const struct op *op)
{
	const cJSON *id_attr, *c;
	int r;

	if (!op_has_object(op->act))
		return 0;
	id_attr = tx_fwd(t, op->etype, "id");
	r = tx_add_unsynced(t, id_attr);
	if (r < 0)
		return r;
	if (id_attr == NULL) {
		r = tx_create_attr(t, false, op->etype, "id", PROPS_UNIQUE);
		if (r < 0)
			return r;
	}
	cJSON_ArrayForEach(c, op->args) {
		const cJSON *fwd = tx_fwd(t, op->etype, c->string);

		r = tx_add_unsynced(t, fwd);
		if (r < 0)
			return r;
		if (op_sets_values(op->act) && fwd == NULL) {
			r = tx_create_attr(t, false, op->etype, c->string,
			    strcmp(c->string, "id") == 0 ? PROPS_UNIQUE : PROPS_NONE);
			if (r < 0)
				return r;
		}
		if (op_links(op->act)) {
			const cJSON *rev = tx_rev(t, op->etype, c->string);

			if (fwd == NULL && rev == NULL) {
				r = tx_create_attr(t, true, op->etype, c->string, PROPS_NONE);
				if (r < 0)
					return r;
			}
			r = tx_add_unsynced(t, rev);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- expansion ---- */

/* The entity reference of a step: the id string, or [attr id, value]. */
static int
tx_resolve(struct tx *t, const char *etype, const cJSON *eid, cJSON **ret)
{
	struct lookup lk = {};
	const char *problem = NULL;
	const cJSON *attr;
	cJSON *pair;
	int r;

	r = lookup_parse(eid, &lk, &problem);
	if (r < 0)
		return r == -EINVAL ? tx_fail(t, "bad id: %s", problem) : r;
	if (r == 0) {
		*ret = cJSON_Duplicate(eid, 1);
		return *ret ? 0 : -ENOMEM;
	}
	if (tx_is_ref_lookup(t, etype, lk.name)) {
		_cleanup_free_ char *label = NULL;

		r = tx_ref_lookup_label(t, lk.name, &label);
		if (r < 0)
			goto out;
		attr = tx_fwd(t, etype, label);
		if (attr == NULL)
			attr = tx_rev(t, etype, label);
		if (attr && !attr_is_ref(attr)) {
			r = tx_fail(t, "%s does not reference a valid link attribute", lk.name);
			goto out;
		}
	} else
		attr = tx_fwd(t, etype, lk.name);
	if (attr == NULL || !js_truthy(json_get(attr, "unique?")) || attr_id(attr) == NULL) {
		r = tx_fail(t, "%s is not a unique attribute of %s", lk.name, etype);
		goto out;
	}
	pair = cJSON_CreateArray();
	if (pair == NULL) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_AddItemToArray(pair, cJSON_CreateString(attr_id(attr)));
	cJSON_AddItemToArray(pair, TAKE_PTR(lk.value));
	if (cJSON_GetArraySize(pair) != 2) {
		cJSON_Delete(pair);
		r = -ENOMEM;
		goto out;
	}
	*ret = pair;
	r = 0;
out:
	lookup_done(&lk);
	return r;
}

/* Append [kind, e, a, v, opts?] to out; takes e and v. */
static int
push_step(cJSON *out, const char *kind, cJSON *e, const char *a, cJSON *v, const cJSON *opts)
{
	cJSON *step = cJSON_CreateArray();
	int want = 4;

	if (step == NULL) {
		cJSON_Delete(e);
		cJSON_Delete(v);
		return -ENOMEM;
	}
	cJSON_AddItemToArray(step, cJSON_CreateString(kind));
	cJSON_AddItemToArray(step, e);
	cJSON_AddItemToArray(step, a ? cJSON_CreateString(a) : cJSON_CreateNull());
	cJSON_AddItemToArray(step, v);
	if (opts) {
		cJSON_AddItemToArray(step, cJSON_Duplicate(opts, 1));
		want = 5;
	}
	if (e == NULL || v == NULL || cJSON_GetArraySize(step) != want) {
		cJSON_Delete(step);
		return -ENOMEM;
	}
	cJSON_AddItemToArray(out, step);
	return 0;
}

static bool
tx_exists(const struct instaml_ctx *ctx, const char *etype, const cJSON *ref)
{
	if (ctx == NULL)
		return false;
	if (cJSON_IsArray(ref))
		return ctx->lookup_exists &&
		    ctx->lookup_exists(ctx->userdata, cJSON_GetArrayItem(ref, 0)->valuestring,
			cJSON_GetArrayItem(ref, 1));
	return ctx->entity_exists && ctx->entity_exists(ctx->userdata, etype, ref->valuestring);
}

/* update and merge: mode update when asked (upsert: false) or when the
 * entity is known to exist; otherwise no mode, so the server upserts. */
static cJSON *
mode_opts(const struct op *op, const struct instaml_ctx *ctx, const cJSON *ref, bool *oom)
{
	const cJSON *upsert = json_get(op->opts, "upsert");
	cJSON *o;

	*oom = false;
	if (cJSON_IsTrue(upsert))
		return NULL;
	if (!cJSON_IsFalse(upsert) && !tx_exists(ctx, op->etype, ref))
		return NULL;
	o = cJSON_CreateObject();
	if (o == NULL || !cJSON_AddStringToObject(o, "mode", "update")) {
		cJSON_Delete(o);
		*oom = true;
		return NULL;
	}
	return o;
}

static const char *
tx_id_attr(struct tx *t, const char *etype)
{
	const cJSON *a = tx_fwd(t, etype, "id");

	return a ? attr_id(a) : NULL;
}

static int
tx_expand_values(struct tx *t, const struct op *op, const struct instaml_ctx *ctx, cJSON *out)
{
	_cleanup_json_ cJSON *ref = NULL, *opts = NULL;
	const cJSON *c;
	bool oom;
	int r;

	r = tx_resolve(t, op->etype, op->eid, &ref);
	if (r < 0)
		return r;
	if (op->act == ACT_CREATE) {
		opts = cJSON_CreateObject();
		if (opts == NULL || !cJSON_AddStringToObject(opts, "mode", "create"))
			return -ENOMEM;
	} else {
		opts = mode_opts(op, ctx, ref, &oom);
		if (oom)
			return -ENOMEM;
	}
	/* the id triple first, so that it never clobbers a lookup field */
	r = push_step(out, "add-triple", cJSON_Duplicate(ref, 1), tx_id_attr(t, op->etype),
	    cJSON_Duplicate(ref, 1), opts);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(c, op->args) {
		const cJSON *attr;

		if (strcmp(c->string, "id") == 0)
			continue;
		attr = tx_fwd(t, op->etype, c->string);
		r = push_step(out, op->act == ACT_MERGE ? "deep-merge-triple" : "add-triple",
		    cJSON_Duplicate(ref, 1), attr ? attr_id(attr) : NULL, cJSON_Duplicate(c, 1), opts);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Links always go out in the attr's forward direction. */
static int
tx_expand_link(struct tx *t, const struct op *op, cJSON *out)
{
	_cleanup_json_ cJSON *steps = cJSON_CreateArray(), *self = NULL;
	const char *kind = op->act == ACT_LINK ? "add-triple" : "retract-triple";
	const cJSON *label;
	int r;

	if (steps == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(label, op->args) {
		const cJSON *fwd, *rev, *target, *first;

		if (strcmp(label->string, "id") == 0)
			continue;
		fwd = tx_fwd(t, op->etype, label->string);
		rev = tx_rev(t, op->etype, label->string);
		first = cJSON_IsArray(label) ? label->child : label;
		for (target = first; target; target = cJSON_IsArray(label) ? target->next : NULL) {
			_cleanup_json_ cJSON *src = NULL, *dst = NULL;

			if (fwd) {
				if (attr_rev_etype(fwd) == NULL)
					return tx_fail(t, "%s.%s is not a link", op->etype, label->string);
				if ((r = tx_resolve(t, op->etype, op->eid, &src)) < 0 ||
				    (r = tx_resolve(t, attr_rev_etype(fwd), target, &dst)) < 0)
					return r;
				r = push_step(steps, kind, TAKE_PTR(src), attr_id(fwd), TAKE_PTR(dst), NULL);
			} else {
				if (rev == NULL || attr_fwd_etype(rev) == NULL)
					return tx_fail(t, "%s.%s is not a link", op->etype, label->string);
				if ((r = tx_resolve(t, attr_fwd_etype(rev), target, &src)) < 0 ||
				    (r = tx_resolve(t, op->etype, op->eid, &dst)) < 0)
					return r;
				r = push_step(steps, kind, TAKE_PTR(src), attr_id(rev), TAKE_PTR(dst), NULL);
			}
			if (r < 0)
				return r;
		}
	}
	/* a link through a lookup may create the entity, so it gets its id triple */
	r = tx_resolve(t, op->etype, op->eid, &self);
	if (r < 0)
		return r;
	if (cJSON_IsArray(self)) {
		r = push_step(out, "add-triple", cJSON_Duplicate(self, 1), tx_id_attr(t, op->etype),
		    cJSON_Duplicate(self, 1), NULL);
		if (r < 0)
			return r;
	}
	while (steps->child) {
		cJSON *s = cJSON_DetachItemViaPointer(steps, steps->child);

		cJSON_AddItemToArray(out, s);
	}
	return 0;
}

static int
tx_expand(struct tx *t, const struct op *op, const struct instaml_ctx *ctx, cJSON *out)
{
	_cleanup_json_ cJSON *ref = NULL;
	cJSON *step;
	int r;

	switch (op->act) {
	case ACT_CREATE:
	case ACT_UPDATE:
	case ACT_MERGE:
		return tx_expand_values(t, op, ctx, out);
	case ACT_LINK:
	case ACT_UNLINK:
		return tx_expand_link(t, op, out);
	case ACT_DELETE:
	case ACT_RULE_PARAMS:
		r = tx_resolve(t, op->etype, op->eid, &ref);
		if (r < 0)
			return r;
		step = cJSON_CreateArray();
		if (step == NULL)
			return -ENOMEM;
		cJSON_AddItemToArray(out, step);
		cJSON_AddItemToArray(step, cJSON_CreateString(op->act == ACT_DELETE ? "delete-entity" : "rule-params"));
		cJSON_AddItemToArray(step, TAKE_PTR(ref));
		cJSON_AddItemToArray(step, cJSON_CreateString(op->etype));
		if (op->act == ACT_RULE_PARAMS) {
			cJSON *params = cJSON_Duplicate(op->args, 1);

			if (params)
				cJSON_DeleteItemFromObjectCaseSensitive(params, "id");
			cJSON_AddItemToArray(step, params);
		}
		if (cJSON_GetArraySize(step) != (op->act == ACT_DELETE ? 3 : 4))
			return -ENOMEM;
		return 0;
	}
	return -EINVAL;
}

/* ---- op shape checks ---- */

static int
check_target(struct tx *t, const char *label, const cJSON *target)
{
	struct lookup lk = {};
	const char *problem = NULL;
	int r;

	if (cJSON_IsString(target) && target->valuestring[0] == '\0')
		return tx_fail(t, "link target for %s is an empty id", label);
	r = lookup_parse(target, &lk, &problem);
	if (r == -EINVAL)
		return tx_fail(t, "bad link target for %s: %s", label, problem);
	lookup_done(&lk);
	return r < 0 ? r : 0;
}

static int
op_parse(struct tx *t, const cJSON *raw, struct op *op)
{
	const cJSON *action, *etype, *args, *opts, *c;
	struct lookup lk = {};
	const char *problem = NULL;
	size_t i;
	int n, r;

	if (!cJSON_IsArray(raw))
		return tx_fail(t, "an op must be an array [action, etype, id, args?, opts?]");
	n = cJSON_GetArraySize(raw);
	action = cJSON_GetArrayItem(raw, 0);
	if (n < 1 || !cJSON_IsString(action))
		return tx_fail(t, "missing action");
	for (i = 0; i < ELEMENTSOF(action_names); i++)
		if (strcmp(action->valuestring, action_names[i]) == 0)
			break;
	if (i == ELEMENTSOF(action_names))
		return tx_fail(t, "unknown action \"%s\"", action->valuestring);
	op->act = (enum action)i;
	if (n > 5)
		return tx_fail(t, "too many elements (at most [action, etype, id, args, opts])");
	etype = cJSON_GetArrayItem(raw, 1);
	if (!cJSON_IsString(etype) || etype->valuestring[0] == '\0')
		return tx_fail(t, "missing etype (a non-empty string)");
	op->etype = etype->valuestring;
	op->eid = cJSON_GetArrayItem(raw, 2);
	if (op->eid == NULL || cJSON_IsNull(op->eid))
		return tx_fail(t, "missing id");
	if (cJSON_IsString(op->eid) && op->eid->valuestring[0] == '\0')
		return tx_fail(t, "empty id");
	r = lookup_parse(op->eid, &lk, &problem);
	if (r == -EINVAL)
		return tx_fail(t, "bad id: %s", problem);
	lookup_done(&lk);
	if (r < 0)
		return r;
	args = cJSON_GetArrayItem(raw, 3);
	opts = cJSON_GetArrayItem(raw, 4);
	if (op->act != ACT_DELETE) {
		if (!cJSON_IsObject(args))
			return tx_fail(t, "the attributes of %s must be an object", action_names[op->act]);
		r = js_object_copy(args, &op->args);
		if (r < 0)
			return r;
	}
	if (opts && !cJSON_IsNull(opts) && !cJSON_IsObject(opts))
		return tx_fail(t, "opts must be an object");
	op->opts = cJSON_IsObject(opts) ? opts : NULL;
	if (op_links(op->act))
		cJSON_ArrayForEach(c, op->args) {
			const cJSON *target;

			if (!cJSON_IsArray(c)) {
				r = check_target(t, c->string, c);
				if (r < 0)
					return r;
				continue;
			}
			cJSON_ArrayForEach(target, c) {
				r = check_target(t, c->string, target);
				if (r < 0)
					return r;
			}
		}
	return 0;
}

int
instaml_transform(const struct attrs *attrs, const cJSON *ops,
    const struct instaml_ctx *ctx, cJSON **ret_steps, char **ret_err)
{
	struct tx t = { .base = attrs };
	struct op *v = NULL;
	size_t n = 0, i;
	_cleanup_json_ cJSON *out = NULL;
	const cJSON *raw;
	int r = 0;

	if (!cJSON_IsArray(ops)) {
		if (ret_err)
			*ret_err = strdup("ops must be an array");
		return -EINVAL;
	}
	t.add_steps = cJSON_CreateArray();
	out = cJSON_CreateArray();
	v = calloc((size_t)cJSON_GetArraySize(ops) + 1, sizeof(*v));
	if (t.add_steps == NULL || out == NULL || v == NULL) {
		r = -ENOMEM;
		goto done;
	}
	r = tx_index_base(&t);
	if (r < 0)
		goto done;
	cJSON_ArrayForEach(raw, ops) {
		t.op_idx = n;
		r = op_parse(&t, raw, &v[n++]);
		if (r < 0)
			goto done;
	}
	for (i = 0; i < n && r >= 0; i++) {
		t.op_idx = i;
		r = tx_create_lookup_attrs(&t, &v[i]);
	}
	for (i = 0; i < n && r >= 0; i++) {
		t.op_idx = i;
		r = tx_create_object_attrs(&t, &v[i]);
	}
	t.merged = true;
	for (i = 0; i < n && r >= 0; i++) {
		t.op_idx = i;
		r = tx_expand(&t, &v[i], ctx, out);
	}
	if (r >= 0 && t.oom)
		r = -ENOMEM;
	if (r < 0)
		goto done;
	/* add-attr steps go in front of everything */
	while (out->child) {
		cJSON *s = cJSON_DetachItemViaPointer(out, out->child);

		cJSON_AddItemToArray(t.add_steps, s);
	}
	*ret_steps = TAKE_PTR(t.add_steps);
done:
	for (i = 0; i < n; i++)
		cJSON_Delete(v[i].args);
	free(v);
	hmap_done(&t.base_idents);
	hmap_done(&t.created_idents);
	hmap_done(&t.emitted);
	cJSON_Delete(t.add_steps);
	if (r == -EINVAL && ret_err)
		*ret_err = TAKE_PTR(t.err);
	free(t.err);
	return r;
}

int
instaml_new_attrs(const cJSON *steps, cJSON **ret_attrs)
{
	_cleanup_json_ cJSON *out = NULL;
	const cJSON *s;

	if (!cJSON_IsArray(steps))
		return -EINVAL;
	out = cJSON_CreateArray();
	if (out == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(s, steps) {
		const cJSON *kind = cJSON_GetArrayItem(s, 0), *attr = cJSON_GetArrayItem(s, 1);
		cJSON *copy;

		if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "add-attr") != 0 ||
		    !cJSON_IsObject(attr))
			continue;
		copy = cJSON_Duplicate(attr, 1);
		if (copy == NULL)
			return -ENOMEM;
		cJSON_AddItemToArray(out, copy);
	}
	*ret_attrs = TAKE_PTR(out);
	return 0;
}

/* ---- rewrite ---- */

struct rewrite_map {
	const struct attrs *server;
	struct hmap server_idents;	/* built on the first add-attr */
	bool indexed;
	struct hmap ids;	/* mapped id -> index into to and swap */
	char **to;		/* owned */
	bool *swap;
	size_t n, cap;
	bool changed;		/* the client's mappingChanged: sticks for the rest of the queue */
};

static void
rewrite_map_done(struct rewrite_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->to[i]);
	free(m->to);
	free(m->swap);
	hmap_done(&m->ids);
	hmap_done(&m->server_idents);
}

/* The server attr with this identity; the client's map keeps the last one. */
static int
rewrite_server_ident(struct rewrite_map *m, bool fwd, const char *etype, const char *label, const cJSON **ret)
{
	_cleanup_free_ char *k = NULL;
	const struct hent *e;
	size_t len;
	int r;

	if (!m->indexed) {
		for (size_t i = 0; i < attrs_count(m->server); i++) {
			r = index_attr(&m->server_idents, attrs_at(m->server, i));
			if (r < 0)
				return r;
		}
		m->indexed = true;
	}
	r = ident_key(fwd, etype, label, &k, &len);
	if (r < 0)
		return r;
	e = hmap_get(&m->server_idents, k, len);
	*ret = e ? e->last : NULL;
	return 0;
}

static ssize_t
rewrite_map_find(const struct rewrite_map *m, const char *id)
{
	const struct hent *e = hmap_get(&m->ids, id, strlen(id));

	return e ? (ssize_t)e->idx : -1;
}

static int
rewrite_map_put(struct rewrite_map *m, const char *from, const char *to, bool swap)
{
	ssize_t i = rewrite_map_find(m, from);
	struct hent *e;
	char *t = strdup(to);
	int r;

	if (t == NULL)
		return -ENOMEM;
	if (i >= 0) {
		free(m->to[i]);
		m->to[i] = t;
		m->swap[i] = m->swap[i] || swap;
		return 0;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 8;
		char **tv = realloc(m->to, cap * sizeof(*tv));

		if (tv)
			m->to = tv;
		bool *sv = realloc(m->swap, cap * sizeof(*sv));
		if (sv)
			m->swap = sv;
		if (!tv || !sv) {
			free(t);
			return -ENOMEM;
		}
		m->cap = cap;
	}
	r = hmap_put_entry(&m->ids, from, strlen(from), NULL, &e);
	if (r < 0) {
		free(t);
		return r;
	}
	e->idx = m->n;
	m->to[m->n] = t;
	m->swap[m->n] = swap;
	m->n++;
	return 0;
}

/* The mapped id of a step part: the client indexes its map with the part
 * turned into a string, so a one-element array holding the id maps too. */
static const char *
rewrite_map_part(const struct rewrite_map *m, const cJSON *part)
{
	ssize_t i;

	while (cJSON_IsArray(part) && part->child && part->child->next == NULL)
		part = part->child;
	if (!cJSON_IsString(part))
		return NULL;
	i = rewrite_map_find(m, part->valuestring);
	return i >= 0 && m->to[i][0] ? m->to[i] : NULL;
}

static cJSON *
rewrite_step(const struct rewrite_map *m, const cJSON *step)
{
	_cleanup_json_ cJSON *out = cJSON_CreateArray();
	const cJSON *part, *kind = cJSON_GetArrayItem(step, 0), *a = cJSON_GetArrayItem(step, 2);
	cJSON *copy;

	if (out == NULL)
		return NULL;
	cJSON_ArrayForEach(part, step) {
		const char *to = rewrite_map_part(m, part);
		/* a lookup [attr-id, value] */
		const cJSON *head = cJSON_IsArray(part) && part->child && part->child->next &&
		    part->child->next->next == NULL ? part->child : NULL;
		ssize_t hi = head && cJSON_IsString(head) ? rewrite_map_find(m, head->valuestring) : -1;

		if (to)
			copy = cJSON_CreateString(to);
		else if (hi >= 0 && m->to[hi][0]) {
			copy = cJSON_CreateArray();
			if (copy) {
				cJSON_AddItemToArray(copy, cJSON_CreateString(m->to[hi]));
				cJSON_AddItemToArray(copy, cJSON_Duplicate(head->next, 1));
				if (cJSON_GetArraySize(copy) != 2) {
					cJSON_Delete(copy);
					copy = NULL;
				}
			}
		} else
			copy = cJSON_Duplicate(part, 1);
		if (copy == NULL)
			return NULL;
		cJSON_AddItemToArray(out, copy);
	}
	if (cJSON_IsString(kind) && cJSON_IsString(a) && cJSON_GetArraySize(out) >= 4 &&
	    (strcmp(kind->valuestring, "add-triple") == 0 || strcmp(kind->valuestring, "retract-triple") == 0)) {
		ssize_t i = rewrite_map_find(m, a->valuestring);

		if (i >= 0 && m->swap[i]) {
			/* [kind, e, a, v, rest...] -> [kind, v, a, e, rest...] */
			cJSON *kind_part = cJSON_DetachItemFromArray(out, 0);
			cJSON *e = cJSON_DetachItemFromArray(out, 0);
			cJSON *attr_part = cJSON_DetachItemFromArray(out, 0);
			cJSON *v = cJSON_DetachItemFromArray(out, 0);
			cJSON *rest = out->child;

			out->child = NULL;
			cJSON_AddItemToArray(out, kind_part);
			cJSON_AddItemToArray(out, v);
			cJSON_AddItemToArray(out, attr_part);
			cJSON_AddItemToArray(out, e);
			while (rest) {
				cJSON *next = rest->next;

				rest->prev = rest->next = NULL;
				cJSON_AddItemToArray(out, rest);
				rest = next;
			}
		}
	}
	return TAKE_PTR(out);
}

static bool
step_is(const cJSON *step, const char *kind)
{
	const cJSON *k = cJSON_GetArrayItem(step, 0);

	return cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0;
}

static int
rewrite_one(struct rewrite_map *m, cJSON *steps, bool drop_add_attrs, bool *ret_changed)
{
	_cleanup_json_ cJSON *out = cJSON_CreateArray();
	const cJSON *step;
	cJSON *tmp;
	int r;

	if (out == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(step, steps) {
		cJSON *copy;

		if (step_is(step, "add-attr")) {
			const cJSON *attr = cJSON_GetArrayItem(step, 1);
			const char *id = attr_id(attr), *etype = attr_fwd_etype(attr), *label = attr_fwd_label(attr);
			const cJSON *existing = NULL;

			if (etype && label) {
				r = rewrite_server_ident(m, true, etype, label, &existing);
				if (r < 0)
					return r;
			}

			if (id && existing && attr_id(existing) && strcmp(id, attr_id(existing)) != 0) {
				r = rewrite_map_put(m, id, attr_id(existing), false);
				if (r < 0)
					return r;
				m->changed = true;
				continue;
			}
			if (id && etype && label && attr_is_ref(attr)) {
				const cJSON *rev = NULL;

				r = rewrite_server_ident(m, false, etype, label, &rev);
				if (r < 0)
					return r;

				if (rev && attr_id(rev)) {
					r = rewrite_map_put(m, id, attr_id(rev), true);
					if (r < 0)
						return r;
					m->changed = true;
					continue;
				}
			}
		}
		/* the client drops every update-attr and delete-attr here (operator precedence) */
		if ((drop_add_attrs && step_is(step, "add-attr")) ||
		    step_is(step, "update-attr") || step_is(step, "delete-attr")) {
			m->changed = true;
			continue;
		}
		copy = m->changed && cJSON_IsArray(step) ? rewrite_step(m, step) : cJSON_Duplicate(step, 1);
		if (copy == NULL)
			return -ENOMEM;
		cJSON_AddItemToArray(out, copy);
	}
	*ret_changed = !json_equal(out, steps);
	if (*ret_changed) {
		tmp = steps->child;
		steps->child = out->child;
		out->child = tmp;
	}
	return 0;
}

int
instaml_rewrite_queue(const struct attrs *server_attrs, cJSON *const *steps,
    const bool *drop_add_attrs, size_t n, bool *ret_changed)
{
	struct rewrite_map m = { .server = server_attrs };
	int r = 0;

	for (size_t i = 0; i < n; i++)
		if (!cJSON_IsArray(steps[i]))
			return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		bool changed = false;

		r = rewrite_one(&m, steps[i], drop_add_attrs && drop_add_attrs[i], &changed);
		if (r < 0)
			break;
		if (ret_changed)
			ret_changed[i] = changed;
	}
	rewrite_map_done(&m);
	return r;
}

int
instaml_rewrite(const struct attrs *server_attrs, cJSON *steps,
    bool drop_add_attrs, bool *ret_changed)
{
	bool changed = false;
	int r;

	r = instaml_rewrite_queue(server_attrs, &steps, &drop_add_attrs, 1, &changed);
	if (r < 0)
		return r;
	if (ret_changed)
		*ret_changed = changed;
	return 0;
}

/* ---- raw tx-step validation ---- */

static int
step_fail(char **ret_err, size_t i, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	if (ret_err == NULL)
		return -EINVAL;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (asprintf(ret_err, "tx-step %zu: %s", i, msg) < 0)
		return -ENOMEM;
	return -EINVAL;
}

/* An entity: a uuid or a lookup [attr-id, value]. */
static bool
valid_entity(const cJSON *e)
{
	if (cJSON_IsString(e))
		return uuid_valid(e->valuestring);
	return cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
	    cJSON_IsString(e->child) && uuid_valid(e->child->valuestring);
}

static bool
valid_ident(const cJSON *ident)
{
	const cJSON *c;
	int i = 0;

	if (!cJSON_IsArray(ident) || cJSON_GetArraySize(ident) != 3)
		return false;
	cJSON_ArrayForEach(c, ident) {
		if (!cJSON_IsString(c) || c->valuestring[0] == '\0')
			return false;
		if (i++ == 0 && !uuid_valid(c->valuestring))
			return false;
	}
	return true;
}

static const char *
attr_problem(const cJSON *attr)
{
	const char *vt, *card;
	const cJSON *mode;

	if (!cJSON_IsObject(attr))
		return "the attr must be an object";
	if (!uuid_valid(attr_id(attr)))
		return "the attr's id must be a uuid";
	if (!valid_ident(json_get(attr, "forward-identity")))
		return "forward-identity must be [uuid, etype, label]";
	vt = json_get_string(attr, "value-type");
	if (vt == NULL || (strcmp(vt, "blob") != 0 && strcmp(vt, "ref") != 0))
		return "value-type must be \"blob\" or \"ref\"";
	card = json_get_string(attr, "cardinality");
	if (card == NULL || (strcmp(card, "one") != 0 && strcmp(card, "many") != 0))
		return "cardinality must be \"one\" or \"many\"";
	if (!cJSON_IsBool(json_get(attr, "unique?")) || !cJSON_IsBool(json_get(attr, "index?")))
		return "unique? and index? must be booleans";
	if (strcmp(vt, "ref") == 0 && !valid_ident(json_get(attr, "reverse-identity")))
		return "a ref attr needs reverse-identity [uuid, etype, label]";
	mode = json_get(attr, "checked-data-type");
	if (mode && !cJSON_IsNull(mode) && !cJSON_IsString(mode))
		return "checked-data-type must be a string";
	return NULL;
}

int
instaml_validate_steps(const cJSON *steps, char **ret_err)
{
	const cJSON *s;
	size_t i = 0;

	if (!cJSON_IsArray(steps)) {
		if (ret_err && (*ret_err = strdup("tx-steps must be an array")) == NULL)
			return -ENOMEM;
		return -EINVAL;
	}
	cJSON_ArrayForEach(s, steps) {
		const cJSON *kind = cJSON_GetArrayItem(s, 0);
		const char *k, *problem;
		int n = cJSON_GetArraySize(s);

		if (!cJSON_IsArray(s) || !cJSON_IsString(kind))
			return step_fail(ret_err, i, "a tx-step must be an array starting with its kind");
		k = kind->valuestring;
		if (strcmp(k, "add-triple") == 0 || strcmp(k, "deep-merge-triple") == 0 ||
		    strcmp(k, "retract-triple") == 0) {
			const cJSON *opts = cJSON_GetArrayItem(s, 4);

			if (n < 4 || n > 5)
				return step_fail(ret_err, i, "%s takes [kind, entity, attr-id, value, opts?]", k);
			if (!valid_entity(cJSON_GetArrayItem(s, 1)))
				return step_fail(ret_err, i, "the entity must be a uuid or [attr-id, value]");
			if (!cJSON_IsString(cJSON_GetArrayItem(s, 2)) ||
			    !uuid_valid(cJSON_GetArrayItem(s, 2)->valuestring))
				return step_fail(ret_err, i, "the attr id must be a uuid");
			if (opts) {
				const char *mode = json_get_string(opts, "mode");

				if (!cJSON_IsObject(opts))
					return step_fail(ret_err, i, "opts must be an object");
				if (json_get(opts, "mode") && (mode == NULL ||
				    (strcmp(mode, "create") != 0 && strcmp(mode, "update") != 0 &&
				    strcmp(mode, "upsert") != 0)))
					return step_fail(ret_err, i, "mode must be \"create\", \"update\" or \"upsert\"");
			}
		} else if (strcmp(k, "delete-entity") == 0) {
			const cJSON *etype = cJSON_GetArrayItem(s, 2);

			if (n < 2 || n > 3)
				return step_fail(ret_err, i, "delete-entity takes [kind, entity, etype?]");
			if (!valid_entity(cJSON_GetArrayItem(s, 1)))
				return step_fail(ret_err, i, "the entity must be a uuid or [attr-id, value]");
			if (etype && (!cJSON_IsString(etype) || etype->valuestring[0] == '\0'))
				return step_fail(ret_err, i, "the etype must be a non-empty string");
		} else if (strcmp(k, "rule-params") == 0) {
			const cJSON *etype = cJSON_GetArrayItem(s, 2);

			if (n != 4)
				return step_fail(ret_err, i, "rule-params takes [kind, entity, etype, params]");
			if (!valid_entity(cJSON_GetArrayItem(s, 1)))
				return step_fail(ret_err, i, "the entity must be a uuid or [attr-id, value]");
			if (!cJSON_IsString(etype) || etype->valuestring[0] == '\0')
				return step_fail(ret_err, i, "the etype must be a non-empty string");
			if (!cJSON_IsObject(cJSON_GetArrayItem(s, 3)))
				return step_fail(ret_err, i, "the params must be an object");
		} else if (strcmp(k, "add-attr") == 0) {
			if (n != 2)
				return step_fail(ret_err, i, "add-attr takes [kind, attr]");
			problem = attr_problem(cJSON_GetArrayItem(s, 1));
			if (problem)
				return step_fail(ret_err, i, "%s", problem);
		} else if (strcmp(k, "update-attr") == 0) {
			const cJSON *attr = cJSON_GetArrayItem(s, 1);

			if (n != 2 || !cJSON_IsObject(attr) || !uuid_valid(attr_id(attr)))
				return step_fail(ret_err, i, "update-attr takes [kind, {id: uuid, ...}]");
		} else if (strcmp(k, "delete-attr") == 0 || strcmp(k, "restore-attr") == 0) {
			const cJSON *id = cJSON_GetArrayItem(s, 1);

			if (n != 2 || !cJSON_IsString(id) || !uuid_valid(id->valuestring))
				return step_fail(ret_err, i, "%s takes [kind, attr-id]", k);
		} else
			return step_fail(ret_err, i, "unknown tx-step kind \"%s\"", k);
		i++;
	}
	return 0;
}
