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
	if (rename(path, moved) < 0) {
		int e = errno;

		/* Keep the WAL with its database. */
		(void)rename_if_exists(mwal, wal);
		(void)rename_if_exists(mjrn, jrn);
		return -e;
	}
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
	h[16] = ps == 65536 ? 0 : (ps >> 8) & 0xff;	/* 65536 is written as 1 */
	h[17] = ps == 65536 ? 1 : ps & 0xff;
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
	bool complete;		/* the whole outbox was read through SQLite */
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
/* What to select from a file of schema 1 (no checksums) and of schema 2+. */
#define COLS1 COLS ", NULL AS crc"
#define COLS2 COLS ", crc"
/* Entries are re-summed as they enter the fresh database. */
#define INSERT_SQL "INSERT OR IGNORE INTO outbox(" COLS ", crc) VALUES (?1, ?2, ?3, ?4, ?5, " \
	"?6, ?7, ?8, ?9, ?10, instantd_crc(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))"

/* Prepare SQL made from a constant format and one of our constant column lists. */
static int
prepare_fmt(sqlite3 *sql, sqlite3_stmt **ret, const char *fmt, const char *cols)
{
	_cleanup_free_ char *text = NULL;

	if (asprintf(&text, fmt, cols) < 0)
		return -ENOMEM;
	return sqlite3_prepare_v2(sql, text, -1, ret, NULL) == SQLITE_OK ? 0 : -EBADMSG;
}

static int
salvage_outbox(struct salvage *sv)
{
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *fwd = NULL, *bwd = NULL, *top = NULL;
	int64_t last = 0, low = INT64_MAX, pos;
	const char *cols = COLS2;
	size_t n;
	int r;

	if (sqlite3_prepare_v2(sv->src, "SELECT crc FROM outbox LIMIT 0", -1, &top, NULL) != SQLITE_OK)
		cols = COLS1;
	sqlite3_finalize(top);
	top = NULL;
	if (prepare_fmt(sv->src, &fwd, "SELECT %s FROM outbox WHERE seq >= ?1 AND seq < ?2 "
	    "ORDER BY seq", cols) < 0 ||
	    prepare_fmt(sv->src, &bwd, "SELECT %s FROM outbox WHERE seq > ?1 ORDER BY seq DESC",
	    cols) < 0)
		return 0;	/* no readable outbox */
	sqlite3_bind_int64(fwd, 1, INT64_MIN);
	sqlite3_bind_int64(fwd, 2, INT64_MAX);
	r = salvage_rows(sv, fwd, &last, &n);
	if (r != 0) {
		sv->complete = r > 0;
		return r < 0 ? r : 0;
	}
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
salvage_from(struct db *db, const char *src, size_t *ret_n, bool *ret_complete)
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
	rc = sqlite3_prepare_v2(dst, INSERT_SQL, -1, &sv.ins, NULL);
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
	*ret_complete = sv.complete;
	return 0;
}

/* ---- last resort: reading table rows straight from the pages ---- */

/* Bounds on what a damaged file can make us do. */
#define RAW_PAYLOAD_MAX (64u << 20)
#define RAW_COLS_MAX 32

struct raw_col {
	int type;		/* 0 NULL, 1 integer, 3 text, 4 blob, 2 float (unused) */
	int64_t i;
	const unsigned char *p;
	size_t len;
};

static size_t
raw_varint(const unsigned char *p, const unsigned char *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 9; i++) {
		if (p + i >= end)
			return 0;
		if (i == 8) {
			*ret = (v << 8) | p[i];
			return 9;
		}
		v = (v << 7) | (p[i] & 0x7f);
		if (!(p[i] & 0x80)) {
			*ret = v;
			return i + 1;
		}
	}
	return 0;
}

