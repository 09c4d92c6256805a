/* Private to store/db*.c: shared pieces of the database code and of its
 * corruption recovery. Nothing outside store/db*.c includes this. */
#ifndef INSTANTD_DB_INTERNAL_H
#define INSTANTD_DB_INTERNAL_H

#include <sqlite3.h>

#include "store/db.h"

static inline void db_closep(struct db **p) { db_close(*p); }
static inline void sqlite3_finalize_p(sqlite3_stmt **s) { sqlite3_finalize(*s); }
static inline void sqlite3_close_p(sqlite3 **s) { sqlite3_close_v2(*s); }

/* SQLite result code rc (extended) as a negative errno; 0 for OK/ROW/DONE. */
int db_errno_from_sqlite(sqlite3 *sql, int rc);
/* Begin a write transaction (BEGIN IMMEDIATE); durable commits with
 * synchronous=FULL, otherwise NORMAL. */
int db_begin(struct db *db, bool durable);
/* Commit if r >= 0, else roll back; returns r or the commit's error. */
int db_end(struct db *db, int r);
/* The connection of db (borrowed). */
sqlite3 *db_sqlite(struct db *db);
/* One row of "seq, mutation_id, ops, steps, state, tx_id, error, created_ms,
 * updated_ms, origin" as a new entry (caller owns). -EBADMSG if malformed. */
int db_mutation_from_row(sqlite3_stmt *s, struct db_mutation **ret);

/* Rename path (and its -wal) to "<path>.corrupt-<ms>"; *ret_moved malloc'd. */
int db_move_aside(const char *path, char **ret_moved);
/* Carry meta, attrs and outbox entries that can be read from the database
 * file at moved into db (fresh). Works on a private copy; never changes
 * moved. *ret_salvaged = outbox entries carried over. */
int db_salvage(struct db *db, const char *moved, size_t *ret_salvaged);

#endif
