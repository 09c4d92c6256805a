/* The store's database: one SQLite file per profile mirroring attrs and
 * subscribed queries, and holding the durable outbox of writes. */
#ifndef INSTANTD_DB_H
#define INSTANTD_DB_H

/*
 * Schema (migrations numbered by PRAGMA user_version; db_open applies the
 * missing ones in one transaction each, and refuses a newer file):
 *
 *   meta(key TEXT PRIMARY KEY, value TEXT)        free-form profile data
 *   attrs(id TEXT PRIMARY KEY, body TEXT,          one attr object as JSON;
 *         unsynced INTEGER, ord INTEGER)           unsynced = created locally
 *   queries(key TEXT PRIMARY KEY, q TEXT,          key = canonical JSON of q
 *         triples TEXT, page_info TEXT,            triples: one JSON array
 *         processed_tx_id INTEGER, in_use INTEGER,
 *         last_used_ms INTEGER, use_seq INTEGER,   use_seq orders LRU exactly
 *         bytes INTEGER)                           stored bytes of the row's texts
 *   outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,  seq never reused
 *         mutation_id TEXT UNIQUE, ops TEXT, steps TEXT, state INTEGER,
 *         tx_id INTEGER, error TEXT, created_ms INTEGER, updated_ms INTEGER,
 *         origin TEXT,
 *         crc INTEGER)                             schema 2: a checksum of the
 *                                                  row's other columns (SQLite
 *                                                  has none); NULL on rows of
 *                                                  schema 1 until updated
 *
 * Durability: journal_mode=WAL. Every write that changes the outbox, attrs
 * or meta commits with synchronous=FULL (the WAL is fsync'd before the call
 * returns 0), so once db_outbox_append() returns 0 its entries survive
 * kill -9, a crash of the OS and power loss (on a disk that honours
 * flushes). Cache-only writes (query results, in-use marks, eviction) commit
 * with synchronous=NORMAL: they survive a crash of the daemon, may roll back
 * on power loss, and never endanger the outbox. Every write transaction
 * begins with BEGIN IMMEDIATE and is all-or-nothing.
 *
 * Eviction: queries marked in use (db_query_set_in_use) are never evicted.
 * db_query_evict() deletes unused queries, least recently used first (last
 * put or in-use change), until the sum of the `bytes` column of all queries
 * is within the budget. The outbox, attrs and meta are never evicted. All
 * in-use marks are cleared by db_open(): after a restart nobody uses any.
 *
 * Corruption: db_open() runs PRAGMA quick_check and checks the checksum of
 * every outbox row. If the file is not a database or is damaged, it is
 * renamed to "<path>.corrupt-<ms>" (with its -wal, unmerged), never deleted
 * or changed; a fresh database is created at path, and the meta rows, attrs
 * and intact outbox entries that can still be read are carried over with
 * their seq and state. Reading works on a private copy: through SQLite first
 * (forwards, backwards, and probing past damaged pages; after rewriting a
 * clobbered 100-byte header if needed), then, if SQLite could not reach
 * every entry, page by page. Entries found page by page may be older than
 * the last commit (a later removal may be lost), so a pending or sent one is
 * carried over as DB_MUT_FAILED with error {"type":"recovered",...}: a person
 * retries or discards it; it is never resent by itself. The query cache is
 * not carried over. db_recovered_from() / db_recovered_salvaged() report it.
 * A read that meets damage after open returns -EBADMSG; db_close() and
 * db_open() again to recover.
 *
 * Errors: negative errno. SQLITE_FULL -> -ENOSPC, BUSY/LOCKED -> -EBUSY,
 * NOMEM -> -ENOMEM, CORRUPT/NOTADB -> -EBADMSG (close and db_open() again to
 * recover), CONSTRAINT (duplicate id) -> -EEXIST, CANTOPEN/IO -> -EIO,
 * PERM/READONLY -> -EACCES. db_errmsg() has the last SQLite message.
 *
 * Threading: one struct db is used from one thread at a time (the loop).
 * Nothing here logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* One profile's database; owns the sqlite3 handle and prepared statements. */
