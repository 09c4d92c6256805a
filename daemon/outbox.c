/* outbox.c: the outbox flow of a profile: group commit, send in order,
 * replay, confirm, fail, prune, and the app's read-only state (see outbox.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "daemon/upstream.h"
#include "store/attrs.h"
#include "store/db.h"
#include "store/util.h"

static void
profile_prune_cb(lws_sorted_usec_list_t *sul);

void
mutation_free(struct mutation *m)
{
	if (m == NULL)
		return;
	if (m->settle_tx_id > 0)
		LIST_REMOVE(m, settling);
	db_mutation_free(m->m);
	free(m->origin_ceid);
	free(m);
}

struct mutation *
mutation_find(struct profile *p, const char *mid)
{
	struct mutation *m;

	if (mid == NULL)
		return NULL;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (strcmp(m->m->mutation_id, mid) == 0)
			return m;
	return NULL;
}

/* Entity ids deleted by queued (pending or sent) writes, sorted; the strings
 * are borrowed from the outbox's steps. Built once per pump, when a replay
 * first needs it. */
struct deleted_ids {
	const char **ids;		/* owned array */
	size_t n;
	bool built;
};

static int
str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
deleted_ids_build(struct profile *p, struct deleted_ids *d)
{
	struct mutation *m;
	size_t cap = 0;

	TAILQ_FOREACH(m, &p->outbox, entry) {
		const cJSON *st;

		if (m->m->state != DB_MUT_PENDING && m->m->state != DB_MUT_SENT)
			continue;
		cJSON_ArrayForEach(st, m->m->steps) {
			const cJSON *e = cJSON_GetArrayItem(st, 1);
			const char *op = cJSON_IsString(cJSON_GetArrayItem(st, 0)) ?
			    cJSON_GetArrayItem(st, 0)->valuestring : "";

			if (strcmp(op, "delete-entity") != 0 || !cJSON_IsString(e))
				continue;
			if (d->n == cap) {
				size_t ncap = cap ? 2 * cap : 16;
				const char **ids = reallocarray(d->ids, ncap, sizeof(*ids));

				if (ids == NULL)
					return -ENOMEM;
				d->ids = ids;
				cap = ncap;
			}
			d->ids[d->n++] = e->valuestring;
		}
	}
	if (d->n > 1)
		qsort(d->ids, d->n, sizeof(*d->ids), str_ptr_cmp);
	d->built = true;
	return 0;
}

/* The server does not deduplicate (protocol.md 7.4): a replay runs again in
 * full if its first send committed unseen, so it must land the same data
 * whether that happened or not. Per step, a second run:
 *   - add-triple / deep-merge-triple without mode or with "upsert", links
 *     (add-triple on a ref), retract-triple (unlink: a missing link is a
 *     no-op), delete-entity (a missing entity is a no-op), rule-params and
 *     an identical add-attr converge to the same state: sent unchanged;
 *   - mode "create" fails ("Creating entities that exist"): sent as an
 *     upsert, which lands the same data either way;
 *   - mode "update" fails ("Updating entities that don't exist") when a
 *     queued delete of that entity (later, or in the same transaction, since
 *     the server runs add-triples before deletes) ran after the first send:
 *     for such an entity it is sent as an upsert; the queued delete runs
 *     again after it, so the entity ends deleted either way. Other updates
 *     keep the mode, so an update of an entity someone else deleted still
 *     fails as it would have the first time.
 * A new copy (caller owns) or NULL when out of memory. */
static cJSON *
steps_for_replay(struct profile *p, const cJSON *steps, struct deleted_ids *dels)
{
	cJSON *copy = cJSON_Duplicate(steps, 1), *st;

	if (copy == NULL)
		return NULL;
	cJSON_ArrayForEach(st, copy) {
		const cJSON *e = cJSON_GetArrayItem(st, 1);
		const char *mode;

		if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) != 5)
			continue;
		mode = json_get_string(cJSON_GetArrayItem(st, 4), "mode");
		if (mode == NULL)
			continue;
		if (strcmp(mode, "update") == 0) {
			if (!cJSON_IsString(e))
				continue;
			if (!dels->built && deleted_ids_build(p, dels) < 0) {
				cJSON_Delete(copy);
				return NULL;
			}
			if (dels->n == 0 || bsearch(&e->valuestring, dels->ids, dels->n,
			    sizeof(*dels->ids), str_ptr_cmp) == NULL)
				continue;
		} else if (strcmp(mode, "create") != 0) {
			continue;
		}
		cJSON_DeleteItemFromArray(st, 4);
	}
	return copy;
}

