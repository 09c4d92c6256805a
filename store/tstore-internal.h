/* Internals of struct tstore shared by tstore.c and instaql.c: interned
 * values, triples, the EAV/AEV/AVE/VAE indexes and the derived attr tables.
 * Nothing outside store/tstore.c and store/instaql*.c may include this. */
#ifndef INSTANTD_TSTORE_INTERNAL_H
#define INSTANTD_TSTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/attrs.h"
#include "store/tstore.h"

/* Value ids. 0 is "none" (unbound variable, not interned); 1 is JS undefined
 * (a triple without a 4th element). Every other id names one interned value:
 * scalars are shared (equal scalars, same id, as with JS SameValueZero map
 * keys); each object or array occurrence gets its own id (identity keys). */
#define VID_NONE 0u
#define VID_UNDEF 1u

enum tv_type { TV_UNDEF, TV_NULL, TV_FALSE, TV_TRUE, TV_NUM, TV_STR, TV_JSON, TV_FREE };

struct tval {
	uint8_t type;		/* TV_FREE: a released id, on the free list */
	uint32_t len;		/* TV_STR: bytes */
	uint32_t hash;
	uint32_t refs;		/* triples and attr entries of the table's stores naming it */
	double num;		/* TV_NUM */
	char *str;		/* TV_STR: owned */
	cJSON *json;		/* TV_JSON: owned copy */
};

/* The interned values of one or more stores (a profile's query stores and
 * their copies share one, so a value in several results is held once).
 * Each value counts the triples and attr entries naming it, in every store
 * of the table; it is released when that drops to zero (or, interned but
 * never kept, at the end of the operation that interned it) and its id
 * reused. */
struct tstore_values {
	unsigned refs;		/* the stores over it and its owner */
	struct tval *vals;	/* by vid; 0 and 1 are the reserved ids */
	uint32_t nvals, capvals;
	uint32_t *vslots;	/* intern table of scalar vids (UINT32_MAX: deleted) */
	uint32_t vcap, vn, vtomb;
	uint32_t *freed;	/* released vids, reused first */
	uint32_t nfreed, capfreed;
	uint32_t live;		/* values held */
};

struct slab;

struct u32vec {
	uint32_t n, cap;	/* cap's top bit: storage in the store's slab */
	uint32_t *v;
};

/* One slot of the generic hash: keys k1..k3 (ids), val 0 = empty,
 * UINT32_MAX = deleted. */
struct hslot {
	uint32_t k1, k2, k3, val;
};

struct hmap {
	struct hslot *slots;
	uint32_t cap, n, ntomb;
};

struct triple {
	uint32_t e, a, v, t;	/* value ids */
	uint32_t cell;
	bool live;
};

/* The value map of one (e, a): eav[e][a] and aev[a][e] of the JS store,
 * which always hold the same values in the same order. A cell survives when
 * its last value is retracted (keeping its place, as the JS map does) but
 * then counts as absent for existence tests. */
struct cell {
	uint32_t e, a;
	uint32_t ent;		/* index in ents */
	uint32_t aseq;		/* position in its attr's aev list */
	struct u32vec tr;	/* live triple indexes, insertion order */
	bool live;
};

struct ent {
	uint32_t e;
	struct u32vec cells;	/* cell indexes in insertion order (dead ones skipped) */
	bool live;
};

enum tattr_ctype { CT_NONE, CT_STRING, CT_NUMBER, CT_BOOLEAN, CT_DATE, CT_OTHER };

struct tattr {
	uint32_t id;		/* vid of the attr id string */
	const cJSON *json;	/* borrowed from s->attrs */
	uint32_t fwd_etype, fwd_label, rev_etype, rev_label;	/* vids or 0 */
	bool ref, blob, card_one, primary;
	bool del_cascade, del_rev_cascade;
	enum tattr_ctype ctype;
};

/* The attr objects of a store in registry order (owned copies), shared
 * copy-on-write between a store and its tstore_dup copies. */
struct tattrs_json {
	unsigned refs;
	cJSON **v;
	uint32_t n, cap;
};

struct tstore {
	struct tattrs_json *aj;	/* at[i].json == aj->v[i] */
	/* No tx-steps applied: tr[1..ntr) is then the log of the added triples
	 * in add order (those a repeat replaced and, with cell 0, those of an
	 * attr the store did not know), which tstore_add_store and
	 * tstore_added_triples replay. */
	bool stepped;
	struct attrs *attrs_cache;	/* tstore_attrs(), built on demand */