struct db;

/* Open or create the database at path (the directory must exist; a new file
 * gets mode 0600). Recovers from a corrupt file as described above (still
 * returns 0). -EPROTO if the file was written by a newer schema. *ret owned
 * by the caller, freed with db_close(). */
int db_open(const char *path, struct db **ret);
void db_close(struct db *db);                 /* NULL-safe */

/* The path the corrupt database was moved to by db_open(), or NULL. Borrowed,
 * valid until db_close(). */
const char *db_recovered_from(const struct db *db);
/* Number of outbox entries carried over by that recovery (0 if none). */
size_t db_recovered_salvaged(const struct db *db);
/* The last SQLite error message of this handle ("" if none). Borrowed. */
const char *db_errmsg(const struct db *db);
/* Cap the database file at about max_bytes (PRAGMA max_page_count; 0 = no
 * cap of ours). Writes past it fail with -ENOSPC. Not persistent. */
int db_set_size_limit(struct db *db, int64_t max_bytes);

/* ---- meta: small strings (server, app-id, session data, last sync) ---- */
/* *ret_value malloc'd, caller frees. -ENOENT if unset. */
int db_meta_get(struct db *db, const char *key, char **ret_value);
/* value NULL deletes the key. Durable. */
int db_meta_set(struct db *db, const char *key, const char *value);

/* ---- attrs ---- */
/* init-ok / refresh-ok: server_attrs (array of attr objects, borrowed)
 * replace every synced attr; an unsynced local attr whose id the server now
 * has becomes the server's (synced); other unsynced attrs are kept. -EINVAL
 * if not an array of objects with string "id". Durable. */
int db_attrs_replace_server(struct db *db, const cJSON *server_attrs);
/* Add attrs created locally (array, borrowed) as unsynced; an id that is
 * already known is left as it is. Durable. */
int db_attrs_add_local(struct db *db, const cJSON *attrs);
/* A new array (caller owns) of all attrs: server ones first in the server's
 * order, then unsynced ones in creation order, those with "isUnsynced": true. */
int db_attrs_load(struct db *db, cJSON **ret_attrs);

/* ---- queries (the cache) ---- */
/* Store a result for qkey (the caller's canonical key, e.g. json_canonical
 * of q): q, triples (array of [e,a,v,t]) and page_info (may be NULL) are
 * borrowed and stored as JSON; replaces any earlier result in one
 * transaction, keeps the in-use mark, bumps the last use. */
int db_query_put(struct db *db, const char *qkey, const cJSON *q, const cJSON *triples,
    const cJSON *page_info, int64_t processed_tx_id);
/* Read a stored result (no write: cheap on cache hits). -ENOENT if absent. Each out-param may be NULL; the
 * others get new objects the caller owns (*ret_page_info is NULL if none). */
int db_query_get(struct db *db, const char *qkey, cJSON **ret_q, cJSON **ret_triples,
    cJSON **ret_page_info, int64_t *ret_processed_tx_id);
/* Mark qkey used by someone (never evicted) or not; bumps the last use.
 * -ENOENT if absent. */
int db_query_set_in_use(struct db *db, const char *qkey, bool in_use);
/* Delete one query. -ENOENT if absent. */
int db_query_remove(struct db *db, const char *qkey);
/* Evict unused queries, least recently used first, until all queries take
 * at most budget_bytes. *ret_evicted (may be NULL) = how many went. */
int db_query_evict(struct db *db, int64_t budget_bytes, int *ret_evicted);
/* Total bytes of all stored queries. */
int db_query_bytes(struct db *db, int64_t *ret_bytes);
/* A new array (caller owns), least recently used first:
 * [{"key","q","in-use","bytes","processed-tx-id","last-used"}]. */
int db_query_list(struct db *db, cJSON **ret_list);

/* ---- the outbox ---- */
/* As stored: PENDING = never sent; SENT = sent at least once, so it may have
 * reached the server (a resend must be safe to repeat); CONFIRMED = the
 * server committed it; FAILED = the server rejected it (or recovery set it
 * aside). */
