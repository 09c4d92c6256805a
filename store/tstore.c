/* The per-query triple store: interned values, EAV/AEV/AVE/VAE hash indexes
 * kept in insertion order, and tx-step application with the semantics of
 * @instantdb/core 1.0.67's store.ts (see store/QUERY-DIFFERENCES.md for the
 * two index quirks we deliberately do not copy). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/tstore-internal.h"
#include "store/util.h"

#define HDEL UINT32_MAX
/* Bound on delete-entity cascade recursion, so a hostile chain cannot
 * exhaust the stack. */
#define TSTORE_MAX_CASCADE 10000

/* ---- small helpers ---- */

/* Vector storage comes from its store's slab (bump-allocated blocks freed
 * with the store), so building a store makes no allocation per vector. A
 * vector with VEC_POOLED set never reallocs or frees its storage; one
 * without it (a temporary) is plain heap memory. */
#define VEC_POOLED 0x80000000u
/* Blocks double from SLAB_FIRST to SLAB_MAX ids: a store of a small result
 * (most of a profile's) stays small. */
#define SLAB_FIRST 256u
#define SLAB_MAX 16384u

struct slab {
	struct slab *next;
	size_t used, size;
	uint32_t data[];
};

static uint32_t *
slab_alloc(struct tstore *s, uint32_t n)
{
	struct slab *b = s->slab;

	if (b == NULL || b->used + n > b->size) {
		size_t size = b == NULL ? SLAB_FIRST : b->size >= SLAB_MAX / 2 ? SLAB_MAX : b->size * 2;

		if (size < n)
			size = n;

		b = malloc(sizeof(*b) + size * sizeof(uint32_t));
		if (b == NULL)
			return NULL;
		b->size = size;
		b->used = 0;
		b->next = s->slab;
		s->slab = b;
	}
	b->used += n;
	return &b->data[b->used - n];
}

static void
slab_free(struct slab *b)
{
	while (b) {
		struct slab *n = b->next;

		free(b);
		b = n;
	}
}

static int
vec_push(struct tstore *s, struct u32vec *v, uint32_t x)
{
	uint32_t cap = v->cap & ~VEC_POOLED;

	if (v->n == cap) {
		uint32_t *nv;

		cap = cap ? cap * 2 : 1;
		nv = slab_alloc(s, cap);
		if (nv == NULL)
			return -ENOMEM;
		if (v->n)
			memcpy(nv, v->v, v->n * sizeof(*nv));
		if (!(v->cap & VEC_POOLED))
			free(v->v);
		v->v = nv;
		v->cap = cap | VEC_POOLED;
	}
	v->v[v->n++] = x;
	return 0;
}

static void
vec_free(struct u32vec *v)
{
	if (!(v->cap & VEC_POOLED))
		free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

/* Copy src into pool storage at *pool (advanced). */
static void
vec_copy_pooled(struct u32vec *dst, const struct u32vec *src, uint32_t **pool)
{
	*dst = (struct u32vec){0};
	if (src->n == 0)
		return;
	dst->v = *pool;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = src->n;
	dst->cap = src->n | VEC_POOLED;
	*pool += src->n;
}

static void
vec_remove(struct u32vec *v, uint32_t x)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (v->v[i] == x) {
			memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(*v->v));
			v->n--;
			return;
		}
}

static void
vec_replace(struct u32vec *v, uint32_t old, uint32_t x)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (v->v[i] == old) {
			v->v[i] = x;
			return;
		}
}

static int
vec_copy(struct u32vec *dst, const struct u32vec *src)
{
	*dst = (struct u32vec){0};
	if (src->n == 0)
		return 0;
	dst->v = malloc(src->n * sizeof(*dst->v));
	if (dst->v == NULL)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = dst->cap = src->n;
	return 0;
}

static int
grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t c;
	void *n;

	if (need <= *cap)
		return 0;
	c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	n = realloc(*arr, (size_t)c * elem);
	if (n == NULL)
		return -ENOMEM;
	memset((char *)n + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
	*arr = n;
	*cap = c;
	return 0;
}

static uint32_t
mix3(uint32_t a, uint32_t b, uint32_t c)
{
	uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ULL;

	h ^= (uint64_t)b * 0xC2B2AE3D27D4EB4FULL + (h >> 29);
	h ^= (uint64_t)c * 0x165667B19E3779F9ULL + (h >> 32);
	h *= 0xFF51AFD7ED558CCDULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

/* ---- generic hash (keys of up to three ids) ---- */

uint32_t
tstore_hmap_get(const struct hmap *m, uint32_t k1, uint32_t k2, uint32_t k3)
{
	uint32_t mask, i;

	if (m->cap == 0)
		return 0;
	mask = m->cap - 1;
	for (i = mix3(k1, k2, k3) & mask;; i = (i + 1) & mask) {
		const struct hslot *sl = &m->slots[i];

		if (sl->val == 0)
			return 0;
		if (sl->val != HDEL && sl->k1 == k1 && sl->k2 == k2 && sl->k3 == k3)
			return sl->val;
	}
}


static int
hmap_resize(struct hmap *m, uint32_t cap)
{
	struct hmap n = { .slots = calloc(cap, sizeof(struct hslot)), .cap = cap };

	if (n.slots == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->cap; i++) {
		struct hslot *sl = &m->slots[i];

		if (sl->val != 0 && sl->val != HDEL)
			(void)tstore_hmap_put(&n, sl->k1, sl->k2, sl->k3, sl->val);
	}
	free(m->slots);
	*m = n;
	return 0;
}

/* Make room for n more keys without rehashing. */
static int
hmap_reserve(struct hmap *m, uint32_t n)
{
	uint32_t cap = m->cap ? m->cap : 16;

	while ((m->n + m->ntomb + n + 1) * 4 >= cap * 3)
		cap *= 2;
	return cap > m->cap ? hmap_resize(m, cap) : 0;
}

/* Insert or replace. val must not be 0 or HDEL. */
int
tstore_hmap_put(struct hmap *m, uint32_t k1, uint32_t k2, uint32_t k3, uint32_t val)
{
	uint32_t mask, i, tomb = UINT32_MAX;
	int r;

	if ((m->n + m->ntomb + 1) * 4 >= m->cap * 3) {
		uint32_t cap = m->cap ? m->cap : 16;

		while ((m->n + 1) * 2 >= cap)
			cap *= 2;
		r = hmap_resize(m, cap);
		if (r < 0)
			return r;
	}
	mask = m->cap - 1;
	for (i = mix3(k1, k2, k3) & mask;; i = (i + 1) & mask) {
		struct hslot *sl = &m->slots[i];

		if (sl->val == 0)
			break;
		if (sl->val == HDEL) {
			if (tomb == UINT32_MAX)
				tomb = i;
			continue;
		}
		if (sl->k1 == k1 && sl->k2 == k2 && sl->k3 == k3) {
			sl->val = val;
			return 0;
		}
	}
	if (tomb != UINT32_MAX) {
		i = tomb;
		m->ntomb--;
	}
	m->slots[i] = (struct hslot){ k1, k2, k3, val };
	m->n++;
	return 0;
}

void
tstore_hmap_del(struct hmap *m, uint32_t k1, uint32_t k2, uint32_t k3)
{
	uint32_t mask, i;

	if (m->cap == 0)
		return;
	mask = m->cap - 1;
	for (i = mix3(k1, k2, k3) & mask;; i = (i + 1) & mask) {
		struct hslot *sl = &m->slots[i];

		if (sl->val == 0)
			return;
		if (sl->val != HDEL && sl->k1 == k1 && sl->k2 == k2 && sl->k3 == k3) {
			sl->val = HDEL;
			m->n--;
			m->ntomb++;
			return;
		}
	}
}

static int
hmap_copy(struct hmap *dst, const struct hmap *src)
{
	*dst = *src;
	if (src->cap == 0)
		return 0;
	dst->slots = malloc(src->cap * sizeof(struct hslot));
	if (dst->slots == NULL)
		return -ENOMEM;
	memcpy(dst->slots, src->slots, src->cap * sizeof(struct hslot));
	return 0;
}

void
tstore_hmap_clear(struct hmap *m)
{
	free(m->slots);
	*m = (struct hmap){0};
}

/* ---- value interning ---- */

/* A word-at-a-time string hash. Long strings (book descriptions run to
 * kilobytes) are hashed by their length and their first and last 64 bytes;
 * equal hashes are confirmed by comparing the bytes anyway. */
static uint64_t
hash_words(uint64_t h, const char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
		h ^= h >> 32;
	}
	if (i < n) {
		uint64_t w = 0;

		memcpy(&w, p + i, n - i);
		h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
		h ^= h >> 29;
	}
	return h;
}

static uint32_t
hash_bytes(const char *p, size_t n)
{
	uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);

	if (n <= 160)
		h = hash_words(h, p, n);
	else {
		h = hash_words(h, p, 64);
		h = hash_words(h, p + n - 64, 64);
	}
	h *= 0xFF51AFD7ED558CCDULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

static uint32_t
hash_num(double d)
{
	uint64_t b;

	if (d == 0)
		d = 0;	/* -0 and 0 are one key (SameValueZero) */
	memcpy(&b, &d, sizeof(b));
	return mix3((uint32_t)b, (uint32_t)(b >> 32), 7);
}

static bool
tv_same(const struct tval *x, uint8_t type, double num, const char *str, uint32_t len)
{
	if (x->type != type)
		return false;
	switch (type) {
	case TV_NUM:
		return x->num == num;
	case TV_STR:
		return x->len == len && memcmp(x->str, str, len) == 0;
	default:
		return true;
	}
}

static uint32_t
tv_lookup(const struct tstore_values *vt, uint8_t type, double num, const char *str, uint32_t len, uint32_t hash)
{
	uint32_t mask, i;

	if (vt->vcap == 0)
		return VID_NONE;
	mask = vt->vcap - 1;
	for (i = hash & mask;; i = (i + 1) & mask) {
		uint32_t vid = vt->vslots[i];

		if (vid == 0)
			return VID_NONE;
		if (vid != HDEL && vt->vals[vid].hash == hash && tv_same(&vt->vals[vid], type, num, str, len))
			return vid;
	}
}

static int
tv_slots_insert(struct tstore *s, uint32_t vid)
{
	struct tstore_values *vt = s->vt;
	uint32_t mask, i;

	if ((vt->vn + vt->vtomb + 1) * 2 >= vt->vcap) {
		uint32_t cap = vt->vcap ? vt->vcap : 64;
		uint32_t *ns;

		while ((vt->vn + 1) * 2 >= cap)
			cap *= 2;
		if ((ns = calloc(cap, sizeof(*ns))) == NULL)
			return -ENOMEM;
		for (uint32_t j = 0; j < vt->vcap; j++) {
			uint32_t v = vt->vslots[j];

			if (v == 0 || v == HDEL)
				continue;
			for (i = vt->vals[v].hash & (cap - 1); ns[i]; i = (i + 1) & (cap - 1))
				;
			ns[i] = v;
		}
		free(vt->vslots);
		vt->vslots = ns;
		vt->vcap = cap;
		vt->vtomb = 0;
	}
	mask = vt->vcap - 1;
	for (i = vt->vals[vid].hash & mask; vt->vslots[i] && vt->vslots[i] != HDEL; i = (i + 1) & mask)
		;
	if (vt->vslots[i] == HDEL)
		vt->vtomb--;
	vt->vslots[i] = vid;
	vt->vn++;
	return 0;
}