static bool
mutation_unsent(const struct mutation *m)
{
	return !m->sent && (m->m->state == DB_MUT_PENDING || m->m->state == DB_MUT_SENT);
}

/* Before an entry is first sent, the database must know that it may reach
 * the server: otherwise a crash after the send (its transact-ok lost) would
 * resend it after the restart as a first send, and a create would fail
 * although it is on the server. The marks of a whole pump go in one commit
 * (writes sent as soon as they are committed are marked in their group
 * commit instead, profile_flush_cb). A mark whose send then did not happen
 * (the session broke, or a crash right after the commit) errs on the safe
 * side: that write replays after a restart although it was never sent.
 * Treating every entry found at start-up as possibly sent would be simpler
 * but is not equivalent: writes queued offline, never sent, would lose the
 * create check on their first send. */
static int
profile_mark_unsent(struct profile *p)
{
	_cleanup_free_ const char **ids = NULL;
	struct mutation *m;
	size_t n = 0, i = 0;
	int r;

	TAILQ_FOREACH(m, &p->outbox, entry)
		if (mutation_unsent(m) && !m->marked)
			n++;
	if (n == 0)
		return 0;
	ids = calloc(n, sizeof(*ids));
	if (ids == NULL)
		return -ENOMEM;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (mutation_unsent(m) && !m->marked)
			ids[i++] = m->m->mutation_id;
	r = db_outbox_mark_sent(p->db, ids, n);
	if (r < 0)
		return r;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (mutation_unsent(m))
			m->marked = true;
	return 0;
}

/* Send every unsent entry, in outbox order. */
void
profile_pump(struct profile *p)
{
	struct deleted_ids dels = { 0 };
	struct mutation *m;
	int r;

	if (!profile_can_write(p))
		return;
	r = profile_mark_unsent(p);
	if (r < 0) {
		/* Nothing is sent unmarked; the flush timer pumps again. */
		log_warn("%s: cannot record that queued writes are being sent (%s); "
		    "they stay queued, retrying in a second", p->name, strerror(-r));
		if (!p->flush_armed) {
			lws_sul_schedule(p->s->ctx, 0, &p->flush, profile_flush_cb, LWS_US_PER_SEC);
			p->flush_armed = true;
		}
		return;
	}
	TAILQ_FOREACH(m, &p->outbox, entry) {
		_cleanup_json_ cJSON *msg = NULL;
		cJSON *steps;

		if (!mutation_unsent(m))
			continue;
		steps = m->ever_sent ? steps_for_replay(p, m->m->steps, &dels) :
		    cJSON_Duplicate(m->m->steps, 1);
		msg = reply_new("transact", m->m->mutation_id);
		if (steps == NULL || msg == NULL) {
			cJSON_Delete(steps);
			log_warn("%s: out of memory sending queued writes", p->name);
			break;
		}
		cJSON_AddItemToObject(msg, "tx-steps", steps);
		cJSON_AddNumberToObject(msg, "created", (double)m->m->created_ms);
		cJSON_AddItemToObject(msg, "order", json_new_int64(m->m->seq));
		if (upstream_send(p->up, msg) < 0)
			break;
		m->sent = true;
		m->ever_sent = true;
		m->sent_us = mono_us();
		m->m->state = DB_MUT_SENT;
	}
	free(dels.ids);
}

/* The server sends refresh-ok only for results that changed, so a confirmed
 * write that a loaded query still layers would wait forever if the result
 * it can change did not: after this long it is retired anyway (the JS
 * client has a similar backstop). */
#define CONFIRMED_GRACE_US (5 * LWS_US_PER_SEC)

/* Does some query's render still need m, confirmed as x (query_holds)? */
static bool
profile_holds(struct profile *p, struct mref *x)
{
	struct query *q;

	mref_filter(p, x);
	TAILQ_FOREACH(q, &p->queries, entry)
		if (query_holds(q, x))
			return true;
	return false;
}

/* m left the outbox in the database: take it out of memory and of every view. */
static void
mutation_retired(struct profile *p, struct mutation *m)
{
	struct mref x = mref_of(m);

	profile_on_write(p, &x, NULL);
	TAILQ_REMOVE(&p->outbox, m, entry);
	mutation_free(m);
}

