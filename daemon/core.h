/* core.h: the sync core's shared types (profiles, queries and their
 * listeners, the outbox, programs, sign-in calls) and the reply helpers.
 * For the core's modules only (profile, query, outbox, session, ops*, sync);
 * everything else goes through sync.h.
 *
 * Ownership: a struct sync owns its profiles, clients and auth calls; a
 * profile owns its queries, outbox entries and pending writes; a query owns
 * its listeners. Pointers marked borrowed are owned by one of those lists.
 * The loop is single-threaded: no locking anywhere in the core. */
#ifndef INSTANTD_CORE_H
#define INSTANTD_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <libwebsockets.h>
#include <cjson/cJSON.h>

#include "daemon/sync.h"
#include "ipc/ipc-protocol.h"
#include "store/db.h"
#include "store/instaql.h"

struct attrs;
struct auth_request;
struct query_reads;
struct rooms;
struct tstore;
struct tstore_values;
struct upstream;

struct client;
struct profile;
struct query;

/* An outbox entry as the loop sees it; mirrors one row of the outbox table. */
struct mutation {
	TAILQ_ENTRY(mutation) entry;
	struct db_mutation *m;		/* owned */
	bool sent;			/* sent on the current upstream session */
	bool ever_sent;			/* may have reached the server: a resend is a replay */
	bool marked;			/* the database knows it may have been sent */
	int64_t sent_us;		/* monotonic time of the last send */
	int64_t confirmed_us;		/* monotonic time of transact-ok */
	int64_t settle_tx_id;		/* > 0: transact-ok came, its commit is due (profile.settle) */
	LIST_ENTRY(mutation) settling;	/* in profile.settling while settle_tx_id > 0 */
	struct client *origin;		/* borrowed; cleared when that program goes */
	char *origin_ceid;		/* owned: the app's client-event-id of the transact */
	bool replaying;			/* part of the backlog counted by profile.replay_total */
	uint64_t ord;			/* queue position (profile.next_ord): outbox, then writes */
};
TAILQ_HEAD(mutation_list, mutation);
LIST_HEAD(mutation_set, mutation);

/* A transact accepted but not yet committed (group commit). */
struct pending_write {
	TAILQ_ENTRY(pending_write) entry;
	struct db_mutation *m;		/* owned until appended to the outbox */
	struct client *origin;		/* borrowed; cleared when the program goes */
	char *ceid;			/* owned */
	uint64_t ord;			/* kept by its outbox entry */
};
TAILQ_HEAD(pending_write_list, pending_write);

/* One program's interest in one query. */
struct listener {
	LIST_ENTRY(listener) by_query;
	LIST_ENTRY(listener) by_client;
	struct query *q;		/* borrowed */
	struct client *c;		/* borrowed */
	char *ceid;			/* owned: the add-query's client-event-id */
	bool answered;			/* add-query-ok sent */
	int once;			/* 0, or the query-once policy it waits for */
	bool sent_any;			/* last_hash is valid */
	bool no_partial;		/* "allow-partial": false: never answered from the whole mirror */
	uint64_t last_hash;		/* of the last result sent, to skip unchanged ones */
	lws_sorted_usec_list_t timeout;	/* a query-once's timeout-ms */
	bool triples;			/* "format": "triples": the optimistic triples, not data */
	uint64_t attrs_hash;		/* triples: of the attrs last sent with a result (0: none) */
};
LIST_HEAD(listener_list, listener);

enum once_policy { ONCE_NONE, ONCE_CACHE_FIRST, ONCE_NETWORK_ONLY, ONCE_CACHE_ONLY };

/* A distinct query of a profile, shared by all its listeners and by one
 * upstream subscription. */
struct query {
	TAILQ_ENTRY(query) entry;
	struct profile *p;		/* borrowed: owner */
	char *key;			/* owned: canonical JSON of q */
	cJSON *q;			/* owned */
	cJSON *page_info;		/* owned, may be NULL */
	struct tstore *base;		/* owned: the server's result, the one form it is held in
					 * (the mirror is printed from it); NULL before any result */
	bool base_stale;		/* base was built over attrs since changed: rebuilt on use */
	bool base_current;		/* base is over p->attrs as they are now (none grew in
					 * place since): a new store may share its attrs */
	/* The optimistic view: base with every pending write that applies to
	 * this result (instaql_mutation_applies) up to queue position view_ord
	 * applied, in order; NULL while none is (then base is the view).
	 * view_ord 0: build it again from base. */
	struct tstore *view;		/* owned */
	uint64_t view_ord;
	struct query_reads *reads;	/* owned: what the result depends on, NULL = not known yet */
	bool reads_failed;		/* could not be computed: every write affects q */
	/* Pending writes that apply to this result and can change it, judged by
	 * reads alone (has-pending-writes), and the queue position of the last
	 * one that can change the render, judged by the entities it shows (an
	 * upper bound: a later write may depend on an earlier). */
	size_t n_aff;
	uint64_t last_aff;
	bool stale;			/* inputs changed since the last render */
	bool by_server;			/* stale by new server results alone: a costly render may
					 * wait its turn (query.c, pacing); a program's write never does */
	int64_t render_us, render_end_us;	/* the last render's cost and end (mono_us) */
	bool rendered;			/* the fields below hold the last render */
	bool rendered_partial;
	bool rendered_pending;		/* has-pending-writes of a partial render */
	int render_r;			/* 0, or the render's error (render_err says it) */
	char *render_err;		/* owned */
	char *data_text, *pi_text;	/* owned: printed data and page-info (may be NULL) */
	size_t data_len;		/* strlen(data_text): what the next render will roughly cost */
	uint64_t data_hash;		/* of data_text and pi_text */
	struct instaql_shown shown;	/* the entities the last render shows */
	int64_t processed_tx_id;
	bool fresh;			/* result came on the current upstream session */
	bool dirty;			/* result not yet written to the mirror */
	bool subscribed;		/* add-query sent on the current session */
	char ceid[37];			/* upstream client-event-id, kept across reconnects */
	struct listener_list listeners;
	lws_sorted_usec_list_t grace;	/* pending upstream remove-query */
};
TAILQ_HEAD(query_list, query);