/* A new value id (refs 0: the caller's operation keeps it, or tv_sweep
 * releases it). */
static int
tv_new(struct tstore *s, struct tval v, uint32_t *ret)
{
	struct tstore_values *vt = s->vt;
	uint32_t vid;
	int r;

	if ((r = grow((void **)&s->fresh, &s->capfresh, s->nfresh + 1, sizeof(*s->fresh))) < 0)
		return r;
	if (vt->nfreed > 0)
		vid = vt->freed[--vt->nfreed];
	else {
		/* the free list always has room for every id, so releasing cannot fail */
		if ((r = grow((void **)&vt->vals, &vt->capvals, vt->nvals + 1, sizeof(*vt->vals))) < 0 ||
		    (r = grow((void **)&vt->freed, &vt->capfreed, vt->capvals, sizeof(*vt->freed))) < 0)
			return r;
		vid = vt->nvals++;
	}
	v.refs = 0;
	vt->vals[vid] = v;
	vt->live++;
	s->fresh[s->nfresh++] = vid;
	*ret = vid;
	return 0;
}

static void
vt_release(struct tstore_values *vt, uint32_t vid)
{
	struct tval *v = &vt->vals[vid];

	if (v->type != TV_JSON && vt->vcap > 0) {
		uint32_t mask = vt->vcap - 1;

		for (uint32_t i = v->hash & mask; vt->vslots[i]; i = (i + 1) & mask)
			if (vt->vslots[i] == vid) {
				vt->vslots[i] = HDEL;
				vt->vn--;
				vt->vtomb++;
				break;
			}
	}
	free(v->str);
	cJSON_Delete(v->json);
	*v = (struct tval){ .type = TV_FREE };
	vt->live--;
	vt->freed[vt->nfreed++] = vid;
}

/* A triple or attr entry of s names vid, or no longer does. */
static void
tv_incref(struct tstore *s, uint32_t vid)
{
	if (vid > VID_UNDEF)
		s->vt->vals[vid].refs++;
}

static void
tv_decref(struct tstore *s, uint32_t vid)
{
	if (vid > VID_UNDEF && --s->vt->vals[vid].refs == 0)
		vt_release(s->vt, vid);
}

/* At the end of an operation: release the values it interned but kept in
 * no triple or attr entry (lookups, steps that were dropped). */
static void
tv_sweep(struct tstore *s)
{
	for (uint32_t i = 0; i < s->nfresh; i++) {
		const struct tval *v = &s->vt->vals[s->fresh[i]];

		if (v->type != TV_FREE && v->refs == 0)
			vt_release(s->vt, s->fresh[i]);
	}
	s->nfresh = 0;
}

int
tstore_values_new(struct tstore_values **ret)
{
	struct tstore_values *vt = calloc(1, sizeof(*vt));
	int r;

	if (vt == NULL)
		return -ENOMEM;
	vt->refs = 1;
	/* vid 0: none; vid 1: undefined */
	if ((r = grow((void **)&vt->vals, &vt->capvals, 2, sizeof(*vt->vals))) < 0 ||
	    (r = grow((void **)&vt->freed, &vt->capfreed, vt->capvals, sizeof(*vt->freed))) < 0) {
		tstore_values_unref(vt);
		return r;
	}
	vt->nvals = 2;
	*ret = vt;
	return 0;
}

void
tstore_values_unref(struct tstore_values *vt)
{
	if (vt == NULL || --vt->refs > 0)
		return;
	for (uint32_t i = 2; i < vt->nvals; i++) {
		free(vt->vals[i].str);
		cJSON_Delete(vt->vals[i].json);
	}
	free(vt->vals);
	free(vt->vslots);
	free(vt->freed);
	free(vt);
}

size_t
tstore_values_count(const struct tstore_values *vt)
{
	return vt->live;
}

static int
tv_intern_scalar(struct tstore *s, uint8_t type, double num, const char *str, uint32_t len, uint32_t *ret)
{
	uint32_t hash = type == TV_NUM ? hash_num(num) : type == TV_STR ? hash_bytes(str, len) : mix3(type, 0, 0);
	uint32_t vid = tv_lookup(s->vt, type, num, str, len, hash);
	struct tval v = { .type = type, .hash = hash, .num = num == 0 ? 0 : num, .len = len };
	int r;

	if (vid != VID_NONE) {
		*ret = vid;
		return 0;
	}
	if (type == TV_STR) {
		v.str = malloc(len + 1);
		if (v.str == NULL)
			return -ENOMEM;
		memcpy(v.str, str, len);
		v.str[len] = 0;
	}
	r = tv_new(s, v, &vid);
	if (r < 0) {
		free(v.str);
		return r;
	}
	r = tv_slots_insert(s, vid);
	if (r < 0)
		return r;
	*ret = vid;
	return 0;
}

static int
tv_intern_str(struct tstore *s, const char *str, uint32_t *ret)
{
	return tv_intern_scalar(s, TV_STR, 0, str, (uint32_t)strlen(str), ret);
}

static int
tv_intern_json(struct tstore *s, const cJSON *j, uint32_t *ret)
{
	if (cJSON_IsNull(j))
		return tv_intern_scalar(s, TV_NULL, 0, NULL, 0, ret);
	if (cJSON_IsFalse(j))
		return tv_intern_scalar(s, TV_FALSE, 0, NULL, 0, ret);
	if (cJSON_IsTrue(j))
		return tv_intern_scalar(s, TV_TRUE, 0, NULL, 0, ret);
	if (cJSON_IsNumber(j))
		return tv_intern_scalar(s, TV_NUM, j->valuedouble, NULL, 0, ret);
	if (cJSON_IsString(j))
		return tv_intern_scalar(s, TV_STR, 0, j->valuestring, (uint32_t)strlen(j->valuestring), ret);
	if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
		struct tval v = { .type = TV_JSON, .json = cJSON_Duplicate(j, 1) };
		int r;

		if (v.json == NULL)
			return -ENOMEM;
		r = tv_new(s, v, ret);
		if (r < 0)
			cJSON_Delete(v.json);
		return r;
	}
	if (cJSON_IsRaw(j)) {
		/* json_new_int64's big numbers */
		double d = strtod(j->valuestring, NULL);

		return tv_intern_scalar(s, TV_NUM, d, NULL, 0, ret);
	}
	*ret = VID_UNDEF;
	return 0;
}

/* Takes ownership of j (an object or array) as a new identity value. */
static int
tv_adopt_json(struct tstore *s, cJSON *j, uint32_t *ret)
{
	struct tval v = { .type = TV_JSON, .json = j };

	if (!cJSON_IsObject(j) && !cJSON_IsArray(j)) {
		int r = tv_intern_json(s, j, ret);

		cJSON_Delete(j);
		return r;
	}
	return tv_new(s, v, ret);
}

static uint32_t
vt_find_str(const struct tstore_values *vt, const char *str)
{
	uint32_t len = (uint32_t)strlen(str);

	return tv_lookup(vt, TV_STR, 0, str, len, hash_bytes(str, len));
}

static uint32_t
vt_find_num(const struct tstore_values *vt, double d)
{
	return tv_lookup(vt, TV_NUM, d, NULL, 0, hash_num(d));
}

static uint32_t
vt_find_json(const struct tstore_values *vt, const cJSON *j)
{
	if (cJSON_IsNull(j))
		return tv_lookup(vt, TV_NULL, 0, NULL, 0, mix3(TV_NULL, 0, 0));
	if (cJSON_IsFalse(j))
		return tv_lookup(vt, TV_FALSE, 0, NULL, 0, mix3(TV_FALSE, 0, 0));
	if (cJSON_IsTrue(j))
		return tv_lookup(vt, TV_TRUE, 0, NULL, 0, mix3(TV_TRUE, 0, 0));
	if (cJSON_IsNumber(j))
		return vt_find_num(vt, j->valuedouble);
	if (cJSON_IsString(j))
		return vt_find_str(vt, j->valuestring);
	return VID_NONE;
}

uint32_t
tstore_tv_find_json(const struct tstore *s, const cJSON *j)
{
	return vt_find_json(s->vt, j);
}

uint32_t
tstore_tv_find_str(const struct tstore *s, const char *str)
{
	return vt_find_str(s->vt, str);
}

uint32_t
tstore_tv_find_num(const struct tstore *s, double d)
{
	return vt_find_num(s->vt, d);
}

bool
tstore_values_has(const struct tstore_values *vt, const cJSON *value)
{
	return vt_find_json(vt, value) != VID_NONE;
}

const struct tstore_values *
tstore_values_of(const struct tstore *s)
{
	return s->vt;
}

cJSON *
tstore_tv_to_json(const struct tstore *s, uint32_t vid)
{
	const struct tval *v = &s->vt->vals[vid];

	switch (v->type) {
	case TV_NULL:
	case TV_UNDEF:
		return cJSON_CreateNull();
	case TV_FALSE:
		return cJSON_CreateFalse();
	case TV_TRUE:
		return cJSON_CreateTrue();
	case TV_NUM:
		if (v->num == floor(v->num) && fabs(v->num) <= (double)JSON_INT_PARSE_MAX)
			return json_new_int64((int64_t)v->num);
		return cJSON_CreateNumber(v->num);
	case TV_STR:
		return cJSON_CreateString(v->str);
	default:
		return cJSON_Duplicate(v->json, 1);
	}
}

/* ---- attrs ---- */

static enum tattr_ctype
ctype_of(const cJSON *attr)
{
	const char *c = json_get_string(attr, "checked-data-type");

	if (c == NULL)
		return CT_NONE;
	if (strcmp(c, "string") == 0)
		return CT_STRING;
	if (strcmp(c, "number") == 0)
		return CT_NUMBER;
	if (strcmp(c, "boolean") == 0)
		return CT_BOOLEAN;
	if (strcmp(c, "date") == 0)
		return CT_DATE;
	return CT_OTHER;
}

static bool
str_field_is(const cJSON *o, const char *key, const char *want)
{
	const char *s = json_get_string(o, key);

	return s && strcmp(s, want) == 0;
}

static int
intern_opt(struct tstore *s, const char *str, uint32_t *ret)
{
	if (str == NULL) {
		*ret = VID_NONE;
		return 0;
	}
	return tv_intern_str(s, str, ret);
}

