/* The profile database: SQLite schema and migrations, attrs, the query cache
 * with LRU eviction, the durable outbox, and recovery from corrupt files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include "store/db.h"
#include "store/db-internal.h"
#include "store/util.h"

/* Hot statements, prepared once (SQLITE_PREPARE_PERSISTENT) on first use. */
enum {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SYNC_FULL,
	STMT_SYNC_NORMAL,
	STMT_META_GET,
	STMT_META_SET,
	STMT_META_DEL,
	STMT_ATTR_DEL_SYNCED,
	STMT_ATTR_PUT_SERVER,
	STMT_ATTR_ADD_LOCAL,
	STMT_ATTR_MAX_ORD,
	STMT_ATTR_LOAD,
	STMT_Q_PUT,
	STMT_Q_GET,
	STMT_Q_IN_USE,
	STMT_Q_REMOVE,
	STMT_Q_TOTAL,
	STMT_Q_LRU,
	STMT_Q_LIST,
	STMT_O_INSERT,
	STMT_O_SET_STATE,
	STMT_O_SET_STEPS,
	STMT_O_MARK_SENT,
	STMT_O_REMOVE,
	STMT_O_LIST,
	STMT_O_GET,
	STMT_O_COUNTS,
	_STMT_MAX,
};

#define OUTBOX_COLS "seq, mutation_id, ops, steps, state, tx_id, error, created_ms, updated_ms, origin, crc"

static const char *const stmt_sql[_STMT_MAX] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_SYNC_FULL] = "PRAGMA synchronous=FULL",
	[STMT_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
	[STMT_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[STMT_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[STMT_META_DEL] = "DELETE FROM meta WHERE key = ?1",
	[STMT_ATTR_DEL_SYNCED] = "DELETE FROM attrs WHERE unsynced = 0",
	[STMT_ATTR_PUT_SERVER] = "INSERT OR REPLACE INTO attrs(id, body, unsynced, ord) VALUES (?1, ?2, 0, ?3)",
	[STMT_ATTR_ADD_LOCAL] = "INSERT OR IGNORE INTO attrs(id, body, unsynced, ord) VALUES (?1, ?2, 1, ?3)",
	[STMT_ATTR_MAX_ORD] = "SELECT COALESCE(MAX(ord), 0) FROM attrs",
	[STMT_ATTR_LOAD] = "SELECT body, unsynced FROM attrs ORDER BY unsynced, ord",
	[STMT_Q_PUT] = "INSERT INTO queries(key, q, triples, page_info, processed_tx_id, in_use, "
	    "last_used_ms, use_seq, bytes) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8) "
	    "ON CONFLICT(key) DO UPDATE SET q = excluded.q, triples = excluded.triples, "
	    "page_info = excluded.page_info, processed_tx_id = excluded.processed_tx_id, "
	    "last_used_ms = excluded.last_used_ms, use_seq = excluded.use_seq, bytes = excluded.bytes",
	[STMT_Q_GET] = "SELECT q, triples, page_info, processed_tx_id FROM queries WHERE key = ?1",
	[STMT_Q_IN_USE] = "UPDATE queries SET in_use = ?2, last_used_ms = ?3, use_seq = ?4 WHERE key = ?1",
	[STMT_Q_REMOVE] = "DELETE FROM queries WHERE key = ?1",
	[STMT_Q_TOTAL] = "SELECT COALESCE(SUM(bytes), 0) FROM queries",
	[STMT_Q_LRU] = "SELECT key, bytes FROM queries WHERE in_use = 0 ORDER BY use_seq",
	[STMT_Q_LIST] = "SELECT key, q, in_use, bytes, processed_tx_id, last_used_ms FROM queries ORDER BY use_seq",
	[STMT_O_INSERT] = "INSERT INTO outbox(mutation_id, ops, steps, state, tx_id, error, created_ms, "
	    "updated_ms, origin, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, "
	    "instantd_crc(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8))",
	[STMT_O_SET_STATE] = "UPDATE outbox SET state = ?2, tx_id = ?3, error = ?4, updated_ms = ?5, "
	    "crc = instantd_crc(mutation_id, ops, steps, ?2, ?3, ?4, created_ms, ?5, origin) "
	    "WHERE mutation_id = ?1",
	[STMT_O_SET_STEPS] = "UPDATE outbox SET steps = ?2, updated_ms = ?3, "
	    "crc = instantd_crc(mutation_id, ops, ?2, state, tx_id, error, created_ms, ?3, origin) "
	    "WHERE mutation_id = ?1",
	/* Only a queued entry: a settled one (confirmed, failed) keeps its state. */
	[STMT_O_MARK_SENT] = "UPDATE outbox SET state = 1, updated_ms = ?2, "
	    "crc = instantd_crc(mutation_id, ops, steps, 1, tx_id, error, created_ms, ?2, origin) "
	    "WHERE mutation_id = ?1 AND state = 0",
	[STMT_O_REMOVE] = "DELETE FROM outbox WHERE mutation_id = ?1",
	[STMT_O_LIST] = "SELECT " OUTBOX_COLS " FROM outbox WHERE ((1 << state) & ?1) != 0 ORDER BY seq",
	[STMT_O_GET] = "SELECT " OUTBOX_COLS " FROM outbox WHERE mutation_id = ?1",
	[STMT_O_COUNTS] = "SELECT state, COUNT(*) FROM outbox GROUP BY state",
};

/* Schema migrations; migration i brings user_version from i to i + 1. */
static const char *const migrations[] = {
	"CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
	"CREATE TABLE attrs(id TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL,"
	" unsynced INTEGER NOT NULL, ord INTEGER NOT NULL);"
	"CREATE TABLE queries(key TEXT PRIMARY KEY NOT NULL, q TEXT NOT NULL, triples TEXT NOT NULL,"
	" page_info TEXT, processed_tx_id INTEGER NOT NULL, in_use INTEGER NOT NULL,"
	" last_used_ms INTEGER NOT NULL, use_seq INTEGER NOT NULL, bytes INTEGER NOT NULL);"
	"CREATE INDEX queries_lru ON queries(in_use, use_seq);"
	"CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, mutation_id TEXT NOT NULL UNIQUE,"
	" ops TEXT, steps TEXT NOT NULL, state INTEGER NOT NULL, tx_id INTEGER, error TEXT,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, origin TEXT);"
	"CREATE INDEX outbox_state ON outbox(state, seq);",
	/* 2: a checksum of each outbox row (see db_crc_fields): SQLite has no
	 * page checksums, and a damaged entry must never be sent. */
	"ALTER TABLE outbox ADD COLUMN crc INTEGER;",
	/* 3: the mirror's size (status, every init) from an index, without
	 * reading each stored result's overflow pages */
	"CREATE INDEX queries_bytes ON queries(bytes);",
};

#define DB_SCHEMA_VERSION ((int)ELEMENTSOF(migrations))

struct db {
	sqlite3 *sql;
	sqlite3_stmt *stmt[_STMT_MAX];
	int sync_level;			/* current PRAGMA synchronous: 1 NORMAL, 2 FULL */
	int64_t use_seq;		/* last use_seq handed out */
	char *recovered_from;		/* owned; NULL unless db_open recovered */
	size_t salvaged;
	char errmsg[256];
};

static void
stmt_resetp(sqlite3_stmt **s)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
	}
}
#define _cleanup_reset_ _cleanup_(stmt_resetp)