/* Remove a confirmed write from the outbox, and from every view holding it. */
static int
mutation_retire(struct profile *p, struct mutation *m)
{
	int r;

	r = db_outbox_remove(p->db, m->m->mutation_id);
	if (r < 0) {
		log_warn("%s: cannot remove a confirmed write: %s", p->name, strerror(-r));
		return r;
	}
	mutation_retired(p, m);
	return 0;
}

static void
profile_arm_prune(struct profile *p)
{
	if (lws_dll2_is_detached(&p->prune.list))
		lws_sul_schedule(p->s->ctx, 0, &p->prune, profile_prune_cb, LWS_US_PER_SEC);
}

/* A confirmed entry leaves the outbox as soon as no query needs it
 * (profile_holds): at once when no loaded result layers it or none of them
 * can show it, else once those results reflect it (processed-tx-id >=
 * tx-id), or after CONFIRMED_GRACE_US. */
void
profile_prune(struct profile *p)
{
	struct mutation *m, *next;
	int64_t now = mono_us();
	bool waiting = false;

	for (m = TAILQ_FIRST(&p->outbox); m; m = next) {
		struct mref x = mref_of(m);

		next = TAILQ_NEXT(m, entry);
		if (m->m->state != DB_MUT_CONFIRMED)
			continue;
		if (now - m->confirmed_us < CONFIRMED_GRACE_US && profile_holds(p, &x)) {
			waiting = true;
			continue;
		}
		if (mutation_retire(p, m) < 0)
			return;
	}
	if (waiting)
		profile_arm_prune(p);
}

static void
profile_prune_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, prune);

	profile_prune(p);
	profile_status_changed(p);
}

/* m is confirmed as tx_id in the database (kept, or removed when retire):
 * now in memory too, and its program is told. */
static void
mutation_confirmed(struct profile *p, struct mutation *m, int64_t tx_id, bool retire)
{
	struct log_fields lf = { .profile = p->name, .app_id = p->app_id,
	    .mutation_id = m->m->mutation_id, .op = "transact-ok" };
	struct mref before = mref_of(m), after;

	m->m->state = DB_MUT_CONFIRMED;
	m->m->tx_id = tx_id;
	m->confirmed_us = mono_us();
	after = mref_of(m);
	/* no longer layered on a result whose processed-tx-id is 0 or >= tx_id */
	profile_on_write(p, &before, &after);
	log_structured(LOG_DEBUG, &lf, "write confirmed as tx %" PRId64, tx_id);
	replay_resolved(p, m);
	if (m->origin) {
		_cleanup_json_ cJSON *out = reply_new("transact-ok", m->origin_ceid);

		cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
		cJSON_AddItemToObject(out, "tx-id", json_new_int64(tx_id));
		client_send(m->origin, out);
	}
	/* After a transact-ok only m can have become removable (the others
	 * change on a result or with time, which profile_prune handles), so a
	 * stream of confirmations does not rescan the outbox each time. */
	if (retire)
		mutation_retired(p, m);
	else
		profile_arm_prune(p);
}

/* Record every confirmation that came in this loop turn in one durable
 * commit (a confirmed write must never be replayed, so its program hears
 * of it only after that), then apply them in outbox order. A write that no
 * query needs any more is deleted in the same commit instead. If the commit
 * fails the writes stay as they were and are replayed, which is safe. */
static int
mutation_ord_cmp(const void *a, const void *b)
{
	uint64_t x = (*(struct mutation *const *)a)->ord, y = (*(struct mutation *const *)b)->ord;

	return x < y ? -1 : x > y;
}

