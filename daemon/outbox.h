/* outbox.h: a profile's queued writes: the group commit of accepted
 * transacts (pending_write -> mutation), sending them in order, replay after
 * a reconnect, confirmation (transact-ok), rejection, retiring confirmed
 * entries, and the app's read-only state as writes see it. Outbox entries
 * belong to their profile (p->outbox, p->writes); the database is the
 * record, the lists mirror it. */
#ifndef INSTANTD_OUTBOX_H
#define INSTANTD_OUTBOX_H

#include "daemon/core.h"

void mutation_free(struct mutation *m);			/* NULL-safe; m must be unlinked */
void pending_write_free(struct pending_write *w);	/* NULL-safe; w must be unlinked */
/* The entry with that mutation id, or NULL. */
struct mutation *mutation_find(struct profile *p, const char *mid);
/* Load the stored outbox into p->outbox at open. 0 or a negative errno. */
int profile_load_outbox(struct profile *p);

/* The group commit timer (p->flush): commit p->writes, acknowledge, pump.
 * Called directly to flush at shutdown. */
void profile_flush_cb(lws_sorted_usec_list_t *sul);
/* Send every unsent entry in order, when the profile can write. */
void profile_pump(struct profile *p);
/* Retire the confirmed entries every loaded result reflects (or that waited long enough). */
void profile_prune(struct profile *p);

/* Upstream transact-ok (msg borrowed): confirm, tell the writer, prune. */
void handle_transact_ok(struct profile *p, const cJSON *msg);
/* The server rejected m (err borrowed): record it and tell the writer. */
void mutation_fail(struct profile *p, struct mutation *m, const cJSON *err);
/* Tell m's writer that the app takes no writes now and m stays queued. */
void mutation_tell_read_only(struct profile *p, struct mutation *m);
/* A new app status (active, read-only, disabled); writers with queued
 * writes are told when it stops taking writes. */
void profile_set_app_status(struct profile *p, const char *st);

/* Replay progress: a session is up (count the backlog); m is settled. */
void replay_begin(struct profile *p);
void replay_resolved(struct profile *p, struct mutation *m);

/* New objects (caller owns): one entry as list-mutations shows it, and
 * {attr-id: "etype.label"} for the attrs the outbox names. */
cJSON *mutation_json(const struct mutation *m);
cJSON *mutations_attr_names(struct profile *p);

#endif