static void
cjson_freep(char **p)
{
	if (*p)
		cJSON_free(*p);
}
#define _cleanup_cjson_free_ _cleanup_(cjson_freep)

int
db_errno_from_sqlite(sqlite3 *sql, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_IOERR:
		if (rc == SQLITE_IOERR_NOMEM)
			return -ENOMEM;
		/* A write that hit ENOSPC may surface as an I/O error. */
		if (sql && sqlite3_system_errno(sql) == ENOSPC)
			return -ENOSPC;
		return -EIO;
	default:
		return -EIO;
	}
}

/* Remember SQLite's message and turn rc into a negative errno. */
static int
db_fail(struct db *db, int rc)
{
	snprintf(db->errmsg, sizeof(db->errmsg), "%s", sqlite3_errmsg(db->sql));
	return db_errno_from_sqlite(db->sql, rc);
}

/* FNV-1a 64 over the fields, each as a type tag plus its value: any change
 * of a byte, a length or a type changes the sum. */
int64_t
db_crc_fields(const struct db_crc_field *f, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
#define MIX(b) (h = (h ^ (uint8_t)(b)) * 1099511628211ULL)

	for (size_t i = 0; i < n; i++) {
		uint64_t v = f[i].type == SQLITE_INTEGER ? (uint64_t)f[i].i : (uint64_t)f[i].len;

		MIX(f[i].type);
		for (int k = 0; k < 8; k++)
			MIX(v >> (8 * k));
		if (f[i].type == SQLITE_TEXT || f[i].type == SQLITE_BLOB)
			for (size_t k = 0; k < f[i].len; k++)
				MIX(((const uint8_t *)f[i].p)[k]);
	}
#undef MIX
	return (int64_t)h;
}

static void
crc_field_from_value(sqlite3_value *v, struct db_crc_field *f)
{
	memset(f, 0, sizeof(*f));
	f->type = sqlite3_value_type(v);
	switch (f->type) {
	case SQLITE_INTEGER:
		f->i = sqlite3_value_int64(v);
		break;
	case SQLITE_TEXT:
		f->p = sqlite3_value_text(v);
		f->len = (size_t)sqlite3_value_bytes(v);
		break;
	case SQLITE_BLOB:
		f->p = sqlite3_value_blob(v);
		f->len = (size_t)sqlite3_value_bytes(v);
		break;
	default:
		f->type = SQLITE_NULL;
		break;
	}
}

/* SQL function instantd_crc(mutation_id, ops, steps, state, tx_id, error,
 * created_ms, updated_ms, origin). */
static void
crc_sql(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct db_crc_field f[DB_CRC_NFIELDS];

	if (argc != DB_CRC_NFIELDS) {
		sqlite3_result_error(ctx, "instantd_crc: wrong number of arguments", -1);
		return;
	}
	for (int i = 0; i < argc; i++)
		crc_field_from_value(argv[i], &f[i]);
	sqlite3_result_int64(ctx, db_crc_fields(f, DB_CRC_NFIELDS));
}

int
db_register_crc(sqlite3 *sql)
{
	int rc = sqlite3_create_function(sql, "instantd_crc", DB_CRC_NFIELDS,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, crc_sql, NULL, NULL);

	return db_errno_from_sqlite(sql, rc);
}

/* Whether the outbox row at s (OUTBOX_COLS) matches its checksum; rows
 * written before schema 2 have none and pass. */
bool
db_outbox_row_intact(sqlite3_stmt *s)
{
	struct db_crc_field f[DB_CRC_NFIELDS];

	if (sqlite3_column_type(s, 10) == SQLITE_NULL)
		return true;
	for (int i = 0; i < DB_CRC_NFIELDS; i++)
		crc_field_from_value(sqlite3_column_value(s, 1 + i), &f[i]);
	return db_crc_fields(f, DB_CRC_NFIELDS) == sqlite3_column_int64(s, 10);
}

