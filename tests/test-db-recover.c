/* Corruption recovery of store/db: garbage over the header, over an outbox
 * page, over a cache page, a whole file of garbage, and a corrupt file with
 * an uncheckpointed WAL. The file is moved aside, never deleted; readable
 * outbox entries, meta and attrs are carried into the fresh database. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>

#include "store/db.h"
#include "store/util.h"
#include "tap.h"

static char tmpdir[256];

static struct db_mutation *
rec_mut(const char *id)
{
	struct db_mutation *m = calloc(1, sizeof(*m));
	char pad[301];

	memset(pad, 'p', 300);
	pad[300] = '\0';
	m->mutation_id = strdup(id);
	m->steps = cJSON_CreateArray();
	cJSON_AddItemToArray(m->steps, cJSON_CreateString(id));
	cJSON_AddItemToArray(m->steps, cJSON_CreateString(pad));
	m->ops = cJSON_CreateString(id);
	m->origin = strdup("recover-test");
	return m;
}

static bool
rec_intact(const struct db_mutation *m)
{
	struct db_mutation *w = rec_mut(m->mutation_id);
	bool ok = json_equal(m->steps, w->steps) && json_equal(m->ops, w->ops) &&
	    m->origin && strcmp(m->origin, "recover-test") == 0;

	db_mutation_free(w);
	return ok;
}

/* A database with meta, attrs, n outbox entries (ids <prefix>0..n-1) and a
 * few cached queries, cleanly closed (WAL checkpointed). */
static void
make_db(const char *path, int n, const char *prefix)
{
	struct db *db = NULL;
	cJSON *attrs = cJSON_Parse("[{\"id\":\"S1\",\"forward-identity\":[\"f\",\"goals\",\"id\"]}]");
	cJSON *local = cJSON_Parse("[{\"id\":\"L1\",\"forward-identity\":[\"g\",\"goals\",\"x\"]}]");

	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_meta_set(db, "server", "ws://127.0.0.1:1"), 0);
	CHECK_INT(db_attrs_replace_server(db, attrs), 0);
	CHECK_INT(db_attrs_add_local(db, local), 0);
	for (int i = 0; i < n; i += 10) {
		struct db_mutation *b[10];
		int k = 0;

		for (; k < 10 && i + k < n; k++) {
			char id[32];

			snprintf(id, sizeof(id), "%s%d", prefix, i + k);
			b[k] = rec_mut(id);
		}
		CHECK_INT(db_outbox_append(db, b, (size_t)k), 0);
		for (int j = 0; j < k; j++)
			db_mutation_free(b[j]);
	}
	CHECK_INT(db_outbox_set_state(db, "m1", DB_MUT_CONFIRMED, 77, NULL), 0);
	for (int i = 0; i < 20; i++) {
		char key[16];
		cJSON *q = cJSON_CreateObject(), *t = cJSON_CreateArray();

		snprintf(key, sizeof(key), "q%d", i);
		cJSON_AddObjectToObject(q, key);
		for (int j = 0; j < 100; j++)
			cJSON_AddItemToArray(t, cJSON_CreateString("triple triple triple triple"));
		CHECK_INT(db_query_put(db, key, q, t, NULL, 5), 0);
		cJSON_Delete(q);
		cJSON_Delete(t);
	}
	db_close(db);
	cJSON_Delete(attrs);
	cJSON_Delete(local);
}

static void
scribble(const char *path, off_t off, size_t len)
{
	int fd = open(path, O_WRONLY);
	char *buf = malloc(len);

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(0x5a ^ (i * 131) ^ (i >> 3));
	CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len);
	close(fd);
	free(buf);
}

static bool
file_equals(const char *path, const char *other)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", path, other);
	return system(cmd) == 0;
}

static void
copy(const char *from, const char *to)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	CHECK_INT(system(cmd), 0);
}

