/* query.h: the queries of a profile, shared by every program that listens
 * to them and by one upstream subscription: find or create, evaluate with
 * the optimistic overlay (the outbox and the writes waiting for the group
 * commit), push results to listeners, the write-behind to the mirror, the
 * unsubscribe grace period. A query belongs to its profile (p->queries),
 * a listener to its query and its client; both go with query_free /
 * listener_free. */
#ifndef INSTANTD_QUERY_H
#define INSTANTD_QUERY_H

#include "daemon/core.h"

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
/* Forget the built server store (attrs or triples changed). */
void query_drop_base(struct query *q);

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