static int
db_stmt(struct db *db, int id, sqlite3_stmt **ret)
{
	int rc;

	if (db->stmt[id] == NULL) {
		rc = sqlite3_prepare_v3(db->sql, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		    &db->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return db_fail(db, rc);
	}
	*ret = db->stmt[id];
	return 0;
}

/* Step a statement that returns no rows to completion and reset it. */
static int
db_run(struct db *db, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			;
	if (rc != SQLITE_DONE) {
		int r = db_fail(db, rc);

		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return r;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return 0;
}

static int
db_run_id(struct db *db, int id)
{
	sqlite3_stmt *s = NULL;
	int r = db_stmt(db, id, &s);

	return r < 0 ? r : db_run(db, s);
}

static void
db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->sql))
		(void)db_run_id(db, STMT_ROLLBACK);
}

/* Begin a write transaction. durable: commit with synchronous=FULL (writes
 * that are acknowledged to someone); otherwise NORMAL (cache data). */
int
db_begin(struct db *db, bool durable)
{
	int want = durable ? 2 : 1, r;

	if (db->sync_level != want) {
		r = db_run_id(db, durable ? STMT_SYNC_FULL : STMT_SYNC_NORMAL);
		if (r < 0)
			return r;
		db->sync_level = want;
	}
	return db_run_id(db, STMT_BEGIN);
}

static int
db_commit(struct db *db)
{
	int r = db_run_id(db, STMT_COMMIT);

	if (r < 0)
		db_rollback(db);
	return r;
}

/* End a write transaction: commit if r >= 0, else roll back; returns the result. */
int
db_end(struct db *db, int r)
{
	if (r < 0) {
		db_rollback(db);
		return r;
	}
	return db_commit(db);
}

static int
bind_text(struct db *db, sqlite3_stmt *s, int i, const char *t)
{
	int rc = t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);

	return rc == SQLITE_OK ? 0 : db_fail(db, rc);
}

static int
bind_int64(struct db *db, sqlite3_stmt *s, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(s, i, v);

	return rc == SQLITE_OK ? 0 : db_fail(db, rc);
}

/* Compact JSON of v, freed with cJSON_free; NULL on ENOMEM. */
static char *
print_json(const cJSON *v)
{
	return cJSON_PrintUnformatted(v);
}

/* Parse a JSON column; NULL column -> *ret NULL. -EBADMSG if unparsable. */
static int
column_json(sqlite3_stmt *s, int i, cJSON **ret)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	cJSON *v;

	if (t == NULL) {
		*ret = NULL;
		return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : -ENOMEM;
	}
	v = cJSON_ParseWithLength(t, (size_t)sqlite3_column_bytes(s, i));
	if (v == NULL)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int
column_strdup(sqlite3_stmt *s, int i, char **ret)
{
	const char *t = (const char *)sqlite3_column_text(s, i);

	if (t == NULL) {
		*ret = NULL;
		return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : -ENOMEM;
	}
	*ret = strdup(t);
	return *ret ? 0 : -ENOMEM;
}

/* ---- open, migrations, close ---- */

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < _STMT_MAX; i++)
		sqlite3_finalize(db->stmt[i]);
	sqlite3_close_v2(db->sql);
	free(db->recovered_from);
	free(db);
}

/* Run one statement returning at most one row and read its first column as
 * text into buf (empty if no row). */
static int
db_pragma_text(struct db *db, const char *sql, char *buf, size_t len)
{
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *s = NULL;
	int rc;

	buf[0] = '\0';
	rc = sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_fail(db, rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		snprintf(buf, len, "%s", t ? t : "");
		/* quick_check lists one row per problem; a second row means trouble. */
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			return snprintf(buf, len, "more"), 0;
	}
	if (rc != SQLITE_DONE)
		return db_fail(db, rc);
	return 0;
}

static int
db_exec(struct db *db, const char *sql)
{
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(db, rc);
}

static int
db_migrate(struct db *db)
{
	char buf[64];
	int version, r;

	r = db_pragma_text(db, "PRAGMA user_version", buf, sizeof(buf));
	if (r < 0)
		return r;
	version = atoi(buf);
	if (version > DB_SCHEMA_VERSION)
		return -EPROTO;
	while (version < DB_SCHEMA_VERSION) {
		char set[64];

		r = db_begin(db, true);
		if (r < 0)
			return r;
		/* Another opener may have migrated while we waited for the lock. */
		r = db_pragma_text(db, "PRAGMA user_version", buf, sizeof(buf));
		if (r == 0 && atoi(buf) == version) {
			snprintf(set, sizeof(set), "PRAGMA user_version=%d", version + 1);
			r = db_exec(db, migrations[version]);
			if (r == 0)
				r = db_exec(db, set);
		}
		r = db_end(db, r);
		if (r < 0)
			return r;
		r = db_pragma_text(db, "PRAGMA user_version", buf, sizeof(buf));
		if (r < 0)
			return r;
		version = atoi(buf);
	}
	return 0;
}

static int db_setup(struct db *db);

/* Every outbox row matches its checksum; -EBADMSG if one does not (then
 * db_open recovers: the damaged entry is not carried over). */
static int
db_check_outbox(struct db *db)
{
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, "SELECT " OUTBOX_COLS " FROM outbox", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_fail(db, rc);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (!db_outbox_row_intact(s)) {
			snprintf(db->errmsg, sizeof(db->errmsg), "outbox entry %lld is damaged",
			    (long long)sqlite3_column_int64(s, 0));
			return -EBADMSG;
		}
	return rc == SQLITE_DONE ? 0 : db_fail(db, rc);
}