enum db_mut_state { DB_MUT_PENDING, DB_MUT_SENT, DB_MUT_CONFIRMED, DB_MUT_FAILED };
#define DB_MUT_STATE_MAX 4

/* One outbox entry. Every pointer member is owned by the struct and freed by
 * db_mutation_free(). */
struct db_mutation {
	int64_t seq;		/* assigned by db_outbox_append; send order */
	char *mutation_id;	/* required, unique: the client-event-id */
	cJSON *ops;		/* the InstaML ops the app sent, or NULL */
	cJSON *steps;		/* required: the tx-steps to send */
	enum db_mut_state state;
	int64_t tx_id;		/* 0 = none */
	char *error;		/* JSON text of the server's error, or NULL */
	int64_t created_ms, updated_ms;	/* assigned by db_outbox_append */
	char *origin;		/* name of the program that wrote it, or NULL */
};

/* Append n entries (borrowed) in ONE transaction with synchronous=FULL:
 * either all are stored, or none (and the error is returned). Only when it
 * returns 0 are the entries durable and may be acknowledged; then each gets
 * its seq, created_ms and updated_ms. -EINVAL if an entry lacks
 * mutation_id or steps, -EEXIST if a mutation_id is already stored,
 * -ENOSPC if the disk (or the size limit) is full. */
int db_outbox_append(struct db *db, struct db_mutation **muts, size_t n);
/* Set state, tx_id (0 = none) and error (NULL = none) of one entry; bumps
 * updated_ms. -ENOENT if absent. Durable. */
int db_outbox_set_state(struct db *db, const char *mutation_id, enum db_mut_state st,
    int64_t tx_id, const char *error);
/* Replace the steps (borrowed) of one entry (attr-id rewrite). -ENOENT if absent. */
int db_outbox_set_steps(struct db *db, const char *mutation_id, const cJSON *steps);
/* Set every entry of mutation_ids[0..n-1] that is still DB_MUT_PENDING to
 * DB_MUT_SENT ("may have reached the server"), in ONE durable transaction
 * (one fsync for a whole batch of sends); entries in other states and
 * unknown ids are left as they are. Call it before the first send, so that
 * after a crash the entry is known to need a replay. All or nothing. */
int db_outbox_mark_sent(struct db *db, const char *const *mutation_ids, size_t n);
/* Delete one entry. -ENOENT if absent. Durable. */
int db_outbox_remove(struct db *db, const char *mutation_id);
/* The server confirmed these entries: each is deleted (remove) or set
 * DB_MUT_CONFIRMED with its tx_id, all in ONE durable transaction (one
 * fsync for a burst of confirmations); unknown ids are skipped. All or
 * nothing. */
struct db_settle {
	const char *mutation_id;	/* borrowed */
	int64_t tx_id;
	bool remove;
};
int db_outbox_settle(struct db *db, const struct db_settle *v, size_t n);
/* Entries whose state bit (1u << state) is in state_mask, in seq order.
 * *ret is a malloc'd array of *ret_n owned entries (NULL when 0). Free the
 * entries with db_mutation_list_free(*ret, *ret_n) and then the array
 * itself with free(). */
int db_outbox_list(struct db *db, unsigned state_mask, struct db_mutation ***ret, size_t *ret_n);
/* One entry, caller owns *ret. -ENOENT if absent, -EBADMSG if damaged
 * (also for db_outbox_list). */
int db_outbox_get(struct db *db, const char *mutation_id, struct db_mutation **ret);
/* Number of entries in each state, indexed by enum db_mut_state. */
int db_outbox_counts(struct db *db, size_t counts[DB_MUT_STATE_MAX]);

void db_mutation_free(struct db_mutation *m);       /* NULL-safe */
/* Frees the n entries list[0..n-1] (NULL entries skipped), NOT the array. */
void db_mutation_list_free(struct db_mutation **list, size_t n);

const char *db_mut_state_to_string(enum db_mut_state st);   /* "pending", ... */

#endif