/* ---- the attr objects (shared between dups until one changes them) ---- */

static struct tattrs_json *
aj_new(void)
{
	struct tattrs_json *a = calloc(1, sizeof(*a));

	if (a)
		a->refs = 1;
	return a;
}

static void
aj_unref(struct tattrs_json *a)
{
	if (a == NULL || --a->refs > 0)
		return;
	for (uint32_t i = 0; i < a->n; i++)
		cJSON_Delete(a->v[i]);
	free(a->v);
	free(a);
}

/* Append an owned attr object. */
static int
aj_push(struct tattrs_json *a, cJSON *attr)
{
	if (attr == NULL)
		return -ENOMEM;
	if (a->n == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 32;
		cJSON **nv = realloc(a->v, cap * sizeof(*nv));

		if (nv == NULL) {
			cJSON_Delete(attr);
			return -ENOMEM;
		}
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = attr;
	return 0;
}

/* Make s's attr objects its own before changing them. */
static int
aj_private(struct tstore *s)
{
	struct tattrs_json *c;
	int r;

	attrs_free(s->attrs_cache);
	s->attrs_cache = NULL;
	if (s->aj->refs == 1)
		return 0;
	c = aj_new();
	if (c == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->aj->n; i++)
		if ((r = aj_push(c, cJSON_Duplicate(s->aj->v[i], 1))) < 0) {
			aj_unref(c);
			return r;
		}
	aj_unref(s->aj);
	s->aj = c;
	return 0;
}

/* Index in s->aj of the attr with this id, or -1. */
static ssize_t
aj_index(const struct tstore *s, const char *id)
{
	uint32_t i = id ? tstore_hmap_get(&s->at_by_id, tstore_tv_find_str(s, id), 0, 0) : 0;

	return i ? (ssize_t)i - 1 : -1;
}

/* Free attr entries, letting go of the values they name. */
static void
at_release(struct tstore *s, struct tattr *at, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		tv_decref(s, at[i].id);
		tv_decref(s, at[i].fwd_etype);
		tv_decref(s, at[i].fwd_label);
		tv_decref(s, at[i].rev_etype);
		tv_decref(s, at[i].rev_label);
	}
	free(at);
}

/* Rebuild the derived attr tables from s->aj (the JS AttrsStore's lazy
 * indexes: later attrs win on equal identities). */
static int
tstore_index_attrs(struct tstore *s)
{
	struct tattr *old_at = s->at;	/* released once the new entries hold their values */
	uint32_t old_nat = s->nat;
	size_t n = s->aj->n;
	int r = 0;

	s->at = NULL;
	s->nat = 0;
	tstore_hmap_clear(&s->at_by_id);
	tstore_hmap_clear(&s->at_fwd);
	tstore_hmap_clear(&s->at_rev);
	tstore_hmap_clear(&s->at_blob);
	tstore_hmap_clear(&s->at_pk);
	tstore_hmap_clear(&s->blob_list);	/* the vecs it names leak into the pool; small */
	if (n > 0 && (s->at = calloc(n, sizeof(*s->at))) == NULL)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const cJSON *j = s->aj->v[i];
		struct tattr *t = &s->at[s->nat];
		uint32_t idx;

		t->json = j;
		if ((r = tv_intern_str(s, attr_id(j), &t->id)) < 0 ||
		    (r = intern_opt(s, attr_fwd_etype(j), &t->fwd_etype)) < 0 ||
		    (r = intern_opt(s, attr_fwd_label(j), &t->fwd_label)) < 0 ||
		    (r = intern_opt(s, attr_rev_etype(j), &t->rev_etype)) < 0 ||
		    (r = intern_opt(s, attr_rev_label(j), &t->rev_label)) < 0)
			break;
		tv_incref(s, t->id);
		tv_incref(s, t->fwd_etype);
		tv_incref(s, t->fwd_label);
		tv_incref(s, t->rev_etype);
		tv_incref(s, t->rev_label);
		t->ref = str_field_is(j, "value-type", "ref");
		t->blob = str_field_is(j, "value-type", "blob");
		t->card_one = str_field_is(j, "cardinality", "one");
		t->primary = cJSON_IsTrue(json_get(j, "primary?"));
		t->del_cascade = str_field_is(j, "on-delete", "cascade");
		t->del_rev_cascade = str_field_is(j, "on-delete-reverse", "cascade");
		t->ctype = ctype_of(j);
		idx = ++s->nat;
		if ((r = tstore_hmap_put(&s->at_by_id, t->id, 0, 0, idx)) < 0)
			break;
		if (t->fwd_etype && t->fwd_label) {
			if ((r = tstore_hmap_put(&s->at_fwd, t->fwd_etype, t->fwd_label, 0, idx)) < 0)
				break;
			if (t->blob) {
				uint32_t prev = tstore_hmap_get(&s->at_blob, t->fwd_etype, t->fwd_label, 0);

				if ((r = tstore_hmap_put(&s->at_blob, t->fwd_etype, t->fwd_label, 0, idx)) < 0)
					break;
				if (prev == 0) {
					/* a new label: append it to the etype's list */
					uint32_t vi = tstore_hmap_get(&s->blob_list, t->fwd_etype, 0, 0);

					if (vi == 0) {
						r = grow((void **)&s->vecs, &s->capvecs, s->nvecs + 1, sizeof(*s->vecs));
						if (r < 0)
							break;
						vi = s->nvecs++;
						s->vecs[vi] = (struct u32vec){0};
						if ((r = tstore_hmap_put(&s->blob_list, t->fwd_etype, 0, 0, vi)) < 0)
							break;
					}
					if ((r = vec_push(s, &s->vecs[vi], t->fwd_label)) < 0)
						break;
				}
			}
			if (t->primary && (r = tstore_hmap_put(&s->at_pk, t->fwd_etype, 0, 0, idx)) < 0)
				break;
		}
		if (t->rev_etype && t->rev_label &&
		    (r = tstore_hmap_put(&s->at_rev, t->rev_etype, t->rev_label, 0, idx)) < 0)
			break;
	}
	at_release(s, old_at, old_nat);
	return r;
}

const struct tattr *
tstore_attr(const struct tstore *s, uint32_t attr_vid)
{
	uint32_t i = attr_vid ? tstore_hmap_get(&s->at_by_id, attr_vid, 0, 0) : 0;

	return i ? &s->at[i - 1] : NULL;
}

const struct tattr *
tstore_attr_fwd(const struct tstore *s, uint32_t etype, uint32_t label)
{
	uint32_t i = etype && label ? tstore_hmap_get(&s->at_fwd, etype, label, 0) : 0;

	return i ? &s->at[i - 1] : NULL;
}

const struct tattr *
tstore_attr_rev(const struct tstore *s, uint32_t etype, uint32_t label)
{
	uint32_t i = etype && label ? tstore_hmap_get(&s->at_rev, etype, label, 0) : 0;

	return i ? &s->at[i - 1] : NULL;
}

const struct tattr *
tstore_attr_pk(const struct tstore *s, uint32_t etype)
{
	uint32_t i = etype ? tstore_hmap_get(&s->at_pk, etype, 0, 0) : 0;
	uint32_t id;

	if (i)
		return &s->at[i - 1];
	id = tstore_tv_find_str(s, "id");
	return tstore_attr_fwd(s, etype, id);
}

const struct u32vec *
tstore_blob_attrs(const struct tstore *s, uint32_t etype)
{
	uint32_t vi = etype ? tstore_hmap_get(&s->blob_list, etype, 0, 0) : 0;

	return vi ? &s->vecs[vi] : NULL;
}

/* ---- index access ---- */

const struct cell *
tstore_cell(const struct tstore *s, uint32_t e, uint32_t a)
{
	uint32_t c = tstore_hmap_get(&s->cell_by_ea, e, a, 0);

	return c ? &s->cells[c] : NULL;
}

const struct triple *
tstore_triple(const struct tstore *s, uint32_t e, uint32_t a, uint32_t v)
{
	uint32_t t = tstore_hmap_get(&s->tr_by_eav, e, a, v);

	return t ? &s->tr[t] : NULL;
}

static struct u32vec *
vec_at(const struct hmap *m, const struct tstore *s, uint32_t k1, uint32_t k2)
{
	uint32_t vi = tstore_hmap_get(m, k1, k2, 0);

	return vi ? &s->vecs[vi] : NULL;
}

const struct u32vec *
tstore_aev(const struct tstore *s, uint32_t a)
{
	return vec_at(&s->aev, s, a, 0);
}

const struct u32vec *
tstore_ave(const struct tstore *s, uint32_t a, uint32_t v)
{
	return vec_at(&s->ave, s, a, v);
}

const struct u32vec *
tstore_vae(const struct tstore *s, uint32_t v)
{
	return vec_at(&s->vae, s, v, 0);
}

static int
vec_get_or_new(struct tstore *s, struct hmap *m, uint32_t k1, uint32_t k2, struct u32vec **ret)
{
	uint32_t vi = tstore_hmap_get(m, k1, k2, 0);
	int r;

	if (vi == 0) {
		r = grow((void **)&s->vecs, &s->capvecs, s->nvecs + 1, sizeof(*s->vecs));
		if (r < 0)
			return r;
		vi = s->nvecs++;
		s->vecs[vi] = (struct u32vec){0};
		r = tstore_hmap_put(m, k1, k2, 0, vi);
		if (r < 0)
			return r;
	}
	*ret = &s->vecs[vi];
	return 0;
}

/* ---- lifecycle ---- */

static int
tstore_init_arrays(struct tstore *s)
{
	int r;

	/* index 0 of every array is a sentinel so 0 can mean "none" */
	if ((r = grow((void **)&s->tr, &s->captr, 1, sizeof(*s->tr))) < 0 ||
	    (r = grow((void **)&s->cells, &s->capcells, 1, sizeof(*s->cells))) < 0 ||
	    (r = grow((void **)&s->ents, &s->capents, 1, sizeof(*s->ents))) < 0 ||
	    (r = grow((void **)&s->vecs, &s->capvecs, 1, sizeof(*s->vecs))) < 0)
		return r;
	s->ntr = s->ncells = s->nents = s->nvecs = 1;
	return 0;
}

int
tstore_new_shared(struct tstore_values *vt, const struct attrs *attrs, struct tstore **ret)
{
	struct tstore *s = calloc(1, sizeof(*s));
	int r;

	if (s == NULL)
		return -ENOMEM;
	if (vt) {
		vt->refs++;
		s->vt = vt;
	} else if ((r = tstore_values_new(&s->vt)) < 0)
		goto fail;
	r = -ENOMEM;
	s->aj = aj_new();
	if (s->aj == NULL)
		goto fail;
	for (size_t i = 0; attrs && i < attrs_count(attrs); i++) {
		const cJSON *a = attrs_at(attrs, i);

		if (attr_id(a) && (r = aj_push(s->aj, cJSON_Duplicate(a, 1))) < 0)
			goto fail;
	}
	if ((r = tstore_init_arrays(s)) < 0 ||
	    (r = tstore_index_attrs(s)) < 0)
		goto fail;
	tv_sweep(s);
	*ret = s;
	return 0;
fail:
	tstore_free(s);
	return r;
}