/* Open path as it is, checking that it is a healthy database of ours. */
static int
db_open_once(const char *path, struct db **ret)
{
	_cleanup_(db_closep) struct db *db = NULL;
	int fd, rc, r;

	/* Create the file ourselves so that it (and its -wal, -shm) is 0600;
	 * never through a symbolic link (nor does SQLite follow one). */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	close(fd);

	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK)
		return db->sql ? db_fail(db, rc) : -ENOMEM;
	sqlite3_extended_result_codes(db->sql, 1);
	sqlite3_busy_timeout(db->sql, 5000);
	r = db_register_crc(db->sql);
	if (r == 0)
		r = db_setup(db);
	if (r < 0) {
		/* Closing would checkpoint the WAL into a file we may move aside
		 * as evidence: leave both as they are. */
		(void)sqlite3_db_config(db->sql, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		return r;
	}
	*ret = TAKE_PTR(db);
	return 0;
}

/* Pragmas, health check, migrations, and the reset of in-use marks. */
static int
db_setup(struct db *db)
{
	char buf[64];
	int r;

	r = db_exec(db, "PRAGMA page_size=4096");
	if (r < 0)
		return r;
	r = db_pragma_text(db, "PRAGMA journal_mode=WAL", buf, sizeof(buf));
	if (r < 0)
		return r;
	if (strcmp(buf, "wal") != 0)
		return -EIO;
	/* secure_delete: removed entries leave no copies behind that a salvage
	 * of a damaged file could bring back. */
	r = db_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	    "PRAGMA journal_size_limit=67108864; PRAGMA secure_delete=ON");
	if (r < 0)
		return r;
	db->sync_level = 2;
	r = db_pragma_text(db, "PRAGMA quick_check", buf, sizeof(buf));
	if (r < 0)
		return r;
	if (strcmp(buf, "ok") != 0) {
		snprintf(db->errmsg, sizeof(db->errmsg), "quick_check: %s", buf);
		return -EBADMSG;
	}
	r = db_migrate(db);
	if (r < 0)
		return r;
	r = db_check_outbox(db);
	if (r < 0)
		return r;
	/* Nobody uses any query right after open. */
	r = db_pragma_text(db, "SELECT COALESCE(MAX(use_seq), 0) FROM queries", buf, sizeof(buf));
	if (r < 0)
		return r;
	db->use_seq = strtoll(buf, NULL, 10);
	r = db_begin(db, false);
	if (r < 0)
		return r;
	return db_end(db, db_exec(db, "UPDATE queries SET in_use = 0 WHERE in_use != 0"));
}

int
db_open(const char *path, struct db **ret)
{
	_cleanup_(db_closep) struct db *db = NULL;
	_cleanup_free_ char *moved = NULL;
	size_t salvaged = 0;
	int r;

	if (path == NULL || ret == NULL)
		return -EINVAL;
	r = db_open_once(path, &db);
	if (r != -EBADMSG)
		goto done;
	r = db_move_aside(path, &moved);
	if (r < 0)
		return r;
	r = db_open_once(path, &db);
	if (r < 0)
		return r;
	/* Best effort: whatever cannot be read is gone, the file stays aside. */
	(void)db_salvage(db, moved, &salvaged);
	db->recovered_from = TAKE_PTR(moved);
	db->salvaged = salvaged;
done:
	if (r < 0)
		return r;
	*ret = TAKE_PTR(db);
	return 0;
}

const char *
db_recovered_from(const struct db *db)
{
	return db ? db->recovered_from : NULL;
}

size_t
db_recovered_salvaged(const struct db *db)
{
	return db ? db->salvaged : 0;
}

const char *
db_errmsg(const struct db *db)
{
	return db ? db->errmsg : "";
}

sqlite3 *
db_sqlite(struct db *db)
{
	return db->sql;
}

int
db_set_size_limit(struct db *db, int64_t max_bytes)
{
	char sql[96], buf[64];
	int64_t pages;

	if (max_bytes < 0)
		return -EINVAL;
	/* 0 restores SQLite's own ceiling. */
	pages = max_bytes == 0 ? 1073741823LL : max_bytes / 4096;
	if (pages < 1)
		pages = 1;
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%" PRId64, pages);
	return db_pragma_text(db, sql, buf, sizeof(buf));
}

/* ---- meta ---- */

int
db_meta_get(struct db *db, const char *key, char **ret_value)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	char *v;
	int r, rc;

	if (key == NULL || ret_value == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_META_GET, &s);
	if (r < 0)
		return s = NULL, r;
	if ((r = bind_text(db, s, 1, key)) < 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_fail(db, rc);
	r = column_strdup(s, 0, &v);
	if (r < 0)
		return r;
	if (v == NULL)
		return -ENOENT;
	*ret_value = v;
	return 0;
}

int
db_meta_set(struct db *db, const char *key, const char *value)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (key == NULL)
		return -EINVAL;
	r = db_stmt(db, value ? STMT_META_SET : STMT_META_DEL, &s);
	if (r < 0)
		return r;
	r = db_begin(db, true);
	if (r < 0)
		return r;
	if ((r = bind_text(db, s, 1, key)) == 0 && (!value || (r = bind_text(db, s, 2, value)) == 0))
		r = db_run(db, s);
	else
		stmt_resetp(&s);
	return db_end(db, r);
}

/* ---- attrs ---- */

static bool
attrs_valid(const cJSON *list)
{
	const cJSON *a;

	if (!cJSON_IsArray(list))
		return false;
	cJSON_ArrayForEach(a, list)
		if (!cJSON_IsObject(a) || json_get_string(a, "id") == NULL)
			return false;
	return true;
}