/* Split a record into columns; the number of columns or -1 if malformed. */
static int
raw_record(const unsigned char *rec, size_t len, struct raw_col *cols, int max)
{
	const unsigned char *end = rec + len, *h, *body;
	uint64_t hlen, st;
	size_t k;
	int n = 0;

	k = raw_varint(rec, end, &hlen);
	if (k == 0 || hlen < k || hlen > len)
		return -1;
	h = rec + k;
	body = rec + hlen;
	while (h < rec + hlen) {
		struct raw_col *c;
		size_t sz;

		k = raw_varint(h, rec + hlen, &st);
		if (k == 0 || n >= max)
			return -1;
		h += k;
		c = &cols[n++];
		memset(c, 0, sizeof(*c));
		if (st == 0) {
			c->type = 0;
			continue;
		}
		if (st == 8 || st == 9) {
			c->type = 1;
			c->i = (int64_t)st - 8;
			continue;
		}
		if (st >= 1 && st <= 6) {
			static const size_t widths[] = { 0, 1, 2, 3, 4, 6, 8 };
			uint64_t v = 0;

			sz = widths[st];
			if ((size_t)(end - body) < sz)
				return -1;
			for (size_t i = 0; i < sz; i++)
				v = v << 8 | body[i];
			/* Sign-extend from sz bytes. */
			if (sz < 8 && (v >> (sz * 8 - 1)) & 1)
				v |= ~(uint64_t)0 << (sz * 8);
			c->type = 1;
			c->i = (int64_t)v;
			body += sz;
			continue;
		}
		if (st == 7) {
			if (end - body < 8)
				return -1;
			c->type = 2;
			body += 8;
			continue;
		}
		if (st < 12)
			return -1;
		sz = (size_t)((st - 12) / 2);
		if ((size_t)(end - body) < sz)
			return -1;
		c->type = st & 1 ? 3 : 4;
		c->p = body;
		c->len = sz;
		body += sz;
	}
	return body == end ? n : -1;
}

static char *
raw_text(const struct raw_col *c)
{
	if (c->type != 3 || memchr(c->p, '\0', c->len))
		return NULL;
	return strndup((const char *)c->p, c->len);
}

/* Read one page (1-based); false if out of the file. */
static bool
raw_page(int fd, uint32_t pgno, unsigned ps, unsigned char *buf)
{
	return pgno > 0 && pread(fd, buf, ps, (off_t)(pgno - 1) * ps) == (ssize_t)ps;
}

/* The whole payload of the table-leaf cell at off in page (overflow pages
 * followed); malloc'd into *ret. */
static int
raw_payload(int fd, unsigned ps, const unsigned char *page, size_t off, uint64_t *ret_rowid,
    unsigned char **ret, size_t *ret_len)
{
	const unsigned char *end = page + ps, *p = page + off;
	uint64_t plen, rowid;
	size_t k, local, got;
	unsigned char *out, *ov;
	size_t u = ps, x = u - 35, m = ((u - 12) * 32 / 255) - 23;
	uint32_t next;

	k = raw_varint(p, end, &plen);
	if (k == 0)
		return -EBADMSG;
	p += k;
	k = raw_varint(p, end, &rowid);
	if (k == 0 || plen > RAW_PAYLOAD_MAX)
		return -EBADMSG;
	p += k;
	if (plen <= x)
		local = plen;
	else {
		size_t kk = m + (plen - m) % (u - 4);

		local = kk <= x ? kk : m;
	}
	if ((size_t)(end - p) < local + (plen > local ? 4 : 0))
		return -EBADMSG;
	out = malloc(plen ? plen : 1);
	if (out == NULL)
		return -ENOMEM;
	memcpy(out, p, local);
	got = local;
	if (got < plen) {
		next = (uint32_t)p[local] << 24 | p[local + 1] << 16 | p[local + 2] << 8 | p[local + 3];
		ov = malloc(ps);
		if (ov == NULL) {
			free(out);
			return -ENOMEM;
		}
		while (got < plen) {
			size_t take = plen - got < u - 4 ? plen - got : u - 4;

			if (!raw_page(fd, next, ps, ov)) {
				free(ov);
				free(out);
				return -EBADMSG;
			}
			memcpy(out + got, ov + 4, take);
			got += take;
			next = (uint32_t)ov[0] << 24 | ov[1] << 16 | ov[2] << 8 | ov[3];
		}
		free(ov);
	}
	*ret_rowid = rowid;
	*ret = out;
	*ret_len = plen;
	return 0;
}

/* Columns 1..9 of a raw outbox row against its checksum in column 10. */
static bool
raw_crc_ok(const struct raw_col *c)
{
	static const int types[] = { SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB };
	struct db_crc_field f[DB_CRC_NFIELDS];

	for (int i = 0; i < DB_CRC_NFIELDS; i++) {
		const struct raw_col *x = &c[1 + i];

		if (x->type == 2)
			return false;
		f[i] = (struct db_crc_field){ .type = types[x->type], .i = x->i, .p = x->p, .len = x->len };
	}
	return db_crc_fields(f, DB_CRC_NFIELDS) == c[10].i;
}