static void
profile_settle_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, settle);
	_cleanup_free_ struct mutation **ms = NULL;
	_cleanup_free_ struct db_settle *v = NULL;
	struct mutation *m;
	size_t n = 0;
	int r;

	LIST_FOREACH(m, &p->settling, settling)
		n++;
	if (n == 0)
		return;
	ms = calloc(n, sizeof(*ms));
	v = calloc(n, sizeof(*v));
	if (ms == NULL || v == NULL) {
		log_warn("%s: out of memory recording confirmations; retrying", p->name);
		lws_sul_schedule(p->s->ctx, 0, &p->settle, profile_settle_cb, LWS_US_PER_SEC);
		return;
	}
	n = 0;
	while ((m = LIST_FIRST(&p->settling))) {
		LIST_REMOVE(m, settling);
		ms[n++] = m;
	}
	qsort(ms, n, sizeof(*ms), mutation_ord_cmp);	/* outbox order */
	for (size_t i = 0; i < n; i++) {
		struct mref x = mref_of(ms[i]);

		x.tx_id = ms[i]->settle_tx_id;
		ms[i]->settle_tx_id = 0;	/* out of the set */
		v[i] = (struct db_settle){ .mutation_id = ms[i]->m->mutation_id, .tx_id = x.tx_id,
		    .remove = !profile_holds(p, &x) };
	}
	r = db_outbox_settle(p->db, v, n);
	if (r < 0) {
		log_warn("%s: recording %zu confirmations failed: %s", p->name, n, strerror(-r));
		return;
	}
	/* Only ms[i] itself can leave the outbox in its turn, so the rest stay valid. */
	for (size_t i = 0; i < n; i++)
		mutation_confirmed(p, ms[i], v[i].tx_id, v[i].remove);
	profile_status_changed(p);
}

void
handle_transact_ok(struct profile *p, const cJSON *msg)
{
	struct mutation *m = mutation_find(p, json_get_string(msg, "client-event-id"));
	int64_t tx_id = 0;

	if (m == NULL || m->m->state == DB_MUT_CONFIRMED || m->settle_tx_id > 0)
		return;		/* late or duplicate: already settled */
	if (json_get_int64(json_get(msg, "tx-id"), &tx_id) < 0 || tx_id <= 0) {
		log_warn("%s: transact-ok without a valid tx-id", p->name);
		return;
	}
	m->settle_tx_id = tx_id;
	LIST_INSERT_HEAD(&p->settling, m, settling);
	if (lws_dll2_is_detached(&p->settle.list))
		lws_sul_schedule(p->s->ctx, 0, &p->settle, profile_settle_cb, 1);
}

void
mutation_fail(struct profile *p, struct mutation *m, const cJSON *err)
{
	_cleanup_free_ char *etext = json_print(err);
	struct log_fields lf = { .profile = p->name, .app_id = p->app_id,
	    .mutation_id = m->m->mutation_id, .op = "transact" };
	struct mref before = mref_of(m);
	int r;

	r = db_outbox_set_state(p->db, m->m->mutation_id, DB_MUT_FAILED, 0, etext);
	if (r < 0)
		log_warn("%s: recording a rejection failed: %s", p->name, strerror(-r));
	m->m->state = DB_MUT_FAILED;
	free(m->m->error);
	m->m->error = etext ? strdup(etext) : NULL;
	m->sent = false;
	profile_on_write(p, &before, NULL);
	replay_resolved(p, m);
	log_structured(LOG_NOTICE, &lf, "the server rejected a write: %s",
	    json_get_string(err, "message") ? json_get_string(err, "message") : "no message");
	if (m->origin) {
		_cleanup_json_ cJSON *out = reply_new("error", m->origin_ceid);
		const char *type = json_get_string(err, "type");

		cJSON_AddStringToObject(out, "type", type && strcmp(type, "permission-denied") == 0 ?
		    "permission-denied" : "server-error");
		cJSON_AddStringToObject(out, "message", json_get_string(err, "message") ?
		    json_get_string(err, "message") : "the server rejected the write");
		cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
		if (type)
			cJSON_AddStringToObject(out, "server-type", type);
		if (json_get(err, "hint"))
			cJSON_AddItemToObject(out, "hint", cJSON_Duplicate(json_get(err, "hint"), 1));
		client_send(m->origin, out);
	}
	profile_status_changed(p);
}

/* A write the app cannot take now stays queued (it is sent once the app
 * accepts writes again, or can be discarded); its writer is told so with an
 * app-read-only error that carries the mutation-id and "queued": true. */
void
mutation_tell_read_only(struct profile *p, struct mutation *m)
{
	_cleanup_json_ cJSON *out = NULL;

	if (m->origin == NULL)
		return;
	out = reply_new("error", m->origin_ceid);
	cJSON_AddStringToObject(out, "type", "app-read-only");
	cJSON_AddStringToObject(out, "message", p->app_status && strcmp(p->app_status, "disabled") == 0 ?
	    "the app is disabled and accepts no writes: the write stays queued until it accepts them "
	    "again (discard-mutation drops it)" :
	    "the app is read-only: the write stays queued until it accepts writes again "
	    "(discard-mutation drops it)");
	cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
	cJSON_AddBoolToObject(out, "queued", true);
	client_send(m->origin, out);
}