int
tstore_new_like(const struct tstore *s, struct tstore **ret)
{
	struct tstore *d = calloc(1, sizeof(*d));
	int r;

	if (d == NULL)
		return -ENOMEM;
	d->aj = s->aj;	/* copy-on-write: a store changing its attrs copies them first */
	d->aj->refs++;
	d->vt = s->vt;
	d->vt->refs++;
	if ((r = tstore_init_arrays(d)) < 0 ||
	    (r = tstore_index_attrs(d)) < 0) {
		tstore_free(d);
		return r;
	}
	tv_sweep(d);
	*ret = d;
	return 0;
}

int
tstore_new(const struct attrs *attrs, struct tstore **ret)
{
	return tstore_new_shared(NULL, attrs, ret);
}

static void
tstore_free_data(struct tstore *s)
{
	for (uint32_t i = 1; i < s->ntr; i++) {
		tv_decref(s, s->tr[i].e);
		tv_decref(s, s->tr[i].a);
		tv_decref(s, s->tr[i].v);
		tv_decref(s, s->tr[i].t);
	}
	for (uint32_t i = 1; i < s->ncells; i++)
		vec_free(&s->cells[i].tr);
	for (uint32_t i = 1; i < s->nents; i++)
		vec_free(&s->ents[i].cells);
	for (uint32_t i = 1; i < s->nvecs; i++)
		vec_free(&s->vecs[i]);
	slab_free(s->slab);
	s->slab = NULL;
	free(s->tr);
	free(s->cells);
	free(s->ents);
	free(s->vecs);
	s->tr = NULL;
	s->cells = NULL;
	s->ents = NULL;
	s->vecs = NULL;
	s->ntr = s->captr = s->ncells = s->capcells = s->nents = s->capents = 0;
	s->nvecs = s->capvecs = 0;
	s->nlive = 0;
	tstore_hmap_clear(&s->ent_by_e);
	tstore_hmap_clear(&s->cell_by_ea);
	tstore_hmap_clear(&s->tr_by_eav);
	tstore_hmap_clear(&s->aev);
	tstore_hmap_clear(&s->ave);
	tstore_hmap_clear(&s->vae);
	tstore_hmap_clear(&s->blob_list);
}

void
tstore_free(struct tstore *s)
{
	if (s == NULL)
		return;
	if (s->vt) {
		tstore_free_data(s);
		at_release(s, s->at, s->nat);
		tv_sweep(s);
	}
	tstore_values_unref(s->vt);
	free(s->fresh);
	tstore_hmap_clear(&s->at_by_id);
	tstore_hmap_clear(&s->at_fwd);
	tstore_hmap_clear(&s->at_rev);
	tstore_hmap_clear(&s->at_blob);
	tstore_hmap_clear(&s->at_pk);
	aj_unref(s->aj);
	attrs_free(s->attrs_cache);
	free(s);
}

int
tstore_dup(const struct tstore *s, struct tstore **ret)
{
	struct tstore *d = calloc(1, sizeof(*d));
	int r = -ENOMEM;

	if (d == NULL)
		return -ENOMEM;
	d->aj = s->aj;
	d->aj->refs++;
	d->vt = s->vt;
	d->vt->refs++;
	r = -ENOMEM;
	d->tr = malloc(s->captr * sizeof(*d->tr));
	d->cells = calloc(s->capcells, sizeof(*d->cells));
	d->ents = calloc(s->capents, sizeof(*d->ents));
	d->vecs = calloc(s->capvecs, sizeof(*d->vecs));
	if (!d->tr || !d->cells || !d->ents || !d->vecs)
		goto fail;
	memcpy(d->tr, s->tr, s->ntr * sizeof(*d->tr));
	d->ntr = s->ntr;
	for (uint32_t i = 1; i < d->ntr; i++) {
		tv_incref(d, d->tr[i].e);
		tv_incref(d, d->tr[i].a);
		tv_incref(d, d->tr[i].v);
		tv_incref(d, d->tr[i].t);
	}
	d->captr = s->captr;
	d->capcells = s->capcells;
	d->capents = s->capents;
	d->capvecs = s->capvecs;
	d->nlive = s->nlive;
	d->stepped = s->stepped;
	{
		/* all vector storage of the copy in one block */
		size_t total = 0;
		uint32_t *p;

		for (uint32_t i = 0; i < s->ncells; i++)
			total += s->cells[i].tr.n;
		for (uint32_t i = 0; i < s->nents; i++)
			total += s->ents[i].cells.n;
		for (uint32_t i = 0; i < s->nvecs; i++)
			total += s->vecs[i].n;
		p = slab_alloc(d, (uint32_t)total + 1);
		if (p == NULL)
			goto fail;
		for (uint32_t i = 0; i < s->ncells; i++) {
			d->cells[i] = s->cells[i];
			vec_copy_pooled(&d->cells[i].tr, &s->cells[i].tr, &p);
		}
		d->ncells = s->ncells;
		for (uint32_t i = 0; i < s->nents; i++) {
			d->ents[i] = s->ents[i];
			vec_copy_pooled(&d->ents[i].cells, &s->ents[i].cells, &p);
		}
		d->nents = s->nents;
		for (uint32_t i = 0; i < s->nvecs; i++)
			vec_copy_pooled(&d->vecs[i], &s->vecs[i], &p);
		d->nvecs = s->nvecs;
	}
	if (hmap_copy(&d->ent_by_e, &s->ent_by_e) < 0 ||
	    hmap_copy(&d->cell_by_ea, &s->cell_by_ea) < 0 ||
	    hmap_copy(&d->tr_by_eav, &s->tr_by_eav) < 0 ||
	    hmap_copy(&d->aev, &s->aev) < 0 ||
	    hmap_copy(&d->ave, &s->ave) < 0 ||
	    hmap_copy(&d->vae, &s->vae) < 0)
		goto fail;
	/* the derived attr tables point into the shared attr objects */
	if (s->nat) {
		d->at = malloc(s->nat * sizeof(*d->at));
		if (d->at == NULL)
			goto fail;
		memcpy(d->at, s->at, s->nat * sizeof(*d->at));
		d->nat = s->nat;
		for (uint32_t i = 0; i < d->nat; i++) {
			tv_incref(d, d->at[i].id);
			tv_incref(d, d->at[i].fwd_etype);
			tv_incref(d, d->at[i].fwd_label);
			tv_incref(d, d->at[i].rev_etype);
			tv_incref(d, d->at[i].rev_label);
		}
	}
	if (hmap_copy(&d->at_by_id, &s->at_by_id) < 0 ||
	    hmap_copy(&d->at_fwd, &s->at_fwd) < 0 ||
	    hmap_copy(&d->at_rev, &s->at_rev) < 0 ||
	    hmap_copy(&d->at_blob, &s->at_blob) < 0 ||
	    hmap_copy(&d->at_pk, &s->at_pk) < 0 ||
	    hmap_copy(&d->blob_list, &s->blob_list) < 0)
		goto fail;
	*ret = d;
	return 0;
fail:
	tstore_free(d);
	return r;
}

static void
shrink(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	void *p;

	if (n == 0 || n >= *cap)
		return;
	if ((p = realloc(*arr, (size_t)n * elem)) != NULL) {
		*arr = p;
		*cap = n;
	}
}

/* To the smallest table below the load that makes it grow. */
static void
hmap_shrink(struct hmap *m)
{
	uint32_t cap = 16;

	while ((m->n + 1) * 4 >= cap * 3)
		cap *= 2;
	if (m->cap > cap)
		(void)hmap_resize(m, cap);	/* out of memory: it stays as it was */
}

static void
vec_compact(struct u32vec *v, uint32_t **pool)
{
	uint32_t *old = v->v;
	bool pooled = v->cap & VEC_POOLED;

	if (v->n == 0)
		v->v = NULL, v->cap = 0;
	else {
		memcpy(*pool, v->v, v->n * sizeof(*v->v));
		v->v = *pool;
		v->cap = v->n | VEC_POOLED;
		*pool += v->n;
	}
	if (!pooled)
		free(old);
}

void
tstore_trim(struct tstore *s)
{
	struct slab *b;
	size_t total = 0;

	shrink((void **)&s->tr, &s->captr, s->ntr, sizeof(*s->tr));
	shrink((void **)&s->cells, &s->capcells, s->ncells, sizeof(*s->cells));
	shrink((void **)&s->ents, &s->capents, s->nents, sizeof(*s->ents));
	shrink((void **)&s->vecs, &s->capvecs, s->nvecs, sizeof(*s->vecs));
	hmap_shrink(&s->ent_by_e);
	hmap_shrink(&s->cell_by_ea);
	hmap_shrink(&s->tr_by_eav);
	hmap_shrink(&s->aev);
	hmap_shrink(&s->ave);
	hmap_shrink(&s->vae);
	free(s->fresh);
	s->fresh = NULL;
	s->capfresh = s->nfresh = 0;
	/* Vectors grew by doubling inside the slab, leaving their old storage
	 * behind: move them, exactly sized, into one block. */
	for (uint32_t i = 1; i < s->ncells; i++)
		total += s->cells[i].tr.n;
	for (uint32_t i = 1; i < s->nents; i++)
		total += s->ents[i].cells.n;
	for (uint32_t i = 1; i < s->nvecs; i++)
		total += s->vecs[i].n;
	if (total == 0 || (b = malloc(sizeof(*b) + total * sizeof(uint32_t))) == NULL)
		return;
	b->next = NULL;
	b->size = b->used = total;
	{
		uint32_t *p = b->data;

		for (uint32_t i = 1; i < s->ncells; i++)
			vec_compact(&s->cells[i].tr, &p);
		for (uint32_t i = 1; i < s->nents; i++)
			vec_compact(&s->ents[i].cells, &p);
		for (uint32_t i = 1; i < s->nvecs; i++)
			vec_compact(&s->vecs[i], &p);
	}
	slab_free(s->slab);
	s->slab = b;
}

const struct attrs *
tstore_attrs(const struct tstore *cs)
{
	/* a cache: building it changes no observable state */
	struct tstore *s = (struct tstore *)cs;
	struct attrs *a;

	if (s->attrs_cache)
		return s->attrs_cache;
	a = attrs_new();
	if (a == NULL)
		return NULL;
	for (uint32_t i = 0; i < s->aj->n; i++)
		if (attrs_add(a, s->aj->v[i]) < 0) {
			attrs_free(a);
			return NULL;
		}
	s->attrs_cache = a;
	return a;
}

