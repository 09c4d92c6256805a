/* The local InstaQL engine: evaluates a query on one query's triple store
 * (struct tstore) the way @instantdb/core 1.0.67 does (client-semantics.md
 * sections 2, 3 and 5.4), plus the optimistic overlay helper. Deliberate
 * departures from the JS client are listed in store/QUERY-DIFFERENCES.md. */
#ifndef INSTANTD_INSTAQL_H
#define INSTANTD_INSTAQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/attrs.h"
#include "store/tstore.h"

/* Evaluate `q` (an InstaQL query object) on s.
 * On success returns 0, *ret_data is a new object owned by the caller: the
 * `data` the SDK's subscribeQuery gives ({"goals":[{...}]}), and
 * *ret_page_info (if ret_page_info is not NULL) is NULL, because without the
 * server's page-info the SDK gives no pageInfo (see instaql_eval_opts).
 * On an invalid query returns -EINVAL and *ret_err (malloc'd, caller frees;
 * ret_err may be NULL) names the part of the query at fault, e.g.
 * "users.$.where.handle: null is not a valid where value" or
 * "users.$.where.handle.foo: handle is not a link of users (attr ... is not a ref)".
 * A query whose joins would produce more than 4 million intermediate rows
 * also fails with -EINVAL ("query too large ...").
 * -ENOMEM otherwise. Outputs are written only on success.
 * Evaluation does not change the store's contents. */
int instaql_eval(struct tstore *s, const cJSON *q, cJSON **ret_data,
    cJSON **ret_page_info, char **ret_err);

/* What the server sent beside its result, which the JS client uses when it
 * evaluates a query locally. All borrowed, all may be NULL. */
struct instaql_opts {
	/* The "page-info" of add-query-ok / refresh-ok (result[0].data["page-info"]),
	 * wire form, keyed by top-level query key:
	 * {"goals": {"start-cursor": [e,a,v,t], "end-cursor": [...],
	 *            "has-next-page?": b, "has-previous-page?": b}}.
	 * It does three things, as in the JS client: a non-leading top-level
	 * namespace (one with offset, before or after) is [] without its
	 * start-cursor and is limited to the entities between the cursors with
	 * it (the values of offset/before/after themselves are not used); the
	 * start cursor's attr becomes the order attr, leading or not; and
	 * *ret_page_info becomes its camelCase form
	 * {"goals": {"startCursor", "endCursor", "hasNextPage", "hasPreviousPage"}}. */
	const cJSON *page_info;
	/* The server's "aggregate" map: its top-level keys with a truthy value are
	 * left out of data (the caller passes the aggregate through itself). */
	const cJSON *aggregate;
	/* Cardinality inference, only when the caller has a schema: the JS
	 * client's linkIndex, {etype: {label: {"isSingular": bool, ...}}}. A link
	 * whose entry has isSingular true gives its first child object (or no key
	 * at all) instead of an array. NULL: every link gives an array. */
	const cJSON *link_index;
	/* Output, may be NULL: filled with the entities the render shows. */
	struct instaql_shown *shown;
};

/* The ids of the entities a render shows in any namespace, nested or not
 * (the entities whose objects are in data), for query_reads_affected
 * (store/reads.h). Owned by the caller, zero-initialised; a render that
 * fails leaves it empty. Only string ids are kept (no step names another). */
struct instaql_shown {
	char **ids;	/* sorted, unique, each malloc'd */
	size_t n, cap;
};
void instaql_shown_clear(struct instaql_shown *sh);	/* frees the ids; reusable after */
bool instaql_shown_has(const struct instaql_shown *sh, const char *id);

/* The page-info and aggregate maps a wire result carries
 * (result[0].data["page-info"] / ["aggregate"], as the JS client reads them
 * from add-query-ok "result" and refresh-ok "instaql-result"); borrowed from
 * result, NULL when absent. */
const cJSON *instaql_result_page_info(const cJSON *result);
const cJSON *instaql_result_aggregate(const cJSON *result);

/* instaql_eval with the server's page-info / aggregate and a link index.
 * *ret_page_info is the formatted page-info when opts->page_info is given,
 * else NULL. opts may be NULL. */