/* An outbox row (schema 1 columns first, then the checksum of schema 2) as
 * an entry; NULL if it is not one or it is damaged. */
static struct db_mutation *
raw_mutation(const struct raw_col *c, int n, uint64_t rowid)
{
	struct db_mutation *m;
	char *t;

	if (n >= 11 && c[10].type == 1 && !raw_crc_ok(c))
		return NULL;
	if (n < 10 || c[0].type != 0 || c[1].type != 3 || (c[2].type != 3 && c[2].type != 0) ||
	    c[3].type != 3 || c[4].type != 1 || c[4].i < 0 || c[4].i >= DB_MUT_STATE_MAX ||
	    (c[5].type != 1 && c[5].type != 0) || (c[6].type != 3 && c[6].type != 0) ||
	    c[7].type != 1 || c[8].type != 1 || (c[9].type != 3 && c[9].type != 0) ||
	    rowid == 0 || rowid > INT64_MAX)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->seq = (int64_t)rowid;
	m->mutation_id = raw_text(&c[1]);
	if (c[2].type == 3) {
		t = raw_text(&c[2]);
		m->ops = t ? cJSON_Parse(t) : NULL;
		if (m->ops == NULL)
			goto bad;
		free(t);
	}
	t = raw_text(&c[3]);
	m->steps = t ? cJSON_Parse(t) : NULL;
	free(t);
	if (m->mutation_id == NULL || m->mutation_id[0] == '\0' || !cJSON_IsArray(m->steps))
		goto bad;
	m->state = (enum db_mut_state)c[4].i;
	m->tx_id = c[5].type == 1 ? c[5].i : 0;
	if (c[6].type == 3 && (m->error = raw_text(&c[6])) == NULL)
		goto bad;
	m->created_ms = c[7].i;
	m->updated_ms = c[8].i;
	if (c[9].type == 3 && (m->origin = raw_text(&c[9])) == NULL)
		goto bad;
	return m;
bad:
	db_mutation_free(m);
	return NULL;
}

/* Scan every table-leaf page of the file at path for outbox rows (and meta
 * and attrs rows). Rows found this way may be older than the last committed state (a
 * newer version lost with a damaged page or left in the WAL), so an entry not
 * yet confirmed is carried over as failed, for a person to retry or discard,
 * never resent by itself. */