/* Pages of a table and their cell counts, read before the damage. */
static int
leaf_pages(const char *path, const char *table, int64_t *pages, int64_t *cells, int max)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0;

	if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(s, "SELECT pageno, ncell FROM dbstat WHERE name = ?1 AND "
	    "pagetype = 'leaf' ORDER BY pageno", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		while (n < max && sqlite3_step(st) == SQLITE_ROW) {
			pages[n] = sqlite3_column_int64(st, 0);
			cells[n] = sqlite3_column_int64(st, 1);
			n++;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

static bool
integrity_ok(const char *path)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	sqlite3_close(s);
	return ok;
}

/* Open the damaged file and check the recovery. Returns the salvage count. */
static size_t
open_recovered(const char *path, const char *damaged_copy, bool expect_meta)
{
	struct db *db = NULL;
	struct db_mutation **list = NULL;
	size_t n = 0, salvaged;
	char *v = NULL;
	cJSON *attrs = NULL;
	struct stat st;

	CHECK_INT(db_open(path, &db), 0);
	if (db == NULL)
		return 0;
	CHECK(db_recovered_from(db) != NULL);
	if (db_recovered_from(db) == NULL) {
		db_close(db);
		return 0;
	}
	/* Moved aside, byte for byte as it was. */
	CHECK(strncmp(db_recovered_from(db), path, strlen(path)) == 0);
	CHECK(strstr(db_recovered_from(db), ".corrupt-") != NULL);
	CHECK(stat(db_recovered_from(db), &st) == 0);
	CHECK(file_equals(db_recovered_from(db), damaged_copy));
	salvaged = db_recovered_salvaged(db);

	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
	CHECK_INT(n, salvaged);
	for (size_t i = 0; i < n; i++) {
		CHECK(rec_intact(list[i]));
		if (i > 0)
			CHECK(list[i]->seq > list[i - 1]->seq);
		if (strcmp(list[i]->mutation_id, "m1") == 0) {
			CHECK_INT(list[i]->state, DB_MUT_CONFIRMED);
			CHECK_INT(list[i]->tx_id, 77);
		}
	}
	db_mutation_list_free(list, n);
	free(list);
	if (expect_meta) {
		CHECK_INT(db_meta_get(db, "server", &v), 0);
		CHECK_STR(v, "ws://127.0.0.1:1");
		free(v);
		CHECK_INT(db_attrs_load(db, &attrs), 0);
		CHECK_INT(cJSON_GetArraySize(attrs), 2);
		cJSON_Delete(attrs);
	}
	/* The cache is not carried over; the fresh database works. */
	CHECK_INT(db_query_get(db, "q1", NULL, NULL, NULL, NULL), -ENOENT);
	{
		struct db_mutation *m = rec_mut("after-recovery");

		CHECK_INT(db_outbox_append(db, &m, 1), 0);
		db_mutation_free(m);
	}
	db_close(db);
	CHECK(integrity_ok(path));
	/* Opening again is clean: nothing more to recover. */
	db = NULL;
	CHECK_INT(db_open(path, &db), 0);
	CHECK(db && db_recovered_from(db) == NULL);
	db_close(db);
	return salvaged;
}

static char *
tp(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", tmpdir, name) < 0)
		abort();
	return p;
}

static void
test_header(void)
{
	_cleanup_free_ char *p = tp("header.sqlite"), *c = tp("header.copy");

	make_db(p, 300, "m");
	scribble(p, 0, 100);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, true), 300);
}

static void
test_outbox_page(void)
{
	_cleanup_free_ char *p = tp("page.sqlite"), *c = tp("page.copy");
	int64_t pages[256], cells[256];
	int n;

	make_db(p, 600, "m");
	n = leaf_pages(p, "outbox", pages, cells, 256);
	CHECK(n > 10);
	if (n <= 10)
		return;
	/* A leaf in the middle: entries before and after it stay readable. */
	scribble(p, (off_t)(pages[n / 2] - 1) * 4096, 4096);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, true), 600 - cells[n / 2]);
	fprintf(stderr, "# outbox page %lld with %lld entries destroyed\n", (long long)pages[n / 2],
	    (long long)cells[n / 2]);
}

static void
test_two_outbox_pages(void)
{
	_cleanup_free_ char *p = tp("pages2.sqlite"), *c = tp("pages2.copy");
	int64_t pages[256], cells[256];
	int n;

	make_db(p, 600, "m");
	n = leaf_pages(p, "outbox", pages, cells, 256);
	CHECK(n > 10);
	if (n <= 10)
		return;
	scribble(p, (off_t)(pages[2] - 1) * 4096, 4096);
	scribble(p, (off_t)(pages[3] - 1) * 4096, 4096);
	scribble(p, (off_t)(pages[n - 3] - 1) * 4096, 4096);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, true), 600 - cells[2] - cells[3] - cells[n - 3]);
}

static void
test_cache_page(void)
{
	_cleanup_free_ char *p = tp("cache.sqlite"), *c = tp("cache.copy");
	int64_t pages[64], cells[64];
	int n;

	make_db(p, 100, "m");
	n = leaf_pages(p, "queries", pages, cells, 64);
	CHECK(n > 0);
	if (n <= 0)
		return;
	scribble(p, (off_t)(pages[0] - 1) * 4096, 4096);
	copy(p, c);
	/* Damage in the cache costs no outbox entry. */
	CHECK_INT(open_recovered(p, c, true), 100);
}

