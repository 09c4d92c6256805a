/* query.h: the queries of a profile, shared by every program that listens
 * to them and by one upstream subscription: find or create, evaluate with
 * the optimistic overlay (the outbox and the writes waiting for the group
 * commit), push results to listeners, the write-behind to the mirror, the
 * unsubscribe grace period. A query is rendered again only when its inputs
 * changed (its result, the attrs, a pending write it can depend on, judged
 * by store/reads.h); every other answer is its last render. A query belongs to its profile (p->queries),
 * a listener to its query and its client; both go with query_free /
 * listener_free. */
#ifndef INSTANTD_QUERY_H
#define INSTANTD_QUERY_H

#include "daemon/core.h"
#include "store/reads.h"

/* Find or create the shared query for qjson (borrowed), loading its
 * mirrored result; cancels a pending release. *ret is borrowed. 0 or -ENOMEM. */
int query_get(struct profile *p, const cJSON *qjson, struct query **ret);
/* By canonical key, or by the upstream client-event-id; NULL when not held. */
struct query *query_find(struct profile *p, const char *key);
struct query *query_find_ceid(struct profile *p, const char *ceid);
/* Persist a dirty result, drop every listener, unlink from p and free. NULL-safe. */
void query_free(struct query *q);
/* The query has a result of its own (from the server or the mirror). */
bool query_has_result(const struct query *q);

/* A new result from the server: keep it (mirrored by the write-behind); the
 * caller pushes. result and its triples are borrowed. */
void query_set_result(struct query *q, const cJSON *result, int64_t processed_tx_id);
/* Write a dirty result to the mirror now. */
void query_persist(struct query *q);
/* q's inputs changed wholesale (new attrs): its server store is rebuilt over
 * them on use, its view and reads are built again, and it is rendered again. */
void query_drop_base(struct query *q);

/* One queue entry (an outbox entry or a write awaiting its group commit) as
 * the optimistic views see it; borrows from the entry. */
struct mref {
	const cJSON *steps;		/* borrowed */
	int64_t tx_id;			/* 0 until confirmed */
	uint64_t ord;
	bool failed;
	bool filtered;			/* filter holds: see mref_filter */
	struct query_reads_filter filter;
};
struct mref mref_of(const struct mutation *m);
struct mref mref_of_write(const struct pending_write *w);
/* Summarise m's steps once before judging it against every query of p, so
 * that most queries are passed over in constant time. */
void mref_filter(const struct profile *p, struct mref *m);
/* A queue entry changed from before to after (NULL: not in the queue; call
 * before freeing it, after changing its state): every query it starts or
 * stops applying to is told, and rendered again where it can change the
 * result, directly or through a later pending write that may depend on it.
 * Schedules a push. */
void profile_on_write(struct profile *p, const struct mref *before, const struct mref *after);
/* The profile's attrs grew (a write made new ones): every query's reads are
 * computed again. */
void profile_reads_changed(struct profile *p);
/* Would retiring the confirmed m now change what q shows before q's result
 * reflects it? */
bool query_holds(struct query *q, const struct mref *m);

/* Send the upstream add-query when online and not yet sent on this session. */
void query_subscribe(struct query *q);
/* Send each listener what it has not seen yet. May free listeners (a
 * query-once answered) and schedule the release of q, never q itself. */
void query_push(struct query *q);
/* Push every query of p once in the next loop turn (coalesces many events). */
void profile_schedule_push(struct profile *p);
/* With no listener left, release q (unsubscribe, free) after the grace period. */
void query_maybe_release(struct query *q);
/* Unlink l from its query and client and free it; the caller releases the query. NULL-safe. */
void listener_free(struct listener *l);

/* instaml mode callbacks (ud = struct profile *): whether an entity, or a
 * lookup's attr-value, exists in any loaded query's server store. */
bool mode_entity_exists(void *ud, const char *etype, const char *eid);
bool mode_lookup_exists(void *ud, const char *attr, const cJSON *value);

#endif