size_t
tstore_count(const struct tstore *s)
{
	return s->nlive;
}

/* ---- triple insertion and removal ---- */

static int
ent_get_or_new(struct tstore *s, uint32_t e, uint32_t *ret)
{
	uint32_t i = tstore_hmap_get(&s->ent_by_e, e, 0, 0);
	int r;

	if (i) {
		*ret = i;
		return 0;
	}
	if ((r = grow((void **)&s->ents, &s->capents, s->nents + 1, sizeof(*s->ents))) < 0)
		return r;
	i = s->nents++;
	s->ents[i] = (struct ent){ .e = e, .live = true };
	if ((r = tstore_hmap_put(&s->ent_by_e, e, 0, 0, i)) < 0)
		return r;
	*ret = i;
	return 0;
}

static int
cell_get_or_new(struct tstore *s, uint32_t e, uint32_t a, uint32_t *ret)
{
	uint32_t c = tstore_hmap_get(&s->cell_by_ea, e, a, 0);
	uint32_t ei;
	struct u32vec *aev;
	int r;

	if (c) {
		*ret = c;
		return 0;
	}
	if ((r = ent_get_or_new(s, e, &ei)) < 0)
		return r;
	if ((r = vec_get_or_new(s, &s->aev, a, 0, &aev)) < 0)
		return r;
	if ((r = grow((void **)&s->cells, &s->capcells, s->ncells + 1, sizeof(*s->cells))) < 0)
		return r;
	c = s->ncells++;
	s->cells[c] = (struct cell){ .e = e, .a = a, .ent = ei, .aseq = aev->n, .live = true };
	if ((r = vec_push(s, aev, c)) < 0 ||
	    (r = vec_push(s, &s->ents[ei].cells, c)) < 0 ||
	    (r = tstore_hmap_put(&s->cell_by_ea, e, a, 0, c)) < 0)
		return r;
	*ret = c;
	return 0;
}

/* Take a live triple out of every index except its cell's list. */
static void
triple_unindex(struct tstore *s, uint32_t ti)
{
	struct triple *t = &s->tr[ti];
	const struct tattr *at = tstore_attr(s, t->a);
	struct u32vec *v;

	if (!t->live)
		return;
	t->live = false;
	s->nlive--;
	if (tstore_hmap_get(&s->tr_by_eav, t->e, t->a, t->v) == ti)
		tstore_hmap_del(&s->tr_by_eav, t->e, t->a, t->v);
	if ((v = vec_at(&s->ave, s, t->a, t->v)) != NULL)
		vec_remove(v, ti);
	if ((at == NULL || at->ref) && (v = vec_at(&s->vae, s, t->v, 0)) != NULL)
		vec_remove(v, ti);
}

static void
triple_remove(struct tstore *s, uint32_t ti)
{
	struct triple *t = &s->tr[ti];

	if (!t->live)
		return;
	vec_remove(&s->cells[t->cell].tr, ti);
	triple_unindex(s, ti);
}

/* Kill a whole cell: eav[e][a] and aev[a][e] are deleted. */
static void
cell_kill(struct tstore *s, uint32_t c)
{
	struct cell *cl = &s->cells[c];

	if (!cl->live)
		return;
	for (uint32_t i = 0; i < cl->tr.n; i++)
		triple_unindex(s, cl->tr.v[i]);
	cl->tr.n = 0;
	cl->live = false;
	tstore_hmap_del(&s->cell_by_ea, cl->e, cl->a, 0);
}

static bool
ent_empty(const struct tstore *s, const struct ent *en)
{
	for (uint32_t i = 0; i < en->cells.n; i++)
		if (s->cells[en->cells.v[i]].live)
			return false;
	return true;
}

static void
ent_kill(struct tstore *s, uint32_t ei)
{
	struct ent *en = &s->ents[ei];

	en->live = false;
	tstore_hmap_del(&s->ent_by_e, en->e, 0, 0);
}

static int
triple_new(struct tstore *s, uint32_t e, uint32_t a, uint32_t v, uint32_t t, uint32_t c, uint32_t *ret)
{
	int r = grow((void **)&s->tr, &s->captr, s->ntr + 1, sizeof(*s->tr));
	uint32_t ti;

	if (r < 0)
		return r;
	ti = s->ntr++;
	s->tr[ti] = (struct triple){ .e = e, .a = a, .v = v, .t = t, .cell = c, .live = true };
	tv_incref(s, e);
	tv_incref(s, a);
	tv_incref(s, v);
	tv_incref(s, t);
	s->nlive++;
	*ret = ti;
	return 0;
}

static int
triple_index(struct tstore *s, uint32_t ti, bool ref)
{
	struct triple *t = &s->tr[ti];
	struct u32vec *v;
	int r;

	if ((r = tstore_hmap_put(&s->tr_by_eav, t->e, t->a, t->v, ti)) < 0)
		return r;
	if ((r = vec_get_or_new(s, &s->ave, t->a, t->v, &v)) < 0 ||
	    (r = vec_push(s, v, ti)) < 0)
		return r;
	if (ref) {
		if ((r = vec_get_or_new(s, &s->vae, t->v, 0, &v)) < 0 ||
		    (r = vec_push(s, v, ti)) < 0)
			return r;
	}
	return 0;
}

/* setInMap(eav, [e, a, v], triple) and friends: a repeated (e, a, v) is
 * replaced where it stands; a new one is appended. */
static int
tstore_set(struct tstore *s, uint32_t e, uint32_t a, uint32_t v, uint32_t t, bool ref)
{
	uint32_t old = tstore_hmap_get(&s->tr_by_eav, e, a, v);
	uint32_t c, ti;
	int r;

	if ((r = cell_get_or_new(s, e, a, &c)) < 0)
		return r;
	if ((r = triple_new(s, e, a, v, t, c, &ti)) < 0)
		return r;
	if (old) {
		struct u32vec *av = vec_at(&s->ave, s, a, v);
		struct u32vec *vv = vec_at(&s->vae, s, v, 0);

		vec_replace(&s->cells[c].tr, old, ti);
		if (av)
			vec_replace(av, old, ti);
		s->tr[old].live = false;
		s->nlive--;
		if ((r = tstore_hmap_put(&s->tr_by_eav, e, a, v, ti)) < 0)
			return r;
		if (ref) {
			if (vv && s->tr[old].a == a) {
				bool found = false;

				for (uint32_t i = 0; i < vv->n; i++)
					if (vv->v[i] == old) {
						vv->v[i] = ti;
						found = true;
					}
				if (!found && (r = vec_push(s, vv, ti)) < 0)
					return r;
			} else if ((r = vec_get_or_new(s, &s->vae, v, 0, &vv)) < 0 ||
			    (r = vec_push(s, vv, ti)) < 0)
				return r;
		}
		return 0;
	}
	if ((r = vec_push(s, &s->cells[c].tr, ti)) < 0)
		return r;
	return triple_index(s, ti, ref);
}

/* Server triples come grouped by entity: remember the last entity, time
 * and a few attrs rather than hashing them again for every triple. */
struct add_cache {
	const char *e_str;
	uint32_t e_vid;
	double t_num;
	uint32_t t_vid;
	struct {
		char id[40];
		const struct tattr *at;
	} attrs[8];
	unsigned next;
};

static const struct tattr *
cached_attr(struct tstore *s, struct add_cache *c, const char *id)
{
	const struct tattr *at;
	size_t len = strlen(id);

	for (unsigned i = 0; i < ELEMENTSOF(c->attrs); i++)
		if (c->attrs[i].at && strcmp(c->attrs[i].id, id) == 0)
			return c->attrs[i].at;
	at = tstore_attr(s, tstore_tv_find_str(s, id));
	if (at && len < sizeof(c->attrs[0].id)) {
		unsigned k = c->next++ % ELEMENTSOF(c->attrs);

		memcpy(c->attrs[k].id, id, len + 1);
		c->attrs[k].at = at;
	}
	return at;
}

/* A triple of an attr the store does not know is skipped, as createStore
 * does, but kept in the log (dead, in no cell) so a store built from this
 * one's log with more attrs has it. */
static int
add_dormant(struct tstore *s, const cJSON *e, const cJSON *a, const cJSON *v, const cJSON *t)
{
	uint32_t ev, av, vv = VID_UNDEF, tv = VID_UNDEF, ti;
	int r;

	if ((r = tv_intern_json(s, e, &ev)) < 0 ||
	    (r = tv_intern_str(s, a->valuestring, &av)) < 0 ||
	    (v && (r = tv_intern_json(s, v, &vv)) < 0) ||
	    (t && (r = tv_intern_json(s, t, &tv)) < 0) ||
	    (r = triple_new(s, ev, av, vv, tv, 0, &ti)) < 0)
		return r;
	s->tr[ti].live = false;
	s->nlive--;
	return 0;
}

static int
tstore_add_one(struct tstore *s, const cJSON *tj, struct add_cache *c)
{
	const cJSON *e, *a, *v = NULL, *t = NULL;
	const struct tattr *at;
	uint32_t ev, vv, tv;
	int r;

	if (!cJSON_IsArray(tj) || (e = tj->child) == NULL || (a = e->next) == NULL || !cJSON_IsString(a))
		return 0;
	if ((v = a->next) != NULL)
		t = v->next;
	at = cached_attr(s, c, a->valuestring);
	if (at == NULL)
		return add_dormant(s, e, a, v, t);
	if (cJSON_IsString(e) && c->e_str && strcmp(c->e_str, e->valuestring) == 0)
		ev = c->e_vid;
	else {
		if ((r = tv_intern_json(s, e, &ev)) < 0)
			return r;
		if (cJSON_IsString(e)) {
			c->e_str = e->valuestring;
			c->e_vid = ev;
		}
	}
	if (t && cJSON_IsNumber(t) && c->t_vid && t->valuedouble == c->t_num)
		tv = c->t_vid;
	else {
		if ((r = t ? tv_intern_json(s, t, &tv) : (tv = VID_UNDEF, 0)) < 0)
			return r;
		if (t && cJSON_IsNumber(t)) {
			c->t_num = t->valuedouble;
			c->t_vid = tv;
		}
	}
	if ((r = v ? tv_intern_json(s, v, &vv) : (vv = VID_UNDEF, 0)) < 0)
		return r;
	return tstore_set(s, ev, at->id, vv, tv, at->ref);
}

int
tstore_add_triples(struct tstore *s, const cJSON *triples)
{
	const cJSON *t;
	int r;

	if (!cJSON_IsArray(triples))
		return -EINVAL;
	{
		uint32_t n = (uint32_t)cJSON_GetArraySize(triples);

		/* sized once rather than doubled along the way */
		if ((r = hmap_reserve(&s->tr_by_eav, n)) < 0 ||
		    (r = hmap_reserve(&s->cell_by_ea, n)) < 0 ||
		    (r = hmap_reserve(&s->ave, n)) < 0 ||
		    (r = grow((void **)&s->tr, &s->captr, s->ntr + n, sizeof(*s->tr))) < 0 ||
		    (r = grow((void **)&s->cells, &s->capcells, s->ncells + n, sizeof(*s->cells))) < 0)
			return r;
	}
	{
		struct add_cache c = {0};

		cJSON_ArrayForEach(t, triples)
			if ((r = tstore_add_one(s, t, &c)) < 0)
				break;
	}
	tv_sweep(s);
	return r;
}