/* When the app stops taking writes, every writer with a write still queued
 * is told (once per change, not on every reconnect). */
void
profile_set_app_status(struct profile *p, const char *st)
{
	bool was_writable = profile_app_writable(p);
	struct mutation *m;

	free(p->app_status);
	p->app_status = strdup(st);
	if (!was_writable || profile_app_writable(p))
		return;
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (m->m->state == DB_MUT_PENDING || m->m->state == DB_MUT_SENT)
			mutation_tell_read_only(p, m);
}

void
pending_write_free(struct pending_write *w)
{
	if (w == NULL)
		return;
	db_mutation_free(w->m);
	free(w->ceid);
	free(w);
}

/* Commit every write accepted since the last flush in one transaction, then
 * acknowledge them: nothing is acknowledged before its commit returns. */
void
profile_flush_cb(lws_sorted_usec_list_t *sul)
{
	struct profile *p = lws_container_of(sul, struct profile, flush);
	struct pending_write *w;
	struct db_mutation **batch;
	bool sending;
	size_t n = 0, i = 0;
	int r;

	p->flush_armed = false;
	TAILQ_FOREACH(w, &p->writes, entry)
		n++;
	if (n == 0) {
		/* Armed by profile_pump to retry after a failed mark. */
		profile_pump(p);
		return;
	}
	batch = calloc(n, sizeof(*batch));
	if (batch == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	/* Online, profile_pump below sends the batch at once: it is stored as
	 * sent in this commit, which saves the pump a second fsync. */
	sending = profile_can_write(p);
	TAILQ_FOREACH(w, &p->writes, entry) {
		batch[i++] = w->m;
		if (sending)
			w->m->state = DB_MUT_SENT;
	}
	r = db_outbox_append(p->db, batch, n);
	free(batch);
	if (r < 0)
		goto fail;
	while ((w = TAILQ_FIRST(&p->writes))) {
		struct mutation *m = calloc(1, sizeof(*m));

		TAILQ_REMOVE(&p->writes, w, entry);
		if (m == NULL) {
			/* Committed but not tracked in memory: it replays after a restart. */
			struct mref x = mref_of_write(w);

			profile_on_write(p, &x, NULL);
			pending_write_free(w);
			continue;
		}
		m->m = TAKE_PTR(w->m);
		m->ord = w->ord;	/* the same place in the queue: no view changes */
		m->marked = sending;
		m->m->state = DB_MUT_PENDING;	/* in memory: not sent yet */
		m->origin = w->origin;
		m->origin_ceid = TAKE_PTR(w->ceid);
		TAILQ_INSERT_TAIL(&p->outbox, m, entry);
		if (m->origin) {
			_cleanup_json_ cJSON *out = reply_new("transact-queued", m->origin_ceid);

			cJSON_AddStringToObject(out, "mutation-id", m->m->mutation_id);
			cJSON_AddItemToObject(out, "seq", json_new_int64(m->m->seq));
			client_send(m->origin, out);
			if (!profile_app_writable(p))
				mutation_tell_read_only(p, m);
		}
		pending_write_free(w);
	}
	profile_pump(p);
	profile_status_changed(p);
	return;
fail:
	while ((w = TAILQ_FIRST(&p->writes))) {
		struct mref x = mref_of_write(w);

		/* its effect leaves every result again */
		profile_on_write(p, &x, NULL);
		TAILQ_REMOVE(&p->writes, w, entry);
		if (w->origin)
			client_error(w->origin, w->ceid, r == -ENOSPC ? "storage-full" : "internal",
			    r == -ENOSPC ? "the write could not be stored: the disk is full" :
			    "the write could not be stored: %s", strerror(-r));
		pending_write_free(w);
	}
	log_error("%s: storing writes failed: %s", p->name, strerror(-r));
}

int
profile_load_outbox(struct profile *p)
{
	struct db_mutation **list = NULL;
	size_t n = 0;
	int r;

	r = db_outbox_list(p->db, ~0u, &list, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct mutation *m = calloc(1, sizeof(*m));

		if (m == NULL) {
			db_mutation_list_free(list + i, n - i);
			free(list);	/* the array itself */
			return -ENOMEM;
		}
		m->m = list[i];
		m->ord = ++p->next_ord;
		/* Confirmed before a restart: keep layering it until results catch up. */
		if (m->m->state == DB_MUT_CONFIRMED)
			m->confirmed_us = mono_us();
		/* Sent before the restart (db_outbox_mark_sent), rejected by the
		 * server (so sent), or set aside by recovery (maybe sent): a resend
		 * may repeat it, exactly as within one run, where ever_sent
		 * outlives a rejection. */
		if (m->m->state == DB_MUT_SENT || m->m->state == DB_MUT_FAILED) {
			m->ever_sent = true;
			m->marked = true;
		}
		if (m->m->state == DB_MUT_SENT)
			m->m->state = DB_MUT_PENDING;	/* not sent in this session */
		TAILQ_INSERT_TAIL(&p->outbox, m, entry);
		list[i] = NULL;
	}
	free(list);
	return 0;
}

cJSON *
mutation_json(const struct mutation *m)
{
	cJSON *o = cJSON_CreateObject();
	const char *st;

	cJSON_AddStringToObject(o, "mutation-id", m->m->mutation_id);
	cJSON_AddItemToObject(o, "seq", json_new_int64(m->m->seq));
	st = db_mut_state_to_string(m->m->state);
	cJSON_AddStringToObject(o, "state", st ? st : "unknown");
	if (m->m->tx_id)
		cJSON_AddItemToObject(o, "tx-id", json_new_int64(m->m->tx_id));
	if (m->m->ops)
		cJSON_AddItemToObject(o, "ops", cJSON_Duplicate(m->m->ops, 1));
	cJSON_AddItemToObject(o, "tx-steps", cJSON_Duplicate(m->m->steps, 1));
	if (m->m->error) {
		cJSON *e = cJSON_Parse(m->m->error);

		cJSON_AddItemToObject(o, "error", e ? e : cJSON_CreateString(m->m->error));
	}
	cJSON_AddNumberToObject(o, "created", (double)m->m->created_ms);
	cJSON_AddNumberToObject(o, "updated", (double)m->m->updated_ms);
	if (m->m->origin)
		cJSON_AddStringToObject(o, "origin", m->m->origin);
	return o;
}

/* A session is up: the writes waiting to be sent are the backlog it replays
 * (a reconnect during a replay adds what is not counted yet). */
void
replay_begin(struct profile *p)
{
	struct mutation *m;
	size_t n = 0;

	if (!profile_can_write(p))
		return;		/* nothing is sent: no progress to show */
	TAILQ_FOREACH(m, &p->outbox, entry)
		if (!m->replaying && (m->m->state == DB_MUT_PENDING || m->m->state == DB_MUT_SENT)) {
			m->replaying = true;
			n++;
		}
	if (n == 0)
		return;
	if (p->replay_total == 0) {
		p->replay_done = 0;
		p->replay_start_us = mono_us();
	}
	p->replay_total += n;
	log_info("%s: replaying %zu queued writes", p->name, p->replay_total - p->replay_done);
}

/* m was confirmed, rejected or discarded: one more of the backlog is done. */
void
replay_resolved(struct profile *p, struct mutation *m)
{
	if (!m->replaying)
		return;
	m->replaying = false;
	if (++p->replay_done < p->replay_total)
		return;
	log_info("%s: replay finished: %zu writes in %.1f s", p->name, p->replay_total,
	    (double)(mono_us() - p->replay_start_us) / 1e6);
	p->replay_total = p->replay_done = 0;
}

/* {attr-id: "etype.label"} for the attrs the outbox's tx-steps name, so a
 * person reads what a write does. */
cJSON *
mutations_attr_names(struct profile *p)
{
	cJSON *names = cJSON_CreateObject();
	struct mutation *m;
	const cJSON *st;

	TAILQ_FOREACH(m, &p->outbox, entry)
		cJSON_ArrayForEach(st, m->m->steps) {
			const cJSON *aid = cJSON_GetArrayItem(st, 2);
			const cJSON *attr;
			char *name = NULL;

			if (!cJSON_IsString(aid) || json_get(names, aid->valuestring))
				continue;
			attr = attrs_by_id(p->attrs, aid->valuestring);
			if (attr == NULL || !attr_fwd_etype(attr) || !attr_fwd_label(attr) ||
			    asprintf(&name, "%s.%s", attr_fwd_etype(attr),
			    attr_fwd_label(attr)) < 0)
				continue;
			cJSON_AddStringToObject(names, aid->valuestring, name);
			free(name);
		}
	return names;
}
