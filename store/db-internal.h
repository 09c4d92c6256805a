/* Private to store/db*.c (and their tests): shared pieces of the database
 * code and of its corruption recovery. */
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
 * updated_ms, origin, crc" as a new entry (caller owns). -EBADMSG if
 * malformed or if it does not match its checksum. */
int db_mutation_from_row(sqlite3_stmt *s, struct db_mutation **ret);
bool db_outbox_row_intact(sqlite3_stmt *s);

/* The checksum of an outbox row: over mutation_id, ops, steps, state, tx_id,
 * error, created_ms, updated_ms, origin exactly as stored (type SQLITE_*). */
#define DB_CRC_NFIELDS 9
struct db_crc_field {
	int type;		/* SQLITE_NULL, SQLITE_INTEGER, SQLITE_TEXT, SQLITE_BLOB */
	int64_t i;
	const void *p;
	size_t len;
};
int64_t db_crc_fields(const struct db_crc_field *f, size_t n);
/* Make SQL function instantd_crc() (the same sum) known to a connection. */
int db_register_crc(sqlite3 *sql);

/* Rename path (and its -wal) to "<path>.corrupt-<ms>"; *ret_moved malloc'd. */
int db_move_aside(const char *path, char **ret_moved);
/* Carry meta, attrs and outbox entries that can be read from the database
 * file at moved into db (fresh). Works on a private copy; never changes
 * moved. *ret_salvaged = outbox entries carried over. */
int db_salvage(struct db *db, const char *moved, size_t *ret_salvaged);

#endif
