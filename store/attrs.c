/* The attr registry: copies of attr objects with lookups by id and identity. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "store/attrs.h"
#include "store/util.h"

struct attrs {
	cJSON **v;	/* owned copies */
	size_t n, cap;
	size_t *slots;	/* owned: open-addressed id index, entries are index + 1 */
	size_t nslots;	/* a power of two, at least twice n; 0 before the first add */
};

static size_t
hash_str(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* Rebuild the id index for the current array (after growth or removal). */
static int
attrs_reindex(struct attrs *a, size_t want)
{
	size_t n = 16, *slots;

	while (n < want * 2)
		n *= 2;
	slots = calloc(n, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		size_t h = hash_str(attr_id(a->v[i])) & (n - 1);

		while (slots[h])
			h = (h + 1) & (n - 1);
		slots[h] = i + 1;
	}
	free(a->slots);
	a->slots = slots;
	a->nslots = n;
	return 0;
}

struct attrs *
attrs_new(void)
{
	return calloc(1, sizeof(struct attrs));
}

static void
attrs_clear(struct attrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		cJSON_Delete(a->v[i]);
	a->n = 0;
	if (a->slots)
		memset(a->slots, 0, a->nslots * sizeof(*a->slots));
}

void
attrs_free(struct attrs *a)
{
	if (a == NULL)
		return;
	attrs_clear(a);
	free(a->v);
	free(a->slots);
	free(a);
}

static ssize_t
attrs_index(const struct attrs *a, const char *id)
{
	size_t h;

	if (id == NULL || a->nslots == 0)
		return -1;
	for (h = hash_str(id) & (a->nslots - 1); a->slots[h]; h = (h + 1) & (a->nslots - 1)) {
		size_t i = a->slots[h] - 1;

		if (strcmp(attr_id(a->v[i]), id) == 0)
			return (ssize_t)i;
	}
	return -1;
}

int
attrs_add(struct attrs *a, const cJSON *attr)
{
	cJSON *copy;
	ssize_t i;

	if (!cJSON_IsObject(attr) || attr_id(attr) == NULL)
		return -EINVAL;
	copy = cJSON_Duplicate(attr, 1);
	if (copy == NULL)
		return -ENOMEM;
	i = attrs_index(a, attr_id(attr));
	if (i >= 0) {
		cJSON_Delete(a->v[i]);
		a->v[i] = copy;
		return 0;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		cJSON **nv = realloc(a->v, cap * sizeof(*nv));

		if (nv == NULL) {
			cJSON_Delete(copy);
			return -ENOMEM;
		}
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = copy;
	if (a->n * 2 > a->nslots) {
		if (attrs_reindex(a, a->n) < 0) {
			cJSON_Delete(a->v[--a->n]);
			return -ENOMEM;
		}
	} else {
		size_t h = hash_str(attr_id(copy)) & (a->nslots - 1);

		while (a->slots[h])
			h = (h + 1) & (a->nslots - 1);
		a->slots[h] = a->n;
	}
	return 0;
}

int
attrs_dup(const struct attrs *a, struct attrs **ret)
{
	struct attrs *d = attrs_new();
	int r;

	if (d == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		r = attrs_add(d, a->v[i]);
		if (r < 0) {
			attrs_free(d);
			return r;
		}
	}
	*ret = d;
	return 0;
}

int
attrs_set_all(struct attrs *a, const cJSON *list)
{
	const cJSON *c;
	int r;

	if (!cJSON_IsArray(list) && !cJSON_IsObject(list))
		return -EINVAL;
	cJSON_ArrayForEach(c, list)
		if (!cJSON_IsObject(c) || attr_id(c) == NULL)
			return -EINVAL;
	attrs_clear(a);
	cJSON_ArrayForEach(c, list) {
		r = attrs_add(a, c);
		if (r < 0)
			return r;
	}
	return 0;
}

int
attrs_update(struct attrs *a, const cJSON *partial)
{
	ssize_t i = attrs_index(a, json_get_string(partial, "id"));
	const cJSON *c;

	if (i < 0)
		return -ENOENT;
	cJSON_ArrayForEach(c, partial) {
		cJSON *copy = cJSON_Duplicate(c, 1);

		if (copy == NULL)
			return -ENOMEM;
		if (cJSON_GetObjectItemCaseSensitive(a->v[i], c->string))
			cJSON_ReplaceItemInObjectCaseSensitive(a->v[i], c->string, copy);
		else
			cJSON_AddItemToObject(a->v[i], c->string, copy);
	}
	return 0;
}

int
attrs_remove(struct attrs *a, const char *id)
{
	ssize_t i = attrs_index(a, id);

	if (i < 0)
		return -ENOENT;
	cJSON_Delete(a->v[i]);
	memmove(&a->v[i], &a->v[i + 1], (a->n - (size_t)i - 1) * sizeof(*a->v));
	a->n--;
	/* Indexes after i moved: rebuild (removal is rare: delete-attr). */
	return attrs_reindex(a, a->n);
}

size_t
attrs_count(const struct attrs *a)
{
	return a->n;
}

const cJSON *
attrs_at(const struct attrs *a, size_t i)
{
	return i < a->n ? a->v[i] : NULL;
}

const cJSON *
attrs_by_id(const struct attrs *a, const char *id)
{
	ssize_t i = attrs_index(a, id);

	return i < 0 ? NULL : a->v[i];
}

static const char *
ident_part(const cJSON *attr, const char *which, int idx)
{
	const cJSON *ident = json_get(attr, which);
	const cJSON *p = cJSON_IsArray(ident) ? cJSON_GetArrayItem(ident, idx) : NULL;

	return cJSON_IsString(p) ? p->valuestring : NULL;
}

static const cJSON *
by_ident(const struct attrs *a, const char *which, const char *etype, const char *label)
{
	for (size_t i = 0; i < a->n; i++) {
		const char *e = ident_part(a->v[i], which, 1);
		const char *l = ident_part(a->v[i], which, 2);

		if (e && l && strcmp(e, etype) == 0 && strcmp(l, label) == 0)
			return a->v[i];
	}
	return NULL;
}

const cJSON *
attrs_by_fwd(const struct attrs *a, const char *etype, const char *label)
{
	return by_ident(a, "forward-identity", etype, label);
}

const cJSON *
attrs_by_rev(const struct attrs *a, const char *etype, const char *label)
{
	return by_ident(a, "reverse-identity", etype, label);
}

cJSON *
attrs_to_json(const struct attrs *a)
{
	cJSON *arr = cJSON_CreateArray();

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < a->n; i++) {
		cJSON *copy = cJSON_Duplicate(a->v[i], 1);

		if (copy == NULL) {
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddItemToArray(arr, copy);
	}
	return arr;
}

const char *attr_id(const cJSON *attr) { return json_get_string(attr, "id"); }
const char *attr_fwd_etype(const cJSON *attr) { return ident_part(attr, "forward-identity", 1); }
const char *attr_fwd_label(const cJSON *attr) { return ident_part(attr, "forward-identity", 2); }
const char *attr_rev_etype(const cJSON *attr) { return ident_part(attr, "reverse-identity", 1); }
const char *attr_rev_label(const cJSON *attr) { return ident_part(attr, "reverse-identity", 2); }

static bool
str_is(const cJSON *attr, const char *key, const char *want)
{
	const char *s = json_get_string(attr, key);

	return s && strcmp(s, want) == 0;
}

bool attr_is_ref(const cJSON *attr) { return str_is(attr, "value-type", "ref"); }
bool attr_card_one(const cJSON *attr) { return str_is(attr, "cardinality", "one"); }
bool attr_unique(const cJSON *attr) { return cJSON_IsTrue(json_get(attr, "unique?")); }
bool attr_indexed(const cJSON *attr) { return cJSON_IsTrue(json_get(attr, "index?")); }
bool attr_unsynced(const cJSON *attr) { return cJSON_IsTrue(json_get(attr, "isUnsynced")); }