static int
attr_put(struct db *db, sqlite3_stmt *s, const cJSON *a, int64_t ord)
{
	_cleanup_cjson_free_ char *body = print_json(a);
	int r;

	if (body == NULL)
		return -ENOMEM;
	if ((r = bind_text(db, s, 1, json_get_string(a, "id"))) < 0 ||
	    (r = bind_text(db, s, 2, body)) < 0 ||
	    (r = bind_int64(db, s, 3, ord)) < 0) {
		stmt_resetp(&s);
		return r;
	}
	return db_run(db, s);
}

/* The one integer a single-row statement (MAX, SUM, ...) answers. */
static int
stmt_int64(struct db *db, int which, int64_t *ret)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int r, rc;

	r = db_stmt(db, which, &s);
	if (r < 0)
		return s = NULL, r;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc);
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

int
db_attrs_replace_server(struct db *db, const cJSON *server_attrs)
{
	sqlite3_stmt *s = NULL;
	const cJSON *a;
	int64_t ord = 0;
	int r;

	if (!attrs_valid(server_attrs))
		return -EINVAL;
	r = db_stmt(db, STMT_ATTR_PUT_SERVER, &s);
	if (r < 0)
		return r;
	r = db_begin(db, true);
	if (r < 0)
		return r;
	r = db_run_id(db, STMT_ATTR_DEL_SYNCED);
	/* INSERT OR REPLACE turns an unsynced attr of the same id into the server's. */
	cJSON_ArrayForEach(a, server_attrs) {
		if (r < 0)
			break;
		r = attr_put(db, s, a, ++ord);
	}
	return db_end(db, r);
}

int
db_attrs_add_local(struct db *db, const cJSON *attrs)
{
	sqlite3_stmt *s = NULL;
	const cJSON *a;
	int64_t ord = 0;
	int r;

	if (!attrs_valid(attrs))
		return -EINVAL;
	r = db_stmt(db, STMT_ATTR_ADD_LOCAL, &s);
	if (r < 0)
		return r;
	r = db_begin(db, true);
	if (r < 0)
		return r;
	r = stmt_int64(db, STMT_ATTR_MAX_ORD, &ord);
	cJSON_ArrayForEach(a, attrs) {
		if (r < 0)
			break;
		r = attr_put(db, s, a, ++ord);
	}
	return db_end(db, r);
}

int
db_attrs_load(struct db *db, cJSON **ret_attrs)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	_cleanup_json_ cJSON *list = cJSON_CreateArray();
	int r, rc;

	if (list == NULL)
		return -ENOMEM;
	r = db_stmt(db, STMT_ATTR_LOAD, &s);
	if (r < 0)
		return s = NULL, r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		bool unsynced = sqlite3_column_int(s, 1) != 0;
		cJSON *a;

		r = column_json(s, 0, &a);
		if (r < 0)
			return r;
		if (!cJSON_IsObject(a)) {
			cJSON_Delete(a);
			return -EBADMSG;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(a, "isUnsynced");
		if (unsynced && !cJSON_AddTrueToObject(a, "isUnsynced")) {
			cJSON_Delete(a);
			return -ENOMEM;
		}
		cJSON_AddItemToArray(list, a);
	}
	if (rc != SQLITE_DONE)
		return db_fail(db, rc);
	*ret_attrs = TAKE_PTR(list);
	return 0;
}

/* ---- queries ---- */

int
db_query_put(struct db *db, const char *qkey, const cJSON *q, const cJSON *triples,
    const cJSON *page_info, int64_t processed_tx_id)
{
	_cleanup_cjson_free_ char *qs = NULL, *ts = NULL, *ps = NULL;
	sqlite3_stmt *s = NULL;
	int64_t bytes;
	int r;

	if (qkey == NULL || q == NULL || !cJSON_IsArray(triples))
		return -EINVAL;
	qs = print_json(q);
	ts = print_json(triples);
	ps = page_info && !cJSON_IsNull(page_info) ? print_json(page_info) : NULL;
	if (qs == NULL || ts == NULL || (page_info && !cJSON_IsNull(page_info) && ps == NULL))
		return -ENOMEM;
	bytes = (int64_t)(strlen(qkey) + strlen(qs) + strlen(ts) + (ps ? strlen(ps) : 0));
	r = db_stmt(db, STMT_Q_PUT, &s);
	if (r < 0)
		return r;
	r = db_begin(db, false);
	if (r < 0)
		return r;
	if ((r = bind_text(db, s, 1, qkey)) < 0 ||
	    (r = bind_text(db, s, 2, qs)) < 0 ||
	    (r = bind_text(db, s, 3, ts)) < 0 ||
	    (r = bind_text(db, s, 4, ps)) < 0 ||
	    (r = bind_int64(db, s, 5, processed_tx_id)) < 0 ||
	    (r = bind_int64(db, s, 6, now_ms())) < 0 ||
	    (r = bind_int64(db, s, 7, db->use_seq + 1)) < 0 ||
	    (r = bind_int64(db, s, 8, bytes)) < 0)
		stmt_resetp(&s);
	else
		r = db_run(db, s);
	r = db_end(db, r);
	if (r == 0)
		db->use_seq++;
	return r;
}

