/* Recovery from a corrupt profile database: move the file aside, and carry
 * what can still be read (meta, attrs, the outbox) into the fresh one. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store/db-internal.h"
#include "store/util.h"

/* How many single-seq probes we spend walking past unreadable outbox pages. */
#define SALVAGE_PROBE_MAX (1 << 20)

static int
rename_if_exists(const char *from, const char *to)
{
	if (rename(from, to) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int
db_move_aside(const char *path, char **ret_moved)
{
	_cleanup_free_ char *moved = NULL, *wal = NULL, *mwal = NULL, *shm = NULL;
	_cleanup_free_ char *jrn = NULL, *mjrn = NULL;
	int64_t ms = now_ms();
	struct stat st;
	int r;

	for (int i = 0; ; i++) {
		free(moved);
		moved = NULL;
		r = i == 0 ? asprintf(&moved, "%s.corrupt-%" PRId64, path, ms) :
		    asprintf(&moved, "%s.corrupt-%" PRId64 "-%d", path, ms, i);
		if (r < 0)
			return moved = NULL, -ENOMEM;
		if (lstat(moved, &st) < 0 && errno == ENOENT)
			break;
		if (i >= 100)
			return -EEXIST;
	}
	if (asprintf(&wal, "%s-wal", path) < 0 || asprintf(&mwal, "%s-wal", moved) < 0 ||
	    asprintf(&jrn, "%s-journal", path) < 0 || asprintf(&mjrn, "%s-journal", moved) < 0 ||
	    asprintf(&shm, "%s-shm", path) < 0)
		return -ENOMEM;
	/* The WAL first: committed transactions may live only there. */
	if ((r = rename_if_exists(wal, mwal)) < 0 || (r = rename_if_exists(jrn, mjrn)) < 0)
		return r;
	if (rename(path, moved) < 0)
		return -errno;
	/* The -shm is only an index of the WAL, rebuilt from it; it holds no data. */
	(void)unlink(shm);
	*ret_moved = TAKE_PTR(moved);
	return 0;
}

static int
copy_file(const char *from, const char *to)
{
	_cleanup_close_ int in = -1, out = -1;
	char buf[65536];
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (ssize_t off = 0; off < n; ) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			off += w;
		}
	}
	return 0;
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* Write a plausible 100-byte database header over the copy at path: the rest
 * of page 1 (the schema) and the other pages may still be readable. */
static int
repair_header(const char *path, bool wal)
{
	_cleanup_close_ int fd = -1;
	unsigned char h[100];
	unsigned ps;
	ssize_t n;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(h, 0, sizeof(h));
	n = pread(fd, h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	ps = (unsigned)h[16] << 8 | h[17];
	if (ps == 1)
		ps = 65536;
	if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0)
		ps = 4096;	/* what db_open creates */
	memset(h, 0, sizeof(h));
	memcpy(h, "SQLite format 3", 16);
	h[16] = (ps >> 8) & 0xff;
	h[17] = ps & 0xff;
	h[18] = h[19] = wal ? 2 : 1;
	h[21] = 64;
	h[22] = 32;
	h[23] = 32;
	put_be32(h + 24, 1);		/* change counter */
	put_be32(h + 28, 0);		/* size unknown: taken from the file size */
	put_be32(h + 40, 1);		/* schema cookie */
	put_be32(h + 44, 4);		/* schema format */
	put_be32(h + 56, 1);		/* UTF-8 */
	put_be32(h + 92, 2);		/* version-valid-for != change counter */
	put_be32(h + 96, SQLITE_VERSION_NUMBER);
	if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EIO;
	return 0;
}

struct salvage {
	struct db *db;		/* destination, inside a transaction */
	sqlite3 *src;
	sqlite3_stmt *ins;	/* outbox insert into db */
	size_t outbox;		/* entries carried */
};

static int
salvage_insert(struct salvage *sv, const struct db_mutation *m)
{
	_cleanup_free_ char *ops = NULL, *steps = NULL;
	sqlite3_stmt *s = sv->ins;
	int rc;

	if (m->ops && (ops = json_print(m->ops)) == NULL)
		return -ENOMEM;
	if ((steps = json_print(m->steps)) == NULL)
		return -ENOMEM;
	sqlite3_bind_int64(s, 1, m->seq);
	sqlite3_bind_text(s, 2, m->mutation_id, -1, SQLITE_STATIC);
	if (ops)
		sqlite3_bind_text(s, 3, ops, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, steps, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, m->state);
	if (m->tx_id)
		sqlite3_bind_int64(s, 6, m->tx_id);
	if (m->error)
		sqlite3_bind_text(s, 7, m->error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, m->created_ms);
	sqlite3_bind_int64(s, 9, m->updated_ms);
	if (m->origin)
		sqlite3_bind_text(s, 10, m->origin, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return db_errno_from_sqlite(db_sqlite(sv->db), rc);
	sv->outbox += (size_t)sqlite3_changes(db_sqlite(sv->db));
	return 0;
}

/* Copy outbox rows produced by stmt s until it ends or fails. *ret_last is
 * the last seq read (unchanged if none), *ret_n how many rows were read.
 * Returns 1 when s ended cleanly, 0 when reading failed (corruption), <0 on
 * a failure to write. */
static int
salvage_rows(struct salvage *sv, sqlite3_stmt *s, int64_t *ret_last, size_t *ret_n)
{
	int rc, r;

	*ret_n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_mutation *m = NULL;

		(*ret_n)++;
		*ret_last = sqlite3_column_int64(s, 0);
		r = db_mutation_from_row(s, &m);
		if (r == -EBADMSG)
			continue;	/* an unreadable entry; keep the rest */
		if (r < 0)
			return sqlite3_reset(s), r;
		r = salvage_insert(sv, m);
		db_mutation_free(m);
		if (r < 0)
			return sqlite3_reset(s), r;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 1 : 0;
}

#define COLS "seq, mutation_id, ops, steps, state, tx_id, error, created_ms, updated_ms, origin"

static int
salvage_outbox(struct salvage *sv)
{
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *fwd = NULL, *bwd = NULL, *top = NULL;
	int64_t last = 0, low = INT64_MAX, pos;
	size_t n;
	int r;

	if (sqlite3_prepare_v2(sv->src, "SELECT " COLS " FROM outbox WHERE seq >= ?1 AND seq < ?2 "
	    "ORDER BY seq", -1, &fwd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sv->src, "SELECT " COLS " FROM outbox WHERE seq > ?1 "
	    "ORDER BY seq DESC", -1, &bwd, NULL) != SQLITE_OK)
		return 0;	/* no readable outbox */
	sqlite3_bind_int64(fwd, 1, INT64_MIN);
	sqlite3_bind_int64(fwd, 2, INT64_MAX);
	r = salvage_rows(sv, fwd, &last, &n);
	if (r != 0)
		return r < 0 ? r : 0;
	/* Reading stopped at a bad page: read from the other end... */
	sqlite3_bind_int64(bwd, 1, last);
	r = salvage_rows(sv, bwd, &low, &n);
	if (r < 0)
		return r;
	if (low == INT64_MAX && sqlite3_prepare_v2(sv->src, "SELECT seq FROM sqlite_sequence "
	    "WHERE name = 'outbox'", -1, &top, NULL) == SQLITE_OK &&
	    sqlite3_step(top) == SQLITE_ROW)
		low = sqlite3_column_int64(top, 0) + 1;
	/* ...and probe the gap between, one seq at a time, scanning on from
	 * every readable place. */
	sqlite3_bind_int64(fwd, 2, low);
	pos = last + 1;
	for (int probes = 0; pos < low && probes < SALVAGE_PROBE_MAX; probes++) {
		int64_t got = pos - 1;

		sqlite3_bind_int64(fwd, 1, pos);
		r = salvage_rows(sv, fwd, &got, &n);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		pos = n > 0 ? got + 1 : pos + 1;
	}
	return 0;
}

static int
salvage_meta_attrs(struct salvage *sv)
{
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *rm = NULL, *ra = NULL, *wm = NULL, *wa = NULL;
	sqlite3 *dst = db_sqlite(sv->db);
	int rc;

	if (sqlite3_prepare_v2(dst, "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
	    -1, &wm, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(dst, "INSERT OR IGNORE INTO attrs(id, body, unsynced, ord) "
	    "VALUES (?1, ?2, ?3, ?4)", -1, &wa, NULL) != SQLITE_OK)
		return db_errno_from_sqlite(dst, sqlite3_errcode(dst));
	if (sqlite3_prepare_v2(sv->src, "SELECT key, value FROM meta", -1, &rm, NULL) == SQLITE_OK)
		while (sqlite3_step(rm) == SQLITE_ROW) {
			if (sqlite3_column_type(rm, 0) != SQLITE_TEXT ||
			    sqlite3_column_type(rm, 1) != SQLITE_TEXT)
				continue;
			sqlite3_bind_value(wm, 1, sqlite3_column_value(rm, 0));
			sqlite3_bind_value(wm, 2, sqlite3_column_value(rm, 1));
			rc = sqlite3_step(wm);
			sqlite3_reset(wm);
			if (rc != SQLITE_DONE)
				return db_errno_from_sqlite(dst, rc);
		}
	if (sqlite3_prepare_v2(sv->src, "SELECT id, body, unsynced, ord FROM attrs", -1, &ra,
	    NULL) == SQLITE_OK)
		while (sqlite3_step(ra) == SQLITE_ROW) {
			const char *body = (const char *)sqlite3_column_text(ra, 1);
			_cleanup_json_ cJSON *a = body ? cJSON_Parse(body) : NULL;

			if (sqlite3_column_type(ra, 0) != SQLITE_TEXT || !cJSON_IsObject(a))
				continue;
			sqlite3_bind_value(wa, 1, sqlite3_column_value(ra, 0));
			sqlite3_bind_text(wa, 2, body, -1, SQLITE_STATIC);
			sqlite3_bind_int64(wa, 3, sqlite3_column_int64(ra, 2) != 0);
			sqlite3_bind_int64(wa, 4, sqlite3_column_int64(ra, 3));
			rc = sqlite3_step(wa);
			sqlite3_reset(wa);
			if (rc != SQLITE_DONE)
				return db_errno_from_sqlite(dst, rc);
		}
	return 0;
}

/* Salvage from the database file at src. -EBADMSG if not even its schema
 * can be read. */
static int
salvage_from(struct db *db, const char *src, size_t *ret_n)
{
	_cleanup_(sqlite3_close_p) sqlite3 *s = NULL;
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *probe = NULL;
	struct salvage sv = { .db = db };
	sqlite3 *dst = db_sqlite(db);
	int rc, r;

	rc = sqlite3_open_v2(src, &s, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return s ? -EBADMSG : -ENOMEM;
	sqlite3_extended_result_codes(s, 1);
	rc = sqlite3_prepare_v2(s, "SELECT name FROM sqlite_master", -1, &probe, NULL);
	if (rc == SQLITE_OK)
		while ((rc = sqlite3_step(probe)) == SQLITE_ROW)
			;
	if (rc != SQLITE_DONE)
		return -EBADMSG;
	sv.src = s;
	rc = sqlite3_prepare_v2(dst, "INSERT OR IGNORE INTO outbox(" COLS ") VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", -1, &sv.ins, NULL);
	if (rc != SQLITE_OK)
		return db_errno_from_sqlite(dst, rc);
	r = db_begin(db, true);
	if (r < 0) {
		sqlite3_finalize(sv.ins);
		return r;
	}
	r = salvage_meta_attrs(&sv);
	if (r == 0)
		r = salvage_outbox(&sv);
	sqlite3_finalize(sv.ins);
	r = db_end(db, r);
	if (r < 0)
		return r;
	*ret_n = sv.outbox;
	return 0;
}

int
db_salvage(struct db *db, const char *moved, size_t *ret_salvaged)
{
	_cleanup_free_ char *copy = NULL, *cwal = NULL, *cshm = NULL, *mwal = NULL;
	struct stat st;
	size_t n = 0;
	bool wal;
	int r;

	if (asprintf(&copy, "%s.salvage", moved) < 0 || asprintf(&cwal, "%s-wal", copy) < 0 ||
	    asprintf(&cshm, "%s-shm", copy) < 0 || asprintf(&mwal, "%s-wal", moved) < 0)
		return -ENOMEM;
	/* Reading a WAL database writes its -shm and may checkpoint: work on a copy. */
	r = copy_file(moved, copy);
	if (r < 0)
		goto out;
	wal = stat(mwal, &st) == 0;
	if (wal && (r = copy_file(mwal, cwal)) < 0)
		goto out;
	r = salvage_from(db, copy, &n);
	if (r == -EBADMSG) {
		r = repair_header(copy, wal);
		if (r == 0)
			r = salvage_from(db, copy, &n);
	}
	if (r == 0)
		*ret_salvaged = n;
out:
	(void)unlink(copy);
	(void)unlink(cwal);
	(void)unlink(cshm);
	return r;
}