	struct tstore_values *vt;	/* a reference: the values, maybe shared with other stores */
	uint32_t *fresh;	/* vids this operation created, released unless kept */
	uint32_t nfresh, capfresh;

	struct triple *tr;
	uint32_t ntr, captr;
	uint32_t nlive;
	struct cell *cells;
	uint32_t ncells, capcells;
	struct ent *ents;
	uint32_t nents, capents;
	struct u32vec *vecs;	/* pool for aev / ave / vae lists */
	uint32_t nvecs, capvecs;
	struct slab *slab;	/* storage of the vectors, freed with the store */

	struct hmap ent_by_e;	/* e -> ent */
	struct hmap cell_by_ea;	/* (e, a) -> cell */
	struct hmap tr_by_eav;	/* (e, a, v) -> triple */
	struct hmap aev;	/* a -> vec of cells */
	struct hmap ave;	/* (a, v) -> vec of triples */
	struct hmap vae;	/* v -> vec of ref triples pointing at v */

	/* Derived attr tables, rebuilt when attrs change. */
	struct tattr *at;
	uint32_t nat;
	struct hmap at_by_id;	/* attr id vid -> index+1 in at */
	struct hmap at_fwd;	/* (etype, label) -> index+1 (later attr wins) */
	struct hmap at_rev;
	struct hmap at_blob;	/* (etype, label) -> index+1, blob attrs */
	struct hmap at_pk;	/* etype -> index+1 of the primary? attr */
	/* Blob attrs per etype, in the order of the JS blobAttrs map. */
	struct hmap blob_list;	/* etype -> vec of attr index+1 (in vecs) */
};

/* Interning. */
uint32_t tstore_tv_find_json(const struct tstore *s, const cJSON *j);	/* VID_NONE if absent or object */
uint32_t tstore_tv_find_str(const struct tstore *s, const char *str);
uint32_t tstore_tv_find_num(const struct tstore *s, double d);

static inline const struct tval *
tstore_tv_get(const struct tstore *s, uint32_t vid)
{
	return &s->vt->vals[vid];
}

/* Hash lookups. */
uint32_t tstore_hmap_get(const struct hmap *m, uint32_t k1, uint32_t k2, uint32_t k3);
/* Insert or replace; val must not be 0 or UINT32_MAX. 0 or -ENOMEM. */
int tstore_hmap_put(struct hmap *m, uint32_t k1, uint32_t k2, uint32_t k3, uint32_t val);
void tstore_hmap_del(struct hmap *m, uint32_t k1, uint32_t k2, uint32_t k3);
void tstore_hmap_clear(struct hmap *m);

const struct tattr *tstore_attr(const struct tstore *s, uint32_t attr_vid);
const struct tattr *tstore_attr_fwd(const struct tstore *s, uint32_t etype, uint32_t label);
const struct tattr *tstore_attr_rev(const struct tstore *s, uint32_t etype, uint32_t label);
const struct tattr *tstore_attr_pk(const struct tstore *s, uint32_t etype);
/* Blob attrs of etype (attr indexes + 1 into s->at), or NULL if none. */
const struct u32vec *tstore_blob_attrs(const struct tstore *s, uint32_t etype);

/* The cell (e, a) or NULL; dead cells are NULL. */
const struct cell *tstore_cell(const struct tstore *s, uint32_t e, uint32_t a);
/* The live triple (e, a, v) or NULL. */
const struct triple *tstore_triple(const struct tstore *s, uint32_t e, uint32_t a, uint32_t v);
/* aev[a] (cells, may hold dead ones) or NULL. */
const struct u32vec *tstore_aev(const struct tstore *s, uint32_t a);
/* ave[(a, v)] (live triples, insertion order) or NULL. */
const struct u32vec *tstore_ave(const struct tstore *s, uint32_t a, uint32_t v);
/* vae[v] (live ref triples pointing at v) or NULL. */
const struct u32vec *tstore_vae(const struct tstore *s, uint32_t v);


/* A new JSON copy of a value (undefined gives null); NULL on ENOMEM. */
cJSON *tstore_tv_to_json(const struct tstore *s, uint32_t vid);

#endif