/* vid of src as a value of dst (from another table, a new identity for an
 * object or array). */
static int
tv_import(struct tstore *dst, const struct tstore *src, uint32_t vid, uint32_t *ret)
{
	const struct tval *v = &src->vt->vals[vid];

	if (vid <= VID_UNDEF || dst->vt == src->vt) {	/* one table: the same value */
		*ret = vid;
		return 0;
	}
	if (v->type == TV_JSON) {
		cJSON *j = cJSON_Duplicate(v->json, 1);

		if (j == NULL)
			return -ENOMEM;
		return tv_adopt_json(dst, j, ret);
	}
	return tv_intern_scalar(dst, v->type, v->num, v->str, v->len, ret);
}

int
tstore_add_store(struct tstore *dst, const struct tstore *src)
{
	int r;

	if (src->stepped)
		return -EINVAL;
	if ((r = hmap_reserve(&dst->tr_by_eav, src->ntr)) < 0 ||
	    (r = hmap_reserve(&dst->cell_by_ea, src->ncells)) < 0 ||
	    (r = hmap_reserve(&dst->ave, src->ntr)) < 0 ||
	    (r = grow((void **)&dst->tr, &dst->captr, dst->ntr + src->ntr, sizeof(*dst->tr))) < 0 ||
	    (r = grow((void **)&dst->cells, &dst->capcells, dst->ncells + src->ncells,
	    sizeof(*dst->cells))) < 0)
		return r;
	for (uint32_t i = 1; i < src->ntr; i++) {
		const struct triple *t = &src->tr[i];
		const struct tattr *at;
		uint32_t e, a, v, tv, ti;

		if ((r = tv_import(dst, src, t->e, &e)) < 0 ||
		    (r = tv_import(dst, src, t->a, &a)) < 0 ||
		    (r = tv_import(dst, src, t->v, &v)) < 0 ||
		    (r = tv_import(dst, src, t->t, &tv)) < 0)
			break;
		if ((at = tstore_attr(dst, a)) != NULL)
			r = tstore_set(dst, e, a, v, tv, at->ref);
		else if ((r = triple_new(dst, e, a, v, tv, 0, &ti)) == 0) {
			dst->tr[ti].live = false;
			dst->nlive--;
		}
		if (r < 0)
			break;
	}
	tv_sweep(dst);
	return r;
}

int
tstore_added_triples(const struct tstore *s, cJSON **ret)
{
	_cleanup_json_ cJSON *arr = NULL;

	if (s->stepped)
		return -EINVAL;
	if ((arr = cJSON_CreateArray()) == NULL)
		return -ENOMEM;
	for (uint32_t i = 1; i < s->ntr; i++) {
		const struct triple *t = &s->tr[i];
		uint32_t parts[4] = { t->e, t->a, t->v, t->t };
		/* [e, a] had neither v nor t; a missing t is left out */
		unsigned n = t->v == VID_UNDEF ? 2 : t->t == VID_UNDEF ? 3 : 4;
		cJSON *row = cJSON_CreateArray();

		if (row == NULL || !cJSON_AddItemToArray(arr, row)) {
			cJSON_Delete(row);
			return -ENOMEM;
		}
		for (unsigned k = 0; k < n; k++) {
			cJSON *x = tstore_tv_to_json(s, parts[k]);

			if (x == NULL || !cJSON_AddItemToArray(row, x)) {
				cJSON_Delete(x);
				return -ENOMEM;
			}
		}
	}
	*ret = TAKE_PTR(arr);
	return 0;
}

/* extractTriples: call row() on every join-row of a wire result tree,
 * depth first. The one walker of result trees, so a store built from the
 * tree and one built from its extracted triples are the same. Missing or
 * null nodes (a result, child-nodes or join-rows) are none. */
static int
walk_result(const cJSON *nodes, int depth, int (*row)(const cJSON *row, void *ud), void *ud)
{
	const cJSON *node;
	int r;

	if (nodes == NULL || cJSON_IsNull(nodes))
		return 0;
	if (!cJSON_IsArray(nodes) || depth > 64)
		return -EINVAL;
	cJSON_ArrayForEach(node, nodes) {
		const cJSON *dr = json_get(json_get(node, "data"), "datalog-result");
		const cJSON *rows = json_get(dr, "join-rows");
		const cJSON *rw, *kids;

		if (rows != NULL && !cJSON_IsNull(rows)) {
			if (!cJSON_IsArray(rows))
				return -EINVAL;
			cJSON_ArrayForEach(rw, rows) {
				if (!cJSON_IsArray(rw))
					return -EINVAL;
				if ((r = row(rw, ud)) < 0)
					return r;
			}
		}
		kids = json_get(node, "child-nodes");
		if ((r = walk_result(kids, depth + 1, row, ud)) < 0)
			return r;
	}
	return 0;
}

static int
add_row(const cJSON *row, void *ud)
{
	return tstore_add_triples(ud, row);
}

int
tstore_add_result(struct tstore *s, const cJSON *result)
{
	return walk_result(result, 0, add_row, s);
}

static int
copy_row(const cJSON *row, void *ud)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, row) {
		cJSON *c = cJSON_Duplicate(t, 1);

		if (c == NULL || !cJSON_AddItemToArray(ud, c)) {
			cJSON_Delete(c);
			return -ENOMEM;
		}
	}
	return 0;
}

int
tstore_result_triples(const cJSON *result, cJSON **ret)
{
	cJSON *out = cJSON_CreateArray();
	int r;

	if (out == NULL)
		return -ENOMEM;
	if ((r = walk_result(result, 0, copy_row, out)) < 0) {
		cJSON_Delete(out);
		return r;
	}
	*ret = out;
	return 0;
}

/* Rebuild every triple index from the live triples in EAV order, with the
 * current attrs (the JS resetIndexMap after update-attr / delete-attr). */
static int
tstore_reindex(struct tstore *s, uint32_t drop_attr)
{
	struct tstore old = *s;
	uint32_t *order = NULL, n = 0;
	int r;

	order = malloc((size_t)(s->nlive + 1) * sizeof(*order));
	if (order == NULL)
		return -ENOMEM;
	for (uint32_t ei = 1; ei < s->nents; ei++) {
		const struct ent *en = &s->ents[ei];

		if (!en->live)
			continue;
		for (uint32_t i = 0; i < en->cells.n; i++) {
			const struct cell *cl = &s->cells[en->cells.v[i]];

			if (!cl->live)
				continue;
			for (uint32_t j = 0; j < cl->tr.n; j++)
				order[n++] = cl->tr.v[j];
		}
	}
	/* detach the old triple arrays, keep values and attrs */
	s->tr = NULL;
	s->cells = NULL;
	s->ents = NULL;
	s->vecs = NULL;
	s->ntr = s->captr = s->ncells = s->capcells = s->nents = s->capents = 0;
	s->nvecs = s->capvecs = 0;
	s->nlive = 0;
	s->ent_by_e = s->cell_by_ea = s->tr_by_eav = s->aev = s->ave = s->vae = s->blob_list = (struct hmap){0};
	s->slab = NULL;
	r = tstore_init_arrays(s);
	if (r == 0)
		r = tstore_index_attrs(s);
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		const struct triple *t = &old.tr[order[i]];
		const struct tattr *at = tstore_attr(s, t->a);

		if (at == NULL || t->a == drop_attr)
			continue;
		r = tstore_set(s, t->e, t->a, t->v, t->t, at->ref);
	}
	free(order);
	/* free the old arrays (the attr entries went with tstore_index_attrs) */
	old.at = NULL;
	old.nat = 0;
	tstore_free_data(&old);
	return r;
}

/* ---- JS value helpers for steps ---- */

/* JS truthiness of an interned value. */
static bool
tv_truthy(const struct tstore *s, uint32_t vid)
{
	const struct tval *v = &s->vt->vals[vid];

	switch (v->type) {
	case TV_UNDEF:
	case TV_NULL:
	case TV_FALSE:
		return false;
	case TV_NUM:
		return v->num != 0 && !isnan(v->num);
	case TV_STR:
		return v->len > 0;
	default:
		return true;
	}
}

static bool
json_truthy(const cJSON *j)
{
	if (j == NULL || cJSON_IsNull(j) || cJSON_IsFalse(j))
		return false;
	if (cJSON_IsNumber(j))
		return j->valuedouble != 0;
	if (cJSON_IsString(j))
		return j->valuestring[0] != 0;
	return true;
}

/* The first triple (in aev order) of attr a whose value is v: the JS
 * client's linear lookup-ref scan, done through the AVE index. */
static uint32_t
ave_first(const struct tstore *s, uint32_t a, uint32_t v)
{
	const struct u32vec *l = tstore_ave(s, a, v);
	uint32_t best = 0, bestseq = UINT32_MAX;

	if (l == NULL)
		return 0;
	for (uint32_t i = 0; i < l->n; i++) {
		const struct triple *t = &s->tr[l->v[i]];
		uint32_t seq = s->cells[t->cell].aseq;

		if (seq < bestseq) {
			bestseq = seq;
			best = l->v[i];
		}
	}
	return best;
}

/* Resolve a step's e: a plain value or a lookup [attr-id, value].
 * *ret = VID_NONE when it does not resolve (the step is dropped). */
static int
resolve_e(struct tstore *s, const cJSON *e, uint32_t *ret)
{
	if (cJSON_IsArray(e)) {
		const cJSON *la = cJSON_GetArrayItem(e, 0), *lv = cJSON_GetArrayItem(e, 1);
		uint32_t a = cJSON_IsString(la) ? tstore_tv_find_str(s, la->valuestring) : VID_NONE;
		uint32_t v = lv ? tstore_tv_find_json(s, lv) : VID_NONE;
		uint32_t t;

		*ret = VID_NONE;
		if (a == VID_NONE || tstore_aev(s, a) == NULL || v == VID_NONE)
			return 0;
		t = ave_first(s, a, v);
		if (t && tv_truthy(s, s->tr[t].e))
			*ret = s->tr[t].e;
		return 0;
	}
	if (!json_truthy(e)) {
		*ret = VID_NONE;
		return 0;
	}
	return tv_intern_json(s, e, ret);
}

/* Resolve a step's v: a 2-element array whose first element is an attr id
 * with triples here is a lookup; anything else is the value itself.
 * *ret = VID_NONE when a lookup does not resolve. */