static int
salvage_raw(struct db *db, const char *path, size_t *ret_n)
{
	_cleanup_(sqlite3_finalize_p) sqlite3_stmt *ins = NULL, *meta = NULL, *attr = NULL;
	_cleanup_free_ unsigned char *page = NULL;
	_cleanup_close_ int fd = -1;
	sqlite3 *dst = db_sqlite(db);
	unsigned char hdr[100];
	struct raw_col cols[RAW_COLS_MAX];
	struct stat st;
	size_t n = 0;
	unsigned ps;
	uint32_t npages;
	int r, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return 0;
	/* Our files use 4096; trust the header only for a sane value. */
	ps = 4096;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
	    memcmp(hdr, "SQLite format 3", 16) == 0) {
		unsigned v = (unsigned)hdr[16] << 8 | hdr[17];

		if (v == 1)
			v = 65536;
		if (v >= 512 && v <= 65536 && (v & (v - 1)) == 0 && hdr[20] == 0)
			ps = v;
	}
	npages = (uint32_t)(st.st_size / ps);
	page = malloc(ps);
	if (page == NULL)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(dst, INSERT_SQL, -1, &ins, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(dst, "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
		    -1, &meta, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(dst, "INSERT OR IGNORE INTO attrs(id, body, unsynced, ord) "
		    "VALUES (?1, ?2, ?3, ?4)", -1, &attr, NULL);
	if (rc != SQLITE_OK)
		return db_errno_from_sqlite(dst, rc);
	r = db_begin(db, true);
	if (r < 0)
		return r;
	for (uint32_t pg = 1; pg <= npages && r == 0; pg++) {
		size_t base = pg == 1 ? 100 : 0, ncell;

		if (!raw_page(fd, pg, ps, page) || page[base] != 0x0d)
			continue;
		ncell = (size_t)page[base + 3] << 8 | page[base + 4];
		if (base + 8 + 2 * ncell > ps)
			continue;
		for (size_t i = 0; i < ncell && r == 0; i++) {
			size_t off = (size_t)page[base + 8 + 2 * i] << 8 | page[base + 9 + 2 * i];
			_cleanup_free_ unsigned char *pl = NULL;
			struct db_mutation *m;
			uint64_t rowid;
			size_t len;
			int nc;

			if (off < base + 8 || off >= ps)
				continue;
			r = raw_payload(fd, ps, page, off, &rowid, &pl, &len);
			if (r == -EBADMSG) {
				r = 0;
				continue;
			}
			if (r < 0)
				break;
			nc = raw_record(pl, len, cols, RAW_COLS_MAX);
			if (nc == 2 && cols[0].type == 3 && cols[1].type == 3) {
				/* meta(key, value); sqlite_sequence has an integer. */
				sqlite3_bind_text(meta, 1, (const char *)cols[0].p, (int)cols[0].len, SQLITE_TRANSIENT);
				sqlite3_bind_text(meta, 2, (const char *)cols[1].p, (int)cols[1].len, SQLITE_TRANSIENT);
				rc = sqlite3_step(meta);
				sqlite3_reset(meta);
				if (rc != SQLITE_DONE)
					r = db_errno_from_sqlite(dst, rc);
				continue;
			}
			if (nc == 4 && cols[0].type == 3 && cols[1].type == 3 && cols[2].type == 1 &&
			    cols[3].type == 1) {
				/* attrs(id, body, unsynced, ord), if body is that attr. */
				_cleanup_free_ char *id = raw_text(&cols[0]), *body = raw_text(&cols[1]);
				_cleanup_json_ cJSON *a = body ? cJSON_Parse(body) : NULL;
				const char *aid = json_get_string(a, "id");

				if (id == NULL || aid == NULL || strcmp(id, aid) != 0)
					continue;
				sqlite3_bind_text(attr, 1, id, -1, SQLITE_STATIC);
				sqlite3_bind_text(attr, 2, body, -1, SQLITE_STATIC);
				sqlite3_bind_int64(attr, 3, cols[2].i != 0);
				sqlite3_bind_int64(attr, 4, cols[3].i);
				rc = sqlite3_step(attr);
				sqlite3_reset(attr);
				sqlite3_clear_bindings(attr);
				if (rc != SQLITE_DONE)
					r = db_errno_from_sqlite(dst, rc);
				continue;
			}
			m = raw_mutation(cols, nc, rowid);
			if (m == NULL)
				continue;
			if (m->state == DB_MUT_PENDING || m->state == DB_MUT_SENT) {
				free(m->error);
				m->error = strdup("{\"type\":\"recovered\",\"message\":\"read back from a "
				    "damaged database; it may have been sent or removed already: retry or "
				    "discard it\"}");
				m->state = DB_MUT_FAILED;
				if (m->error == NULL)
					r = -ENOMEM;
			}
			if (r == 0) {
				struct salvage sv = { .db = db, .ins = ins };

				r = salvage_insert(&sv, m);
				n += sv.outbox;
			}
			db_mutation_free(m);
		}
	}
	r = db_end(db, r);
	if (r < 0)
		return r;
	*ret_n = n;
	return 0;
}

int
db_salvage(struct db *db, const char *moved, size_t *ret_salvaged)
{
	_cleanup_free_ char *copy = NULL, *cwal = NULL, *cshm = NULL, *mwal = NULL;
	struct stat st;
	size_t n = 0, nraw = 0;
	bool wal, complete = false;
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
	r = salvage_from(db, copy, &n, &complete);
	if (r == -EBADMSG) {
		r = repair_header(copy, wal);
		if (r == 0)
			r = salvage_from(db, copy, &n, &complete);
	}
	if (r < 0 && r != -EBADMSG)
		goto out;
	/* SQLite could not reach every entry (damaged schema, inner pages):
	 * look for intact outbox rows page by page. */
	if (!complete) {
		r = salvage_raw(db, moved, &nraw);
		if (r < 0)
			goto out;
	}
	*ret_salvaged = n + nraw;
	r = 0;
out:
	(void)unlink(copy);
	(void)unlink(cwal);
	(void)unlink(cshm);
	return r;
}