/* One computation of a refresh-ok, kept for a later loop turn. */
struct refresh_part {
	cJSON *c;			/* owned: its JSON text (a cJSON raw item) */
	int64_t processed_tx_id;	/* the refresh-ok's */
};

struct profile {
	TAILQ_ENTRY(profile) entry;
	struct sync *s;			/* borrowed: owner */
	char *key;			/* owned: server + app id */
	char *name, *app_id, *server, *api_uri, *ca_file;	/* owned */
	char *token;			/* owned, secret: never logged or echoed */
	char *db_path;			/* owned */
	struct db *db;			/* owned */
	struct upstream *up;		/* owned */
	struct attrs *server_attrs;	/* owned: as the server last sent them */
	struct attrs *attrs;		/* owned: server attrs + unsynced local ones */
	struct tstore_values *values;	/* owned reference: the values its query stores intern into */
	cJSON *user;			/* owned, may be NULL */
	char *app_status;		/* owned: active, read-only, disabled */
	char *session_id;		/* owned, may be NULL */
	char *last_error;		/* owned, may be NULL */
	bool signed_out;		/* the server no longer accepts the token */
	bool configured;		/* a [profile NAME] of the configuration (name is that NAME) */
	bool unreachable;		/* the last connection attempt failed (or the session dropped):
					 * a request that needs the server fails instead of waiting */
	bool app_missing_told;		/* subscriptions were told app-not-found (once, not every retry) */
	char *recovered_from;		/* owned: where a corrupt database was moved, or NULL */
	int64_t last_sync_ms;
	struct query_list queries;
	struct mutation_list outbox;	/* seq order: pending, sent, confirmed, failed */
	struct pending_write_list writes;	/* awaiting the next group commit */
	lws_sorted_usec_list_t flush;
	bool flush_armed;
	lws_sorted_usec_list_t push;	/* coalesces re-evaluation to once per loop turn */
	lws_sorted_usec_list_t pace;	/* the push of the renders pacing held back */
	lws_sorted_usec_list_t persist;	/* write-behind of query results to the mirror */
	lws_sorted_usec_list_t prune;	/* retires confirmed writes no result ever reflects */
	lws_sorted_usec_list_t settle;	/* records a loop turn's confirmations in one commit */
	lws_sorted_usec_list_t refresh;	/* applies the next of refresh_parts */
	struct refresh_part *refresh_parts;	/* owned: computations of a refresh-ok still to
					 * apply, one per loop turn (session.c) */
	size_t nrefresh_parts, refresh_next;
	struct mutation_set settling;	/* borrowed from outbox: the confirmations it records */
	unsigned nclients;
	int64_t state_since_ms;		/* wall clock of the last change of the shown state */
	const char *state_shown;	/* borrowed static name: the state state_since_ms is for */
	size_t replay_total, replay_done;	/* the backlog replayed since connecting; 0 = none */
	int64_t replay_start_us;
	uint64_t next_ord;		/* the last queue position given to a write */
	uint64_t evaluations;		/* query renders since the profile opened (status) */
};
TAILQ_HEAD(profile_list, profile);

/* One connected program. */
struct client {
	TAILQ_ENTRY(client) entry;
	struct sync *s;			/* borrowed */
	struct ipc_conn *conn;		/* borrowed: ipc owns it */
	struct profile *p;		/* borrowed, NULL before init */
	char *name;			/* owned: client-name from init */
	struct listener_list listeners;
	size_t nsubs;
	bool watch_status;
	struct rooms *rooms;		/* owned: presence session, created on the first join */
};
TAILQ_HEAD(client_list, client);

/* A sign-in call in flight for a program. */
struct auth_call {
	LIST_ENTRY(auth_call) entry;
	struct sync *s;			/* borrowed */
	struct profile *p;		/* borrowed */
	struct client *c;		/* borrowed; cleared when the program goes */
	char *ceid;			/* owned */
	enum ipc_op op;			/* the local op it answers */
	struct auth_request *req;	/* owned by auth.c */
};

struct sync {
	LIST_HEAD(, auth_call) auth_calls;
	struct lws_context *ctx;	/* borrowed */
	struct lws_vhost *vh;		/* borrowed */
	struct sync_options opt;	/* strings owned (copied) */
	struct sync_profile_option *profiles;	/* owned copies */
	struct profile_list profiles_list;
	struct client_list clients;
	void (*shutdown_done)(void *);
	void *shutdown_ud;
	unsigned shutdown_waiting;
	bool shutting_down;
};


/* strdup that passes NULL through (NULL also when out of memory). */
char *xstrdup(const char *s);

/* A new reply {"op": op, "client-event-id": ceid?} (caller owns), NULL when out of memory. */
cJSON *reply_new(const char *op, const char *ceid);
/* Send msg (borrowed) to c; NULL c or msg is a no-op (a program that went,
 * an allocation that failed). A full send buffer is ipc's to report. */
void client_send(struct client *c, cJSON *msg);
/* Send an error of type (a PROTOCOL.md error type) answering ceid; NULL c is a no-op. */
void client_error(struct client *c, const char *ceid, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