static int
resolve_v(struct tstore *s, const cJSON *v, uint32_t *ret)
{
	if (v == NULL) {
		*ret = VID_UNDEF;
		return 0;
	}
	if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
		const cJSON *la = cJSON_GetArrayItem(v, 0), *lv = cJSON_GetArrayItem(v, 1);
		uint32_t a = cJSON_IsString(la) ? tstore_tv_find_str(s, la->valuestring) : VID_NONE;

		if (a != VID_NONE && tstore_aev(s, a) != NULL) {
			uint32_t vv = tstore_tv_find_json(s, lv), t;

			*ret = VID_NONE;
			if (vv == VID_NONE)
				return 0;
			t = ave_first(s, a, vv);
			if (t && tv_truthy(s, s->tr[t].e))
				*ret = s->tr[t].e;
			return 0;
		}
	}
	return tv_intern_json(s, v, ret);
}

static const struct tattr *
step_attr(const struct tstore *s, const cJSON *a)
{
	return cJSON_IsString(a) ? tstore_attr(s, tstore_tv_find_str(s, a->valuestring)) : NULL;
}

static uint64_t tstore_seed;

/* A created-at for a new optimistic triple: larger than any server time
 * (ms) and increasing in apply order, like Date.now()*10 + seed. */
static int
new_created_at(struct tstore *s, uint32_t *ret)
{
	double t = (double)now_ms() * 10 + (double)tstore_seed++;

	return tv_intern_scalar(s, TV_NUM, t, NULL, 0, ret);
}

/* ---- step semantics ---- */

static int
step_add_triple(struct tstore *s, const cJSON *step)
{
	const cJSON *ej = cJSON_GetArrayItem(step, 1), *aj = cJSON_GetArrayItem(step, 2);
	const cJSON *vj = cJSON_GetArrayItem(step, 3);
	const struct tattr *at;
	uint32_t e, v, t, old, c, ti;
	int r;

	if ((r = resolve_e(s, ej, &e)) < 0 || e == VID_NONE)
		return r;
	if ((r = resolve_v(s, vj, &v)) < 0 || v == VID_NONE)
		return r;
	at = step_attr(s, aj);
	if (at == NULL)
		return 0;
	old = tstore_hmap_get(&s->tr_by_eav, e, at->id, v);
	if (old && tstore_tv_get(s, s->tr[old].t)->type != TV_UNDEF &&
	    tstore_tv_get(s, s->tr[old].t)->type != TV_NULL)
		t = s->tr[old].t;
	else if ((r = new_created_at(s, &t)) < 0)
		return r;
	if (!at->card_one)
		return tstore_set(s, e, at->id, v, t, at->ref);
	/* card one: the cell becomes {v: triple}, in place */
	if ((r = cell_get_or_new(s, e, at->id, &c)) < 0)
		return r;
	while (s->cells[c].tr.n > 0)
		triple_remove(s, s->cells[c].tr.v[s->cells[c].tr.n - 1]);
	if ((r = triple_new(s, e, at->id, v, t, c, &ti)) < 0)
		return r;
	if ((r = vec_push(s, &s->cells[c].tr, ti)) < 0)
		return r;
	return triple_index(s, ti, at->ref);
}

static bool
json_is_plain_object(const cJSON *j)
{
	return cJSON_IsObject(j);
}

/* immutableDeepMerge: a new value (caller owns). */
static cJSON *
deep_merge(const cJSON *target, const cJSON *source)
{
	cJSON *res;
	const cJSON *c;

	if (!json_is_plain_object(target) || !json_is_plain_object(source))
		return cJSON_Duplicate(source, 1);
	res = cJSON_Duplicate(target, 1);
	if (res == NULL)
		return NULL;
	cJSON_ArrayForEach(c, source) {
		const cJSON *tv = json_get(res, c->string);
		cJSON *nv;

		if (cJSON_IsNull(c)) {
			cJSON_DeleteItemFromObjectCaseSensitive(res, c->string);
			continue;
		}
		nv = (json_is_plain_object(tv) && json_is_plain_object(c)) ?
		    deep_merge(tv, c) : cJSON_Duplicate(c, 1);
		if (nv == NULL) {
			cJSON_Delete(res);
			return NULL;
		}
		if (tv)
			cJSON_ReplaceItemInObjectCaseSensitive(res, c->string, nv);
		else
			cJSON_AddItemToObject(res, c->string, nv);
	}
	return res;
}

static int
step_merge_triple(struct tstore *s, const cJSON *step)
{
	const cJSON *ej = cJSON_GetArrayItem(step, 1), *aj = cJSON_GetArrayItem(step, 2);
	const cJSON *pj = cJSON_GetArrayItem(step, 3);
	const struct tattr *at;
	const struct cell *cl;
	uint32_t e, v, t, cur, ti, c;
	cJSON *merged, *curj;
	int r;

	if ((r = resolve_e(s, ej, &e)) < 0 || e == VID_NONE)
		return r;
	if ((r = resolve_v(s, pj, &v)) < 0 || v == VID_NONE)
		return r;
	at = step_attr(s, aj);
	if (at == NULL)
		return 0;
	cl = tstore_cell(s, e, at->id);
	if (cl == NULL || cl->tr.n == 0)
		return 0;	/* no current value: the JS client shows nothing */
	cur = cl->tr.v[0];
	c = s->tr[cur].cell;
	curj = tstore_tv_to_json(s, s->tr[cur].v);
	if (curj == NULL)
		return -ENOMEM;
	{
		cJSON *patch = tstore_tv_to_json(s, v);

		if (patch == NULL) {
			cJSON_Delete(curj);
			return -ENOMEM;
		}
		merged = deep_merge(curj, patch);
		cJSON_Delete(patch);
	}
	cJSON_Delete(curj);
	if (merged == NULL)
		return -ENOMEM;
	if ((r = tv_adopt_json(s, merged, &v)) < 0)
		return r;
	t = s->tr[cur].t;
	if (!tv_truthy(s, t) && (r = new_created_at(s, &t)) < 0)
		return r;
	while (s->cells[c].tr.n > 0)
		triple_remove(s, s->cells[c].tr.v[s->cells[c].tr.n - 1]);
	if ((r = triple_new(s, e, at->id, v, t, c, &ti)) < 0)
		return r;
	if ((r = vec_push(s, &s->cells[c].tr, ti)) < 0)
		return r;
	return triple_index(s, ti, false);
}

static int
step_retract_triple(struct tstore *s, const cJSON *step)
{
	const cJSON *ej = cJSON_GetArrayItem(step, 1), *aj = cJSON_GetArrayItem(step, 2);
	const cJSON *vj = cJSON_GetArrayItem(step, 3);
	const struct tattr *at;
	uint32_t e, v, ti;
	int r;

	if ((r = resolve_e(s, ej, &e)) < 0 || e == VID_NONE)
		return r;
	if ((r = resolve_v(s, vj, &v)) < 0 || v == VID_NONE)
		return r;
	at = step_attr(s, aj);
	if (at == NULL)
		return 0;
	ti = tstore_hmap_get(&s->tr_by_eav, e, at->id, v);
	if (ti)
		triple_remove(s, ti);
	return 0;
}

static int
delete_entity(struct tstore *s, uint32_t id, uint32_t etype, int depth)
{
	uint32_t ei = tstore_hmap_get(&s->ent_by_e, id, 0, 0);
	const struct u32vec *vl;
	uint32_t *snap = NULL, nsnap = 0;
	int r = 0;

	if (depth > TSTORE_MAX_CASCADE)
		return -ELOOP;
	if (ei) {
		for (uint32_t i = 0; i < s->ents[ei].cells.n; i++) {
			uint32_t c = s->ents[ei].cells.v[i];
			const struct tattr *at;

			if (!s->cells[c].live)
				continue;
			at = tstore_attr(s, s->cells[c].a);
			if (at && at->del_rev_cascade) {
				struct u32vec targets;

				if ((r = vec_copy(&targets, &s->cells[c].tr)) < 0)
					return r;
				for (uint32_t j = 0; r == 0 && j < targets.n; j++)
					r = delete_entity(s, s->tr[targets.v[j]].v, at->rev_etype, depth + 1);
				vec_free(&targets);
				if (r < 0)
					return r;
			}
			if (etype == VID_NONE || at == NULL || at->fwd_etype == etype)
				cell_kill(s, c);
		}
		if (s->ents[ei].live && ent_empty(s, &s->ents[ei]))
			ent_kill(s, ei);
	}
	vl = tstore_vae(s, id);
	if (vl && vl->n) {
		snap = malloc(vl->n * sizeof(*snap));
		if (snap == NULL)
			return -ENOMEM;
		memcpy(snap, vl->v, vl->n * sizeof(*snap));
		nsnap = vl->n;
	}
	for (uint32_t i = 0; i < nsnap; i++) {
		const struct triple *t = &s->tr[snap[i]];
		const struct tattr *at = tstore_attr(s, t->a);

		if (etype == VID_NONE || at == NULL || at->rev_etype == etype)
			triple_remove(s, snap[i]);
		if (at && at->del_cascade && at->rev_etype == etype &&
		    (r = delete_entity(s, t->e, at->fwd_etype, depth + 1)) < 0)
			break;
	}
	free(snap);
	return r;
}

static int
step_delete_entity(struct tstore *s, const cJSON *step)
{
	const cJSON *ej = cJSON_GetArrayItem(step, 1), *tj = cJSON_GetArrayItem(step, 2);
	uint32_t e, etype = VID_NONE;
	int r;

	if ((r = resolve_e(s, ej, &e)) < 0 || e == VID_NONE)
		return r;
	if (json_truthy(tj)) {
		if (!cJSON_IsString(tj))
			return 0;	/* matches no attr's etype; only unknown attrs would go */
		if ((r = tv_intern_str(s, tj->valuestring, &etype)) < 0)
			return r;
	}
	return delete_entity(s, e, etype, 0);
}

/* Would a deep-merge-triple on attr aj (step `upto` of steps) hit a
 * non-blob attr, counting the attr steps before it in the same mutation? */
static bool
merge_on_ref(const struct tstore *s, const cJSON *steps, int upto, const cJSON *aj)
{
	const struct tattr *at;
	const char *vt = NULL;
	bool exists;
	const cJSON *st;
	int i = 0;

	if (!cJSON_IsString(aj))
		return false;
	at = tstore_attr(s, tstore_tv_find_str(s, aj->valuestring));
	exists = at != NULL;
	if (at)
		vt = json_get_string(at->json, "value-type");
	cJSON_ArrayForEach(st, steps) {
		const cJSON *x = cJSON_GetArrayItem(st, 1);
		const char *act;

		if (i++ >= upto)
			break;
		act = cJSON_IsString(cJSON_GetArrayItem(st, 0)) ? cJSON_GetArrayItem(st, 0)->valuestring : "";
		if (strcmp(act, "add-attr") == 0 && cJSON_IsObject(x) &&
		    json_get_string(x, "id") && strcmp(json_get_string(x, "id"), aj->valuestring) == 0) {
			exists = true;
			vt = json_get_string(x, "value-type");
		} else if (strcmp(act, "update-attr") == 0 && exists && cJSON_IsObject(x) &&
		    json_get_string(x, "id") && strcmp(json_get_string(x, "id"), aj->valuestring) == 0) {
			if (json_get(x, "value-type"))
				vt = json_get_string(x, "value-type");
		} else if (strcmp(act, "delete-attr") == 0 && cJSON_IsString(x) &&
		    strcmp(x->valuestring, aj->valuestring) == 0)
			exists = false;
	}
	return exists && (vt == NULL || strcmp(vt, "blob") != 0);
}