int
db_query_get(struct db *db, const char *qkey, cJSON **ret_q, cJSON **ret_triples,
    cJSON **ret_page_info, int64_t *ret_processed_tx_id)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	_cleanup_json_ cJSON *q = NULL, *t = NULL, *pi = NULL;
	int r, rc;

	if (qkey == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_Q_GET, &s);
	if (r < 0)
		return s = NULL, r;
	if ((r = bind_text(db, s, 1, qkey)) < 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_fail(db, rc);
	if ((ret_q && (r = column_json(s, 0, &q)) < 0) ||
	    (ret_triples && (r = column_json(s, 1, &t)) < 0) ||
	    (ret_page_info && (r = column_json(s, 2, &pi)) < 0))
		return r;
	if (ret_q)
		*ret_q = TAKE_PTR(q);
	if (ret_triples)
		*ret_triples = TAKE_PTR(t);
	if (ret_page_info)
		*ret_page_info = TAKE_PTR(pi);
	if (ret_processed_tx_id)
		*ret_processed_tx_id = sqlite3_column_int64(s, 3);
	return 0;
}

/* Run a one-statement cache write keyed by qkey; -ENOENT if no row changed. */
static int
query_write(struct db *db, sqlite3_stmt *s)
{
	int r = db_run(db, s);

	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

int
db_query_set_in_use(struct db *db, const char *qkey, bool in_use)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (qkey == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_Q_IN_USE, &s);
	if (r < 0)
		return r;
	r = db_begin(db, false);
	if (r < 0)
		return r;
	if ((r = bind_text(db, s, 1, qkey)) < 0 ||
	    (r = bind_int64(db, s, 2, in_use)) < 0 ||
	    (r = bind_int64(db, s, 3, now_ms())) < 0 ||
	    (r = bind_int64(db, s, 4, db->use_seq + 1)) < 0)
		stmt_resetp(&s);
	else
		r = query_write(db, s);
	r = db_end(db, r);
	if (r == 0)
		db->use_seq++;
	return r;
}

int
db_query_remove(struct db *db, const char *qkey)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (qkey == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_Q_REMOVE, &s);
	if (r < 0)
		return r;
	r = db_begin(db, false);
	if (r < 0)
		return r;
	if ((r = bind_text(db, s, 1, qkey)) < 0)
		stmt_resetp(&s);
	else
		r = query_write(db, s);
	return db_end(db, r);
}

int
db_query_bytes(struct db *db, int64_t *ret_bytes)
{
	if (ret_bytes == NULL)
		return -EINVAL;
	return stmt_int64(db, STMT_Q_TOTAL, ret_bytes);
}

/* Collect the least recently used unused keys whose removal brings total
 * within budget. *ret is a JSON array of key strings. */
static int
query_victims(struct db *db, int64_t total, int64_t budget, cJSON **ret)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	_cleanup_json_ cJSON *keys = cJSON_CreateArray();
	int r, rc = SQLITE_DONE;

	if (keys == NULL)
		return -ENOMEM;
	r = db_stmt(db, STMT_Q_LRU, &s);
	if (r < 0)
		return s = NULL, r;
	while (total > budget && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		cJSON *ks;

		if (k == NULL || (ks = cJSON_CreateString(k)) == NULL)
			return -ENOMEM;
		cJSON_AddItemToArray(keys, ks);
		total -= sqlite3_column_int64(s, 1);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc);
	*ret = TAKE_PTR(keys);
	return 0;
}

int
db_query_evict(struct db *db, int64_t budget_bytes, int *ret_evicted)
{
	_cleanup_json_ cJSON *keys = NULL;
	sqlite3_stmt *s = NULL;
	const cJSON *k;
	int64_t total;
	int r, n = 0;

	if (budget_bytes < 0)
		return -EINVAL;
	r = db_stmt(db, STMT_Q_REMOVE, &s);
	if (r < 0)
		return r;
	r = stmt_int64(db, STMT_Q_TOTAL, &total);
	if (r < 0)
		return r;
	if (total <= budget_bytes) {
		if (ret_evicted)
			*ret_evicted = 0;
		return 0;
	}
	r = db_begin(db, false);
	if (r < 0)
		return r;
	/* Recount inside the transaction: that is the state we delete from. */
	r = stmt_int64(db, STMT_Q_TOTAL, &total);
	if (r == 0)
		r = query_victims(db, total, budget_bytes, &keys);
	if (r == 0)
		cJSON_ArrayForEach(k, keys) {
			if ((r = bind_text(db, s, 1, k->valuestring)) < 0) {
				stmt_resetp(&s);
				break;
			}
			if ((r = db_run(db, s)) < 0)
				break;
			n++;
		}
	r = db_end(db, r);
	if (r < 0)
		return r;
	if (ret_evicted)
		*ret_evicted = n;
	return 0;
}

int
db_query_list(struct db *db, cJSON **ret_list)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	_cleanup_json_ cJSON *list = cJSON_CreateArray();
	int r, rc;

	if (list == NULL || ret_list == NULL)
		return list ? -EINVAL : -ENOMEM;
	r = db_stmt(db, STMT_Q_LIST, &s);
	if (r < 0)
		return s = NULL, r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject(), *q = NULL;

		if (o == NULL)
			return -ENOMEM;
		cJSON_AddItemToArray(list, o);
		r = column_json(s, 1, &q);
		if (r < 0)
			return r;
		cJSON_AddItemToObject(o, "q", q);
		if (!cJSON_AddStringToObject(o, "key", (const char *)sqlite3_column_text(s, 0)) ||
		    !cJSON_AddBoolToObject(o, "in-use", sqlite3_column_int(s, 2) != 0) ||
		    !cJSON_AddItemToObject(o, "bytes", json_new_int64(sqlite3_column_int64(s, 3))) ||
		    !cJSON_AddItemToObject(o, "processed-tx-id", json_new_int64(sqlite3_column_int64(s, 4))) ||
		    !cJSON_AddItemToObject(o, "last-used", json_new_int64(sqlite3_column_int64(s, 5))))
			return -ENOMEM;
	}
	if (rc != SQLITE_DONE)
		return db_fail(db, rc);
	*ret_list = TAKE_PTR(list);
	return 0;
}