/* Pages of a table of the given b-tree page type ('internal' or 'leaf'). */
static int
table_pages(const char *path, const char *table, const char *type, int64_t *pages, int max)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0;

	if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(s, "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = ?2 "
	    "ORDER BY pageno", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
		while (n < max && sqlite3_step(st) == SQLITE_ROW)
			pages[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

/* Entries read back page by page are held as failed (not resent by
 * themselves), except confirmed ones; returns how many are held. */
static size_t
count_held(const char *path)
{
	struct db *db = NULL;
	struct db_mutation **list = NULL;
	size_t n = 0, held = 0;

	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i]->mutation_id, "after-recovery") == 0)
			continue;
		if (strcmp(list[i]->mutation_id, "m1") == 0)
			CHECK_INT(list[i]->state, DB_MUT_CONFIRMED);
		else {
			CHECK_INT(list[i]->state, DB_MUT_FAILED);
			CHECK(list[i]->error && strstr(list[i]->error, "\"recovered\""));
			held++;
		}
	}
	db_mutation_list_free(list, n);
	free(list);
	db_close(db);
	return held;
}

/* Page 1 (header and schema) destroyed: SQLite cannot read anything; the
 * rows are found page by page. A removed entry does not come back. */
static void
test_page1(void)
{
	_cleanup_free_ char *p = tp("page1.sqlite"), *c = tp("page1.copy");
	struct db *db = NULL;

	make_db(p, 300, "m");
	CHECK_INT(db_open(p, &db), 0);
	CHECK_INT(db_outbox_remove(db, "m5"), 0);
	db_close(db);
	scribble(p, 0, 4096);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, true), 299);
	CHECK_INT(count_held(p), 298);
	db = NULL;
	CHECK_INT(db_open(p, &db), 0);
	{
		struct db_mutation *m = NULL;

		CHECK_INT(db_outbox_get(db, "m5", &m), -ENOENT);
		db_mutation_free(m);
	}
	db_close(db);
}

/* The outbox's root (an inner page) destroyed: every leaf is intact but
 * unreachable through the b-tree. */
static void
test_outbox_root(void)
{
	_cleanup_free_ char *p = tp("root.sqlite"), *c = tp("root.copy");
	int64_t inner[8];
	int n;

	make_db(p, 600, "m");
	n = table_pages(p, "outbox", "internal", inner, 8);
	CHECK(n >= 1);
	if (n < 1)
		return;
	scribble(p, (off_t)(inner[0] - 1) * 4096, 4096);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, true), 600);
	CHECK_INT(count_held(p), 599);
}

/* A row changed behind SQLite's back (a flipped bit in a payload, which no
 * b-tree check sees): its checksum catches it; only that entry is lost. */
