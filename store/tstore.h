/* An in-memory EAV triple store for one query, with the index semantics of
 * @instantdb/core 1.0.67 (client-semantics.md 1.2-1.5): EAV, AEV and VAE
 * (refs only) hash indexes that keep insertion order, interned strings. */
#ifndef INSTANTD_TSTORE_H
#define INSTANTD_TSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/attrs.h"

/* Owns its triples and a private copy of the attrs it was built with (the
 * copy changes with add-attr / update-attr / delete-attr steps; a
 * tstore_dup copy shares it until one of them changes it). */
struct tstore;

/* The interned values (strings, numbers, objects) of the stores made over
 * it: a value in several of them is held once. Reference counted: the
 * creator holds one reference, each store over it another, so the table
 * lives until the last of them lets go. Values are counted by the stores'
 * triples and attrs that name them, and released when none does. */
struct tstore_values;

/* A new table, one reference held by the caller. 0 or -ENOMEM. */
int tstore_values_new(struct tstore_values **ret);
void tstore_values_unref(struct tstore_values *vt);	/* NULL-safe */
/* Number of values held (for tests and accounting). */
size_t tstore_values_count(const struct tstore_values *vt);
/* Is value (a scalar) interned in vt? One that is not is in no store over
 * vt: a caller about to ask many of them asks vt once first. */
bool tstore_values_has(const struct tstore_values *vt, const cJSON *value);
/* The table s interns into (borrowed, valid while s is). */
const struct tstore_values *tstore_values_of(const struct tstore *s);

/* A new empty store over a copy of `attrs`, with a table of its own. 0 or -ENOMEM. */
int tstore_new(const struct attrs *attrs, struct tstore **ret);
/* The same over the values of vt (borrowed, referenced by the store; NULL:
 * a table of its own). Its tstore_dup copies share vt too. 0 or -ENOMEM. */
int tstore_new_shared(struct tstore_values *vt, const struct attrs *attrs, struct tstore **ret);
/* A new empty store over the attrs and the values of s (borrowed; the attr
 * objects are shared, not copied, until one of the stores changes them).
 * 0 or -ENOMEM. */
int tstore_new_like(const struct tstore *s, struct tstore **ret);
void tstore_free(struct tstore *s);	/* NULL-safe */
/* An independent copy (e.g. the server store kept aside while a layered
 * copy gets the pending mutations): cheaper than building again from the
 * triples. 0 or -ENOMEM. */
int tstore_dup(const struct tstore *s, struct tstore **ret);

/* Add server triples: a JSON array of [e, a, v] or [e, a, v, t] (createStore).
 * Triples whose attr id is unknown are skipped, as the JS client does; so are
 * malformed rows (e or a not a string). Cardinality is not enforced; a
 * repeated (e, a, v) keeps the last triple. 0, -EINVAL (not an array), -ENOMEM. */
int tstore_add_triples(struct tstore *s, const cJSON *triples);
/* Add the triples of a wire result tree (add-query-ok "result" /
 * refresh-ok "instaql-result"): an array of nodes, each
 * {"data": {"datalog-result": {"join-rows": [[triple...]...]}}, "child-nodes": [...]},
 * walked depth first (extractTriples); a missing or null result, child-nodes
 * or join-rows is empty. 0, -EINVAL (bad shape), -ENOMEM. */
int tstore_add_result(struct tstore *s, const cJSON *result);
/* The triples of a wire result tree as tstore_add_result walks it, for a
 * caller that keeps them (the daemon mirrors them, and builds stores from
 * them again when attrs change): *ret is a new array of copies, in walk
 * order, malformed triples included (tstore_add_triples skips them as
 * tstore_add_result does). 0, -EINVAL (bad shape, as tstore_add_result),
 * -ENOMEM. */
int tstore_result_triples(const cJSON *result, cJSON **ret);

/* Add the triples src (borrowed, another store) was built from, in the
 * order they were added, as tstore_add_triples would add them to dst: those
 * src skipped for an unknown attr count when dst knows the attr. The daemon
 * keeps a result only as its store and builds the union of its results, or
 * a store over changed attrs, this way. 0, -EINVAL (src took tx-steps: it
 * no longer knows what it was built from), -ENOMEM (dst partly filled). */
int tstore_add_store(struct tstore *dst, const struct tstore *src);
/* The triples s was built from, as tstore_add_store adds them: *ret is a
 * new array of [e, a, v, t] (t left out when the triple had none, v too
 * when it had neither) from which tstore_add_triples builds the same store.
 * For the mirror. 0, -EINVAL (s took tx-steps), -ENOMEM. */
int tstore_added_triples(const struct tstore *s, cJSON **ret);

/* Give back the spare room of a store that is done growing (the daemon's
 * server results, kept as they came): arrays and hash tables shrink to fit,
 * vectors move into one block. Never fails: what cannot move stays. */
void tstore_trim(struct tstore *s);

/* Apply one mutation's tx-steps with the JS client's transact() semantics
 * (client-semantics.md 1.3-1.5): the create/update mode filter judged against
 * the store as it was before this call, lookup refs in e and v resolved
 * against this store (an unresolved lookup or unknown attr drops the step),
 * add-triple, deep-merge-triple (no-op without a current value),
 * retract-triple, delete-entity with on-delete cascades, add-attr,
 * update-attr, delete-attr, restore-attr and rule-params (no-ops).
 * Optimistic triples get t = now_ms()*10 + a process-wide counter, larger
 * than any server t and increasing in apply order; an existing (e, a, v)
 * keeps its t.
 * Returns 0; -EINVAL with *ret_err (malloc'd, caller frees; ret_err may be
 * NULL) for what the JS client throws on: a step that is not an array, an
 * unknown action ("step 3: unhandled transaction action: foo"), a
 * deep-merge-triple on a ref attr. The JS client then fails the whole query;
 * the store is unchanged in that case (steps are checked before any is
 * applied). Also -EINVAL, with the store partly changed, for a delete-entity
 * cascade deeper than 10000 entities. -ENOMEM otherwise (the store may then
 * be partly changed). Apply to a tstore_dup copy when the original matters;
 * a store that takes steps for a long time keeps the storage of what the
 * steps replaced until it is freed, so layer on short-lived copies. */
int tstore_apply_steps(struct tstore *s, const cJSON *tx_steps, char **ret_err);

/* For InstaML's mode decision: does eid have any triple whose attr's forward
 * etype is etype? */
bool tstore_has_entity(const struct tstore *s, const char *etype, const char *eid);
/* Does some entity have the triple (attr_id, value)? (lookup existence;
 * value compared as the JS client does: same type and value, objects never equal) */
bool tstore_has_av(const struct tstore *s, const char *attr_id, const cJSON *value);

/* The store's current attrs (borrowed; valid until the next attr step or
 * tstore_free). Built on the first call, in time quadratic in the number of
 * attrs, so keep it out of hot paths. NULL on ENOMEM. */
const struct attrs *tstore_attrs(const struct tstore *s);
/* Number of triples currently held. */
size_t tstore_count(const struct tstore *s);
/* All triples as a new JSON array of [e, a, v, t] in EAV order (t omitted
 * when the triple has none); NULL on ENOMEM. Owned by the caller. */
cJSON *tstore_to_json(const struct tstore *s);

#endif