/* ---- the outbox ---- */

const char *
db_mut_state_to_string(enum db_mut_state st)
{
	static const char *const names[DB_MUT_STATE_MAX] = {
		[DB_MUT_PENDING] = "pending",
		[DB_MUT_SENT] = "sent",
		[DB_MUT_CONFIRMED] = "confirmed",
		[DB_MUT_FAILED] = "failed",
	};

	return (unsigned)st < DB_MUT_STATE_MAX ? names[st] : NULL;
}

void
db_mutation_free(struct db_mutation *m)
{
	if (m == NULL)
		return;
	free(m->mutation_id);
	cJSON_Delete(m->ops);
	cJSON_Delete(m->steps);
	free(m->error);
	free(m->origin);
	free(m);
}

void
db_mutation_list_free(struct db_mutation **list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_mutation_free(list[i]);
}

static void
db_mutation_freep(struct db_mutation **m)
{
	db_mutation_free(*m);
}

/* Read one row of OUTBOX_COLS into a new entry. */
int
db_mutation_from_row(sqlite3_stmt *s, struct db_mutation **ret)
{
	_cleanup_(db_mutation_freep) struct db_mutation *m = calloc(1, sizeof(*m));
	int64_t st;
	int r;

	if (m == NULL)
		return -ENOMEM;
	if (!db_outbox_row_intact(s))
		return -EBADMSG;
	m->seq = sqlite3_column_int64(s, 0);
	if ((r = column_strdup(s, 1, &m->mutation_id)) < 0 ||
	    (r = column_json(s, 2, &m->ops)) < 0 ||
	    (r = column_json(s, 3, &m->steps)) < 0 ||
	    (r = column_strdup(s, 6, &m->error)) < 0 ||
	    (r = column_strdup(s, 9, &m->origin)) < 0)
		return r;
	if (m->mutation_id == NULL || m->steps == NULL)
		return -EBADMSG;
	st = sqlite3_column_int64(s, 4);
	if (st < 0 || st >= DB_MUT_STATE_MAX)
		return -EBADMSG;
	m->state = (enum db_mut_state)st;
	m->tx_id = sqlite3_column_int64(s, 5);
	m->created_ms = sqlite3_column_int64(s, 7);
	m->updated_ms = sqlite3_column_int64(s, 8);
	*ret = TAKE_PTR(m);
	return 0;
}

static int
outbox_insert(struct db *db, sqlite3_stmt *s, const struct db_mutation *m, int64_t now,
    int64_t *ret_seq)
{
	_cleanup_cjson_free_ char *ops = NULL, *steps = NULL;
	int r;

	if (m->ops && (ops = print_json(m->ops)) == NULL)
		return -ENOMEM;
	if ((steps = print_json(m->steps)) == NULL)
		return -ENOMEM;
	if ((r = bind_text(db, s, 1, m->mutation_id)) < 0 ||
	    (r = bind_text(db, s, 2, ops)) < 0 ||
	    (r = bind_text(db, s, 3, steps)) < 0 ||
	    (r = bind_int64(db, s, 4, m->state)) < 0 ||
	    (r = (m->tx_id ? bind_int64(db, s, 5, m->tx_id) : 0)) < 0 ||
	    (r = bind_text(db, s, 6, m->error)) < 0 ||
	    (r = bind_int64(db, s, 7, now)) < 0 ||
	    (r = bind_text(db, s, 8, m->origin)) < 0) {
		stmt_resetp(&s);
		return r;
	}
	r = db_run(db, s);
	if (r < 0)
		return r;
	*ret_seq = sqlite3_last_insert_rowid(db->sql);
	return 0;
}

int
db_outbox_append(struct db *db, struct db_mutation **muts, size_t n)
{
	_cleanup_free_ int64_t *seqs = NULL;
	sqlite3_stmt *s = NULL;
	int64_t now;
	int r;

	if (n == 0)
		return 0;
	if (muts == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (muts[i] == NULL || muts[i]->mutation_id == NULL || muts[i]->steps == NULL ||
		    (unsigned)muts[i]->state >= DB_MUT_STATE_MAX)
			return -EINVAL;
	seqs = calloc(n, sizeof(*seqs));
	if (seqs == NULL)
		return -ENOMEM;
	r = db_stmt(db, STMT_O_INSERT, &s);
	if (r < 0)
		return r;
	now = now_ms();
	r = db_begin(db, true);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = outbox_insert(db, s, muts[i], now, &seqs[i]);
	r = db_end(db, r);
	if (r < 0)
		return r;
	/* Written only now: a failed append leaves the entries untouched. */
	for (size_t i = 0; i < n; i++) {
		muts[i]->seq = seqs[i];
		muts[i]->created_ms = muts[i]->updated_ms = now;
	}
	return 0;
}

/* Run one durable single-row outbox write; -ENOENT if no row changed. */
static int
outbox_write(struct db *db, sqlite3_stmt *s, int bind_r)
{
	int r;

	if (bind_r < 0) {
		stmt_resetp(&s);
		return bind_r;
	}
	r = db_begin(db, true);
	if (r < 0) {
		stmt_resetp(&s);
		return r;
	}
	r = db_run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return db_end(db, r);
}

int
db_outbox_set_state(struct db *db, const char *mutation_id, enum db_mut_state st,
    int64_t tx_id, const char *error)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (mutation_id == NULL || (unsigned)st >= DB_MUT_STATE_MAX)
		return -EINVAL;
	r = db_stmt(db, STMT_O_SET_STATE, &s);
	if (r < 0)
		return r;
	if ((r = bind_text(db, s, 1, mutation_id)) == 0 &&
	    (r = bind_int64(db, s, 2, st)) == 0 &&
	    (r = (tx_id ? bind_int64(db, s, 3, tx_id) : 0)) == 0 &&
	    (r = bind_text(db, s, 4, error)) == 0)
		r = bind_int64(db, s, 5, now_ms());
	return outbox_write(db, s, r);
}

