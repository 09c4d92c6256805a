/* What an InstaQL query's result can depend on, and whether a mutation's
 * tx-steps can change it: so a local write re-evaluates only the queries it
 * may affect (issue 18 point 3). Conservative: "affected" may be wrong,
 * "not affected" never is. */
#ifndef INSTANTD_READS_H
#define INSTANTD_READS_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/attrs.h"
#include "store/instaql.h"

/* The attrs one query reads, judged against the attrs it was computed from,
 * plus for every etype whether a delete-entity of it (with its on-delete
 * cascades) can reach one of them. Owns its memory; immutable once made,
 * so one may be read from several places. */
struct query_reads;

/* Compute what `q` (the query object instaql_eval takes) reads under
 * `attrs`: for each namespace and nested link, its etype's id/primary attrs,
 * every non-ref attr of the etype (or only those named by $.fields), the
 * link attrs it follows, the attrs of every hop and leaf of its where paths
 * (and/or included) and of its order keys; `page_info` (may be NULL; the
 * server's page-info as instaql_opts takes it) adds the cursors' attrs.
 * Labels are matched against every attr with that forward or reverse
 * identity, not only the one the evaluator picks.
 * The result is valid for these attrs only: when the attrs the query is
 * evaluated with change (server attrs, or attr steps of a pending mutation),
 * compute it again. 0 with *ret owned by the caller; -EINVAL if q is not an
 * object; -ENOMEM. */
int query_reads_new(const struct attrs *attrs, const cJSON *q, const cJSON *page_info,
    struct query_reads **ret);
void query_reads_free(struct query_reads *r);	/* NULL-safe */

/* Can applying one mutation's (rewritten) tx-steps, as tstore_apply_steps
 * does, change the query's result? false only when it provably cannot:
 * every step is an add-triple, deep-merge-triple or retract-triple on a
 * known attr the query does not read, a delete-entity of a known etype
 * whose deletion and cascades touch no attr the query reads, or a
 * rule-params, an add-attr of an attr the query does not read that the
 * attrs it was computed from hold exactly as sent (every pending write
 * re-sends the attrs it created). true for anything else: another attr step
 * (add/update/delete/restore-attr), an attr id unknown when the reads were computed, a
 * delete-entity without an etype, a deep-merge-triple on an attr that is
 * not a known blob (the JS client throws), a malformed or unknown step
 * (the whole query then fails), tx_steps not an array.
 *
 * shown (may be NULL) refines this by entity: the entities the query's
 * current result shows (instaql_opts.shown of the render of the very view
 * the mutation would be layered on: the same server store and the same
 * pending mutations before it). An attr the query uses only to fill
 * objects (fields, or every blob attr; not in a where, order, cursor, link
 * or id) then matters only for a shown entity: a step on it whose e is a
 * plain id not in shown is not affecting. A mutation judged not affecting
 * leaves the result, and so shown, as they were; after any other, render
 * again to get the new shown.
 *
 * store (may be NULL; used only with shown) refines the id attrs of an
 * etype the query reaches only through links (never as a namespace of its
 * own nor on a where path): an entity of it can enter the result only
 * through a link, so a step on its id attr for an entity that is not shown
 * and has no link in that store (see struct query_reads_store) is not
 * affecting either. This is what lets an update of one entity leave alone
 * the queries that show other entities of its etype under their links. */
struct query_reads_store {
	/* Could some entity hold a triple (?, attr_id, eid) in the store the
	 * mutation is layered on (server store and pending mutations before
	 * it)? attr_id is a ref attr. "Could": false only when it cannot. */
	bool (*has_ref_to)(void *ud, const char *attr_id, const char *eid);
	/* Could eid hold any triple of an attr whose forward etype is etype
	 * there (so a reverse link from it)? */
	bool (*has_entity)(void *ud, const char *etype, const char *eid);
	void *ud;
};
bool query_reads_affected(const struct query_reads *r, const cJSON *tx_steps,
    const struct instaql_shown *shown, const struct query_reads_store *store);

/* A quick first test for judging one mutation against many queries: a
 * 256-bit filter of the attr ids its steps name. */
struct query_reads_filter {
	uint64_t w[4];
};
/* Summarise tx_steps under attrs (the attrs the queries' reads were computed
 * from). true when every step is one query_reads_affected judges by its attr
 * alone: an add-triple or retract-triple on a known attr, a
 * deep-merge-triple on a known blob attr, a rule-params, an add-attr of
 * an attr attrs hold as sent; then a query whose
 * reads share no bit with *ret is not affected (query_reads_may_touch).
 * false: use query_reads_affected. */
bool query_reads_steps_filter(const cJSON *tx_steps, const struct attrs *attrs,
    struct query_reads_filter *ret);
/* false only when no mutation summarised as f can affect the query. */
bool query_reads_may_touch(const struct query_reads *r, const struct query_reads_filter *f);

/* Does the query read attr_id? (For tests and diagnostics; an unknown id
 * gives false.) */
bool query_reads_attr(const struct query_reads *r, const char *attr_id);

#endif