static int
step_add_attr(struct tstore *s, const cJSON *x)
{
	ssize_t k;
	cJSON *c;
	int r;

	if (!cJSON_IsObject(x) || json_get_string(x, "id") == NULL)
		return 0;
	k = aj_index(s, json_get_string(x, "id"));
	/* Every pending write re-sends the add-attr steps of the attrs it created, and
	 * each re-index walks every attr: an attr already held as sent changes nothing
	 * (1,000 replayed writes to a new attr took 35 s without this). */
	if (k >= 0 && cJSON_Compare(s->aj->v[k], x, 1))
		return 0;
	if ((r = aj_private(s)) < 0)
		return r;
	c = cJSON_Duplicate(x, 1);
	if (c == NULL)
		return -ENOMEM;
	if (k >= 0) {
		cJSON_Delete(s->aj->v[k]);
		s->aj->v[k] = c;
	} else if ((r = aj_push(s->aj, c)) < 0)
		return r;
	return tstore_index_attrs(s);
}

static int
step_update_attr(struct tstore *s, const cJSON *x)
{
	ssize_t k = cJSON_IsObject(x) ? aj_index(s, json_get_string(x, "id")) : -1;
	const cJSON *c;
	int r;

	if (k < 0)
		return 0;
	if ((r = aj_private(s)) < 0)
		return r;
	cJSON_ArrayForEach(c, x) {
		cJSON *copy = cJSON_Duplicate(c, 1);

		if (copy == NULL)
			return -ENOMEM;
		if (cJSON_GetObjectItemCaseSensitive(s->aj->v[k], c->string))
			cJSON_ReplaceItemInObjectCaseSensitive(s->aj->v[k], c->string, copy);
		else
			cJSON_AddItemToObject(s->aj->v[k], c->string, copy);
	}
	return tstore_reindex(s, VID_NONE);
}

static int
step_delete_attr(struct tstore *s, const cJSON *x)
{
	ssize_t k = cJSON_IsString(x) ? aj_index(s, x->valuestring) : -1;
	uint32_t aid;
	int r;

	if (k < 0)
		return 0;
	aid = tstore_tv_find_str(s, x->valuestring);
	if ((r = aj_private(s)) < 0)
		return r;
	cJSON_Delete(s->aj->v[k]);
	memmove(&s->aj->v[k], &s->aj->v[k + 1], (s->aj->n - (size_t)k - 1) * sizeof(*s->aj->v));
	s->aj->n--;
	return tstore_reindex(s, aid);
}

static int
err_printf(char **ret_err, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	if (ret_err == NULL)
		return -EINVAL;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	*ret_err = m;
	return -EINVAL;
}

static const char *const known_actions[] = {
	"add-triple", "deep-merge-triple", "retract-triple", "delete-entity",
	"add-attr", "update-attr", "delete-attr", "restore-attr", "rule-params",
};

static bool
action_known(const char *a)
{
	for (size_t i = 0; i < ELEMENTSOF(known_actions); i++)
		if (strcmp(a, known_actions[i]) == 0)
			return true;
	return false;
}

/* The mode filter: is this step dropped by its {"mode": create|update}? */
static int
step_dropped_by_mode(struct tstore *s, const cJSON *step, bool *ret)
{
	const char *act = cJSON_GetArrayItem(step, 0)->valuestring;
	const cJSON *opts = cJSON_GetArrayItem(step, 4);
	const char *mode = json_get_string(opts, "mode");
	const struct tattr *at, *pk;
	bool exists = false;

	*ret = false;
	if (strcmp(act, "add-triple") != 0 && strcmp(act, "deep-merge-triple") != 0)
		return 0;
	if (mode == NULL || (strcmp(mode, "create") != 0 && strcmp(mode, "update") != 0))
		return 0;
	at = step_attr(s, cJSON_GetArrayItem(step, 2));
	if (at) {
		const cJSON *ej = cJSON_GetArrayItem(step, 1);
		uint32_t e, v;
		int r;

		pk = tstore_attr_pk(s, at->fwd_etype);
		if ((r = resolve_e(s, ej, &e)) < 0)
			return r;
		if ((r = resolve_v(s, ej, &v)) < 0)
			return r;
		if (pk && e != VID_NONE && v != VID_NONE) {
			const struct cell *cl = tstore_cell(s, e, pk->id);

			exists = cl && cl->tr.n > 0;
		}
	}
	*ret = strcmp(mode, "create") == 0 ? exists : !exists;
	return 0;
}

int
tstore_apply_steps(struct tstore *s, const cJSON *tx_steps, char **ret_err)
{
	const cJSON *step;
	bool *drop = NULL;
	int n, i = 0, r = 0;

	if (!cJSON_IsArray(tx_steps))
		return err_printf(ret_err, "tx-steps is not an array");
	n = cJSON_GetArraySize(tx_steps);
	/* Check first, so a step the JS client throws on leaves the store as it
	 * was (its transact is copy-on-write). */
	cJSON_ArrayForEach(step, tx_steps) {
		const cJSON *act = cJSON_GetArrayItem(step, 0);

		if (!cJSON_IsArray(step)) {
			r = err_printf(ret_err, "step %d: not an array", i);
			goto out;
		}
		if (!cJSON_IsString(act) || !action_known(act->valuestring)) {
			r = err_printf(ret_err, "step %d: unhandled transaction action: %s", i,
			    cJSON_IsString(act) ? act->valuestring : "(not a string)");
			goto out;
		}
		if (strcmp(act->valuestring, "deep-merge-triple") == 0 &&
		    merge_on_ref(s, tx_steps, i, cJSON_GetArrayItem(step, 2))) {
			r = err_printf(ret_err, "step %d: merge operation is not supported for links", i);
			goto out;
		}
		i++;
	}
	if (n > 0) {
		drop = calloc((size_t)n, sizeof(*drop));
		if (drop == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	i = 0;
	cJSON_ArrayForEach(step, tx_steps) {
		if ((r = step_dropped_by_mode(s, step, &drop[i])) < 0)
			goto out;
		i++;
	}
	s->stepped = true;
	i = 0;
	cJSON_ArrayForEach(step, tx_steps) {
		const char *act = cJSON_GetArrayItem(step, 0)->valuestring;
		const cJSON *x = cJSON_GetArrayItem(step, 1);

		if (drop[i++])
			continue;
		if (strcmp(act, "add-triple") == 0)
			r = step_add_triple(s, step);
		else if (strcmp(act, "deep-merge-triple") == 0)
			r = step_merge_triple(s, step);
		else if (strcmp(act, "retract-triple") == 0)
			r = step_retract_triple(s, step);
		else if (strcmp(act, "delete-entity") == 0)
			r = step_delete_entity(s, step);
		else if (strcmp(act, "add-attr") == 0)
			r = step_add_attr(s, x);
		else if (strcmp(act, "update-attr") == 0)
			r = step_update_attr(s, x);
		else if (strcmp(act, "delete-attr") == 0)
			r = step_delete_attr(s, x);
		if (r == -ELOOP) {
			r = err_printf(ret_err, "step %d: delete-entity cascade deeper than %d", i - 1, TSTORE_MAX_CASCADE);
			goto out;
		}
		if (r < 0)
			goto out;
	}
out:
	free(drop);
	tv_sweep(s);
	return r;
}

/* ---- queries for InstaML and the daemon ---- */

bool
tstore_has_entity(const struct tstore *s, const char *etype, const char *eid)
{
	uint32_t e = eid ? tstore_tv_find_str(s, eid) : VID_NONE;
	uint32_t et = etype ? tstore_tv_find_str(s, etype) : VID_NONE;
	uint32_t ei = e ? tstore_hmap_get(&s->ent_by_e, e, 0, 0) : 0;

	if (ei == 0 || et == VID_NONE)
		return false;
	for (uint32_t i = 0; i < s->ents[ei].cells.n; i++) {
		const struct cell *cl = &s->cells[s->ents[ei].cells.v[i]];
		const struct tattr *at;

		if (!cl->live || cl->tr.n == 0)
			continue;
		at = tstore_attr(s, cl->a);
		if (at && at->fwd_etype == et)
			return true;
	}
	return false;
}

bool
tstore_has_av(const struct tstore *s, const char *attr_id, const cJSON *value)
{
	uint32_t a = attr_id ? tstore_tv_find_str(s, attr_id) : VID_NONE;
	uint32_t v = value ? tstore_tv_find_json(s, value) : VID_NONE;
	const struct u32vec *l;

	if (a == VID_NONE || v == VID_NONE)
		return false;
	l = tstore_ave(s, a, v);
	return l && l->n > 0;
}

cJSON *
tstore_to_json(const struct tstore *s)
{
	cJSON *arr = cJSON_CreateArray();

	if (arr == NULL)
		return NULL;
	for (uint32_t ei = 1; ei < s->nents; ei++) {
		const struct ent *en = &s->ents[ei];

		if (!en->live)
			continue;
		for (uint32_t i = 0; i < en->cells.n; i++) {
			const struct cell *cl = &s->cells[en->cells.v[i]];

			if (!cl->live)
				continue;
			for (uint32_t j = 0; j < cl->tr.n; j++) {
				const struct triple *t = &s->tr[cl->tr.v[j]];
				cJSON *row = cJSON_CreateArray();
				cJSON *x;

				if (row == NULL)
					goto fail;
				cJSON_AddItemToArray(arr, row);
				if ((x = tstore_tv_to_json(s, t->e)) == NULL)
					goto fail;
				cJSON_AddItemToArray(row, x);
				if ((x = tstore_tv_to_json(s, t->a)) == NULL)
					goto fail;
				cJSON_AddItemToArray(row, x);
				if ((x = tstore_tv_to_json(s, t->v)) == NULL)
					goto fail;
				cJSON_AddItemToArray(row, x);
				if (tstore_tv_get(s, t->t)->type != TV_UNDEF) {
					if ((x = tstore_tv_to_json(s, t->t)) == NULL)
						goto fail;
					cJSON_AddItemToArray(row, x);
				}
			}
		}
	}
	return arr;
fail:
	cJSON_Delete(arr);
	return NULL;
}