int
db_outbox_set_steps(struct db *db, const char *mutation_id, const cJSON *steps)
{
	_cleanup_cjson_free_ char *text = NULL;
	sqlite3_stmt *s = NULL;
	int r;

	if (mutation_id == NULL || steps == NULL)
		return -EINVAL;
	if ((text = print_json(steps)) == NULL)
		return -ENOMEM;
	r = db_stmt(db, STMT_O_SET_STEPS, &s);
	if (r < 0)
		return r;
	if ((r = bind_text(db, s, 1, mutation_id)) == 0 &&
	    (r = bind_text(db, s, 2, text)) == 0)
		r = bind_int64(db, s, 3, now_ms());
	return outbox_write(db, s, r);
}

int
db_outbox_mark_sent(struct db *db, const char *const *mutation_ids, size_t n)
{
	sqlite3_stmt *s = NULL;
	int64_t now;
	int r;

	if (n == 0)
		return 0;
	if (mutation_ids == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (mutation_ids[i] == NULL)
			return -EINVAL;
	r = db_stmt(db, STMT_O_MARK_SENT, &s);
	if (r < 0)
		return r;
	now = now_ms();
	r = db_begin(db, true);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if ((r = bind_text(db, s, 1, mutation_ids[i])) == 0 &&
		    (r = bind_int64(db, s, 2, now)) == 0)
			r = db_run(db, s);
		else
			stmt_resetp(&s);
	}
	return db_end(db, r);
}

int
db_outbox_settle(struct db *db, const struct db_settle *v, size_t n)
{
	sqlite3_stmt *set = NULL, *rm = NULL;
	int64_t now;
	int r;

	if (n == 0)
		return 0;
	if (v == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (v[i].mutation_id == NULL || v[i].tx_id <= 0)
			return -EINVAL;
	if ((r = db_stmt(db, STMT_O_SET_STATE, &set)) < 0 || (r = db_stmt(db, STMT_O_REMOVE, &rm)) < 0)
		return r;
	now = now_ms();
	r = db_begin(db, true);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (v[i].remove) {
			if ((r = bind_text(db, rm, 1, v[i].mutation_id)) == 0)
				r = db_run(db, rm);
			else
				stmt_resetp(&rm);
			continue;
		}
		if ((r = bind_text(db, set, 1, v[i].mutation_id)) == 0 &&
		    (r = bind_int64(db, set, 2, DB_MUT_CONFIRMED)) == 0 &&
		    (r = bind_int64(db, set, 3, v[i].tx_id)) == 0 &&
		    (r = bind_text(db, set, 4, NULL)) == 0 &&
		    (r = bind_int64(db, set, 5, now)) == 0)
			r = db_run(db, set);
		else
			stmt_resetp(&set);
	}
	return db_end(db, r);
}

int
db_outbox_remove(struct db *db, const char *mutation_id)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (mutation_id == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_O_REMOVE, &s);
	if (r < 0)
		return r;
	return outbox_write(db, s, bind_text(db, s, 1, mutation_id));
}

int
db_outbox_list(struct db *db, unsigned state_mask, struct db_mutation ***ret, size_t *ret_n)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	struct db_mutation **list = NULL;
	size_t n = 0, cap = 0;
	int r, rc;

	if (ret == NULL || ret_n == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_O_LIST, &s);
	if (r < 0)
		return s = NULL, r;
	if ((r = bind_int64(db, s, 1, state_mask & ((1u << DB_MUT_STATE_MAX) - 1))) < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			struct db_mutation **nl;

			cap = cap ? cap * 2 : 16;
			nl = realloc(list, cap * sizeof(*list));
			if (nl == NULL) {
				r = -ENOMEM;
				goto fail;
			}
			list = nl;
		}
		r = db_mutation_from_row(s, &list[n]);
		if (r < 0)
			goto fail;
		n++;
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(db, rc);
		goto fail;
	}
	*ret = list;
	*ret_n = n;
	return 0;
fail:
	db_mutation_list_free(list, n);
	free(list);
	return r;
}

int
db_outbox_get(struct db *db, const char *mutation_id, struct db_mutation **ret)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int r, rc;

	if (mutation_id == NULL || ret == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_O_GET, &s);
	if (r < 0)
		return s = NULL, r;
	if ((r = bind_text(db, s, 1, mutation_id)) < 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_fail(db, rc);
	return db_mutation_from_row(s, ret);
}

int
db_outbox_counts(struct db *db, size_t counts[DB_MUT_STATE_MAX])
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	size_t c[DB_MUT_STATE_MAX] = { 0 };
	int r, rc;

	if (counts == NULL)
		return -EINVAL;
	r = db_stmt(db, STMT_O_COUNTS, &s);
	if (r < 0)
		return s = NULL, r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t st = sqlite3_column_int64(s, 0);

		if (st >= 0 && st < DB_MUT_STATE_MAX)
			c[st] = (size_t)sqlite3_column_int64(s, 1);
	}
	if (rc != SQLITE_DONE)
		return db_fail(db, rc);
	memcpy(counts, c, sizeof(c));
	return 0;
}