static void
test_checksum(void)
{
	_cleanup_free_ char *p = tp("crc.sqlite"), *c = tp("crc.copy");
	struct db *db = NULL;
	struct db_mutation *m = NULL;
	sqlite3 *s = NULL;

	make_db(p, 50, "m");
	CHECK_INT(sqlite3_open(p, &s), SQLITE_OK);
	CHECK_INT(sqlite3_exec(s, "UPDATE outbox SET steps = '[\"m7\",\"tampered\"]' "
	    "WHERE mutation_id = 'm7'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, true), 49);
	CHECK_INT(db_open(p, &db), 0);
	CHECK_INT(db_outbox_get(db, "m7", &m), -ENOENT);
	db_close(db);
}

/* A file cut short (a bad copy, a full disk during a copy). */
static void
test_truncated(void)
{
	_cleanup_free_ char *p = tp("trunc.sqlite"), *c = tp("trunc.copy");
	struct stat st;
	size_t got;

	make_db(p, 300, "m");
	CHECK_INT(stat(p, &st), 0);
	CHECK_INT(truncate(p, st.st_size / 2), 0);
	copy(p, c);
	got = open_recovered(p, c, true);
	CHECK(got > 0 && got < 300);
	fprintf(stderr, "# truncated to half: %zu of 300 entries carried over\n", got);
}

static void
test_garbage(void)
{
	_cleanup_free_ char *p = tp("garbage.sqlite"), *c = tp("garbage.copy");
	FILE *f = fopen(p, "w");

	for (int i = 0; i < 1000; i++)
		fprintf(f, "this is not a database %d\n", i);
	fclose(f);
	copy(p, c);
	CHECK_INT(open_recovered(p, c, false), 0);
}

/* A writer dies with its last commits only in the WAL; then an old page of
 * the main file is damaged. The WAL moves aside with it and is read too.
 * (Damage to the header alone would be masked here: page 1 is in the WAL.) */
static void
test_wal(void)
{
	_cleanup_free_ char *p = tp("wal.sqlite"), *c = tp("wal.copy"), *w = NULL, *mw = NULL;
	struct stat st;
	pid_t pid;
	int status;

	int64_t pages[64], cells[64];
	int n;

	make_db(p, 100, "m");
	n = leaf_pages(p, "outbox", pages, cells, 64);
	CHECK(n > 3);
	if (n <= 3)
		return;
	pid = fork();
	if (pid == 0) {
		struct db *db = NULL;

		if (db_open(p, &db) < 0)
			_exit(1);
		for (int i = 0; i < 50; i++) {
			char id[32];
			struct db_mutation *m;

			snprintf(id, sizeof(id), "w%d", i);
			m = rec_mut(id);
			if (db_outbox_append(db, &m, 1) < 0)
				_exit(1);
			db_mutation_free(m);
		}
		_exit(0);	/* no close: no checkpoint */
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (asprintf(&w, "%s-wal", p) < 0)
		abort();
	CHECK(stat(w, &st) == 0 && st.st_size > 0);
	scribble(p, (off_t)(pages[1] - 1) * 4096, 4096);
	copy(p, c);
	{
		struct db *db = NULL;

		CHECK_INT(db_open(p, &db), 0);
		CHECK(db && db_recovered_from(db));
		if (db && db_recovered_from(db)) {
			if (asprintf(&mw, "%s-wal", db_recovered_from(db)) < 0)
				abort();
			CHECK(stat(mw, &st) == 0 && st.st_size > 0);
			CHECK(file_equals(db_recovered_from(db), c));
			CHECK_INT(db_recovered_salvaged(db), 150 - cells[1]);
		}
		db_close(db);
	}
}

/* Random damage, deterministic seeds: whatever is hit, db_open succeeds,
 * every carried entry is intact, and the file is moved aside unchanged. */
static void
test_random_damage(void)
{
	_cleanup_free_ char *base = tp("random.base"), *p = tp("random.sqlite"), *c = tp("random.copy");
	struct stat st;
	char cmd[700];

	make_db(base, 400, "m");
	CHECK_INT(stat(base, &st), 0);
	for (unsigned seed = 1; seed <= 40; seed++) {
		unsigned s = seed;
		int hits = 1 + rand_r(&s) % 4;

		snprintf(cmd, sizeof(cmd), "rm -f '%s'*", p);
		CHECK_INT(system(cmd), 0);
		copy(base, p);
		for (int h = 0; h < hits; h++) {
			off_t off = (off_t)(rand_r(&s) % (unsigned)st.st_size);
			size_t len = 1 + rand_r(&s) % 6000;
			int fd = open(p, O_WRONLY);
			char buf[6000];

			for (size_t i = 0; i < len; i++)
				buf[i] = (char)rand_r(&s);
			CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len);
			close(fd);
		}
		copy(p, c);
		{
			struct db *db = NULL;
			struct db_mutation **list = NULL;
			size_t n = 0;

			CHECK_INT(db_open(p, &db), 0);
			if (db == NULL)
				continue;
			if (db_recovered_from(db))
				CHECK(file_equals(db_recovered_from(db), c));
			CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
			for (size_t i = 0; i < n; i++)
				CHECK(rec_intact(list[i]));
			db_mutation_list_free(list, n);
			free(list);
			db_close(db);
			CHECK(integrity_ok(p));
		}
	}
}

static void
test_unreadable(void)
{
	_cleanup_free_ char *p = tp("perm.sqlite");
	struct db *db = NULL;
	struct stat st;

	if (geteuid() == 0) {
		fprintf(stderr, "# running as root: permission case not checked\n");
		return;
	}
	make_db(p, 10, "m");
	CHECK_INT(chmod(p, 0), 0);
	CHECK(db_open(p, &db) < 0);
	CHECK(db == NULL);
	/* Not corrupt, only unreadable: left where it is. */
	CHECK(stat(p, &st) == 0);
	chmod(p, 0600);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	char cmd[300];

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-db-recover-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_header();
	test_outbox_page();
	test_two_outbox_pages();
	test_cache_page();
	test_truncated();
	test_checksum();
	test_page1();
	test_outbox_root();
	test_garbage();
	test_wal();
	test_random_damage();
	test_unreadable();
	if (tap_failed == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	} else
		fprintf(stderr, "kept %s\n", tmpdir);
	return tap_done();
}