int instaql_eval_opts(struct tstore *s, const cJSON *q,
    const struct instaql_opts *opts, cJSON **ret_data, cJSON **ret_page_info,
    char **ret_err);

/* Shape check without a store: q is an object of namespaces; each namespace
 * value is an object whose "$" (if any) has only the keys where, order,
 * limit, first, last, offset, after, afterInclusive, before,
 * beforeInclusive, fields, aggregate with sane types; where values are not
 * null and operator objects use known operators with valid arguments;
 * and/or take arrays of objects. 0 or -EINVAL with *ret_err naming the part at
 * fault (ret_err may be NULL), -ENOMEM. The checks that need attrs (a where
 * path through a non-link attr, a nested key that is a blob attr) are made by
 * instaql_eval. */
int instaql_validate(const cJSON *q, char **ret_err);

/* The optimistic overlay (client-semantics.md 5.4, protocol.md 7.2).
 *
 * Suggested use: keep one struct tstore per subscribed query (or one per
 * profile), built from its last add-query-ok / refresh-ok with the attrs of
 * that moment, and render with instaql_eval_base, which evaluates it
 * directly when no mutation applies, else layers the selected mutations on
 * a copy. store/reads.h tells which renders a new mutation can change.
 *
 * Which pending mutations to layer on a query's store: every mutation, in
 * outbox order ((order, event-id) in the JS client), that
 *   - has no tx-id yet (tx_id == 0: queued, or sent but not confirmed), or
 *   - has a tx-id greater than the query result's processed-tx-id, when that
 *     processed-tx-id is not 0 (a result with processed-tx-id >= tx-id
 *     already contains the mutation).
 * A confirmed mutation is therefore not layered on a result whose
 * processed-tx-id is 0 / unknown, exactly as the JS client behaves.
 * Each mutation is applied by its own tstore_apply_steps() call, so the
 * create/update mode filter is judged per mutation. */
bool instaql_mutation_applies(int64_t tx_id, int64_t processed_tx_id);

struct instaql_mutation {
	const cJSON *tx_steps;	/* borrowed: the (rewritten) tx-steps array */
	int64_t tx_id;		/* 0 while unconfirmed */
};

/* The render of one query from a store shared by several queries (the
 * profile's mirrored triples, or a query's server store): apply those of
 * muts[0..n_muts) that instaql_mutation_applies() selects against
 * processed_tx_id, in order, to a private tstore_dup copy of base, then
 * evaluate q with opts; with no mutation to apply, evaluate base itself.
 * base is never changed. Outputs and errors as instaql_eval_layered, and
 * *ret_applied (ret_applied may be NULL) is the number of mutations applied.
 * flags: INSTAQL_SKIP_FAILING leaves out a mutation whose steps fail
 * (-EINVAL) instead of failing the render as the JS client does (what the
 * daemon did before; a cascade too deep may then have left part of it). */
#define INSTAQL_SKIP_FAILING 1u
int instaql_eval_base(struct tstore *base, const struct instaql_mutation *muts, size_t n_muts,
    int64_t processed_tx_id, unsigned flags, const cJSON *q, const struct instaql_opts *opts,
    size_t *ret_applied, cJSON **ret_data, cJSON **ret_page_info, char **ret_err);

/* The whole render of one query in one call: build a store over a copy of
 * `attrs` from `triples` (an array of triples) or, if triples is NULL, from
 * `result` (a wire result tree); apply those of muts[0..n_muts) that
 * instaql_mutation_applies() selects against processed_tx_id, in order; then
 * evaluate q with opts. Outputs and errors as instaql_eval_opts; a mutation
 * whose steps fail makes the whole call fail with -EINVAL and an error
 * naming the mutation index ("mutation 2: step 0: ..."), as the JS client's
 * query fails. */
int instaql_eval_layered(const struct attrs *attrs, const cJSON *triples,
    const cJSON *result, const struct instaql_mutation *muts, size_t n_muts,
    int64_t processed_tx_id, const cJSON *q, const struct instaql_opts *opts,
    cJSON **ret_data, cJSON **ret_page_info, char **ret_err);

#endif
