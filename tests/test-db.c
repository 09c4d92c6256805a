/* Unit tests of store/db: every public function, its failure paths, full
 * disk (a size limit), schema versions, and statement reuse. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include "store/db.h"
#include "store/db-internal.h"
#include "store/util.h"
#include "tap.h"

static char tmpdir[256];

static char *
tpath(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", tmpdir, name) < 0)
		abort();
	return p;
}

static cJSON *
J(const char *text)
{
	cJSON *v = cJSON_Parse(text);

	if (v == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", text);
		abort();
	}
	return v;
}

static bool
json_is(const cJSON *v, const char *text)
{
	_cleanup_json_ cJSON *w = J(text);

	return json_equal(v, w);
}

static struct db_mutation *
mut_new(const char *id, const char *steps)
{
	struct db_mutation *m = calloc(1, sizeof(*m));

	m->mutation_id = strdup(id);
	m->steps = J(steps);
	m->ops = J("[[\"update\",\"goals\",\"g1\",{\"title\":\"x\"}]]");
	m->origin = strdup("test");
	return m;
}

static int
raw_exec(const char *path, const char *sql, char *out, size_t outlen)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &s, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && out)
			snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
	return rc;
}

static void
test_open(void)
{
	_cleanup_free_ char *p = tpath("open.sqlite"), *bad = tpath("nodir/x.sqlite");
	_cleanup_free_ char *newer = tpath("newer.sqlite");
	struct db *db = NULL;
	struct stat st;
	char buf[64];

	CHECK_INT(db_open(bad, &db), -ENOENT);
	CHECK(db == NULL);
	CHECK_INT(db_open(NULL, &db), -EINVAL);

	CHECK_INT(db_open(p, &db), 0);
	CHECK(db != NULL);
	CHECK(db_recovered_from(db) == NULL);
	CHECK_INT(db_recovered_salvaged(db), 0);
	CHECK_STR(db_errmsg(db), "");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	db_close(db);
	db_close(NULL);
	CHECK(db_recovered_from(NULL) == NULL);

	CHECK_INT(raw_exec(p, "PRAGMA journal_mode", buf, sizeof(buf)), SQLITE_OK);
	CHECK_STR(buf, "wal");
	CHECK_INT(raw_exec(p, "PRAGMA user_version", buf, sizeof(buf)), SQLITE_OK);
	CHECK_STR(buf, "3");

	/* Reopen: migrations are not re-run, data stays. */
	db = NULL;
	CHECK_INT(db_open(p, &db), 0);
	CHECK_INT(db_meta_set(db, "k", "v"), 0);
	db_close(db);
	db = NULL;
	CHECK_INT(db_open(p, &db), 0);
	{
		_cleanup_free_ char *v = NULL;

		CHECK_INT(db_meta_get(db, "k", &v), 0);
		CHECK_STR(v, "v");
	}
	db_close(db);

	/* A file from a newer schema is refused and left alone. */
	db = NULL;
	CHECK_INT(db_open(newer, &db), 0);
	db_close(db);
	db = NULL;
	CHECK_INT(raw_exec(newer, "PRAGMA user_version=99", NULL, 0), SQLITE_OK);
	CHECK_INT(db_open(newer, &db), -EPROTO);
	CHECK(db == NULL);
	CHECK_INT(raw_exec(newer, "PRAGMA user_version", buf, sizeof(buf)), SQLITE_OK);
	CHECK_STR(buf, "99");
}

/* A file of schema 1 (no checksums) is migrated; its entries stay readable. */
static void
test_migrate_v1(void)
{
	_cleanup_free_ char *p = tpath("v1.sqlite");
	struct db *db = NULL;
	struct db_mutation *m = NULL;
	char buf[64];
	sqlite3 *s = NULL;

	CHECK_INT(sqlite3_open(p, &s), SQLITE_OK);
	CHECK_INT(sqlite3_exec(s, "PRAGMA journal_mode=WAL;"
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
	    "CREATE INDEX outbox_state ON outbox(state, seq);"
	    "INSERT INTO outbox(mutation_id, steps, state, created_ms, updated_ms) "
	    " VALUES ('old', '[1]', 0, 5, 5);"
	    "PRAGMA user_version=1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);

	CHECK_INT(db_open(p, &db), 0);
	CHECK(db && db_recovered_from(db) == NULL);
	CHECK_INT(raw_exec(p, "PRAGMA user_version", buf, sizeof(buf)), SQLITE_OK);
	CHECK_STR(buf, "3");
	/* 3: the mirror's size is summed from an index */
	CHECK_INT(raw_exec(p, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%queries(bytes)%'",
	    buf, sizeof(buf)), SQLITE_OK);
	CHECK_STR(buf, "queries_bytes");
	CHECK_INT(db_outbox_get(db, "old", &m), 0);
	CHECK(m && json_is(m->steps, "[1]") && m->seq == 1);
	db_mutation_free(m);
	/* Updating an old row gives it a checksum. */
	CHECK_INT(db_outbox_set_state(db, "old", DB_MUT_SENT, 0, NULL), 0);
	db_close(db);
	CHECK_INT(raw_exec(p, "SELECT crc IS NOT NULL FROM outbox WHERE mutation_id = 'old'", buf,
	    sizeof(buf)), SQLITE_OK);
	CHECK_STR(buf, "1");
}

static void
test_meta(struct db *db)
{
	char *v = NULL;

	CHECK_INT(db_meta_get(db, "missing", &v), -ENOENT);
	CHECK(v == NULL);
	CHECK_INT(db_meta_set(db, "server", "wss://example.test"), 0);
	CHECK_INT(db_meta_get(db, "server", &v), 0);
	CHECK_STR(v, "wss://example.test");
	free(v);
	v = NULL;
	CHECK_INT(db_meta_set(db, "server", "ws://other"), 0);
	CHECK_INT(db_meta_get(db, "server", &v), 0);
	CHECK_STR(v, "ws://other");
	free(v);
	v = NULL;
	CHECK_INT(db_meta_set(db, "server", NULL), 0);
	CHECK_INT(db_meta_get(db, "server", &v), -ENOENT);
	CHECK_INT(db_meta_set(db, "server", NULL), 0);	/* deleting nothing is fine */
	CHECK_INT(db_meta_set(db, NULL, "x"), -EINVAL);
	CHECK_INT(db_meta_get(db, NULL, &v), -EINVAL);
	CHECK_INT(db_meta_get(db, "x", NULL), -EINVAL);
}

static void
test_attrs(struct db *db)
{
	_cleanup_json_ cJSON *local = J("[{\"id\":\"L1\",\"forward-identity\":[\"i1\",\"goals\",\"title\"],\"isUnsynced\":true},"
	    "{\"id\":\"L2\",\"forward-identity\":[\"i2\",\"goals\",\"n\"],\"isUnsynced\":true}]");
	_cleanup_json_ cJSON *server = J("[{\"id\":\"S1\",\"forward-identity\":[\"j1\",\"goals\",\"id\"]},"
	    "{\"id\":\"L1\",\"forward-identity\":[\"i1\",\"goals\",\"title\"],\"unique?\":false}]");
	_cleanup_json_ cJSON *server2 = J("[{\"id\":\"S2\",\"forward-identity\":[\"k\",\"todos\",\"id\"]}]");
	_cleanup_json_ cJSON *more = J("[{\"id\":\"L3\"},{\"id\":\"S2\",\"other\":1}]");
	cJSON *all = NULL;

	CHECK_INT(db_attrs_load(db, &all), 0);
	CHECK(json_is(all, "[]"));
	cJSON_Delete(all);

	CHECK_INT(db_attrs_add_local(db, local), 0);
	CHECK_INT(db_attrs_load(db, &all), 0);
	CHECK(json_is(all, "[{\"id\":\"L1\",\"forward-identity\":[\"i1\",\"goals\",\"title\"],\"isUnsynced\":true},"
	    "{\"id\":\"L2\",\"forward-identity\":[\"i2\",\"goals\",\"n\"],\"isUnsynced\":true}]"));
	cJSON_Delete(all);

	/* init-ok: the server has L1 now; L2 stays unsynced, after the server's. */
	CHECK_INT(db_attrs_replace_server(db, server), 0);
	CHECK_INT(db_attrs_load(db, &all), 0);
	CHECK(json_is(all, "[{\"id\":\"S1\",\"forward-identity\":[\"j1\",\"goals\",\"id\"]},"
	    "{\"id\":\"L1\",\"forward-identity\":[\"i1\",\"goals\",\"title\"],\"unique?\":false},"
	    "{\"id\":\"L2\",\"forward-identity\":[\"i2\",\"goals\",\"n\"],\"isUnsynced\":true}]"));
	cJSON_Delete(all);

	/* refresh-ok: server attrs are replaced as a whole; local ones kept. */
	CHECK_INT(db_attrs_replace_server(db, server2), 0);
	/* An id already known is left alone; new local ones go after older ones. */
	CHECK_INT(db_attrs_add_local(db, more), 0);
	CHECK_INT(db_attrs_load(db, &all), 0);
	CHECK(json_is(all, "[{\"id\":\"S2\",\"forward-identity\":[\"k\",\"todos\",\"id\"]},"
	    "{\"id\":\"L2\",\"forward-identity\":[\"i2\",\"goals\",\"n\"],\"isUnsynced\":true},"
	    "{\"id\":\"L3\",\"isUnsynced\":true}]"));
	cJSON_Delete(all);

	/* Bad shapes are refused and change nothing. */
	{
		_cleanup_json_ cJSON *notarr = J("{\"id\":\"x\"}"), *noid = J("[{\"x\":1}]");
		_cleanup_json_ cJSON *numid = J("[{\"id\":5}]"), *notobj = J("[\"S9\"]");

		CHECK_INT(db_attrs_replace_server(db, notarr), -EINVAL);
		CHECK_INT(db_attrs_replace_server(db, noid), -EINVAL);
		CHECK_INT(db_attrs_replace_server(db, NULL), -EINVAL);
		CHECK_INT(db_attrs_add_local(db, numid), -EINVAL);
		CHECK_INT(db_attrs_add_local(db, notobj), -EINVAL);
		CHECK_INT(db_attrs_load(db, &all), 0);
		CHECK_INT(cJSON_GetArraySize(all), 3);
		cJSON_Delete(all);
	}
}

static int64_t
list_bytes(const cJSON *list, const char *key)
{
	const cJSON *o;
	int64_t b = -1;

	cJSON_ArrayForEach(o, list)
		if (strcmp(json_get_string(o, "key"), key) == 0)
			(void)json_get_int64(json_get(o, "bytes"), &b);
	return b;
}

static void
test_queries(struct db *db)
{
	_cleanup_json_ cJSON *q1 = J("{\"goals\":{\"todos\":{}}}"), *q2 = J("{\"todos\":{}}");
	_cleanup_json_ cJSON *t1 = J("[[\"e1\",\"a1\",\"v1\",1],[\"e1\",\"a2\",5,2]]");
	_cleanup_json_ cJSON *t2 = J("[[\"e2\",\"a1\",\"w\",3]]"), *pi = J("{\"goals\":{\"start-cursor\":[1]}}");
	_cleanup_free_ char *k1 = json_canonical(q1), *k2 = json_canonical(q2);
	_cleanup_free_ char *ts = NULL;
	cJSON *q = NULL, *t = NULL, *p = NULL, *list = NULL;
	int64_t tx = 0, total = 0;
	int ev = -1;

	CHECK_INT(db_query_get(db, k1, &q, &t, &p, &tx), -ENOENT);
	CHECK(q == NULL && t == NULL && p == NULL && tx == 0);
	CHECK_INT(db_query_set_in_use(db, k1, true), -ENOENT);
	CHECK_INT(db_query_remove(db, k1), -ENOENT);
	CHECK_INT(db_query_put(db, NULL, q1, t1, NULL, 1), -EINVAL);
	CHECK_INT(db_query_put(db, k1, q1, q1, NULL, 1), -EINVAL);	/* triples must be an array */
	CHECK_INT(db_query_get(db, NULL, NULL, NULL, NULL, NULL), -EINVAL);

	CHECK_INT(db_query_put(db, k1, q1, t1, pi, 10), 0);
	CHECK_INT(db_query_get(db, k1, &q, &t, &p, &tx), 0);
	CHECK(json_equal(q, q1));
	CHECK(json_equal(t, t1));
	CHECK(json_equal(p, pi));
	CHECK_INT(tx, 10);
	cJSON_Delete(q);
	cJSON_Delete(t);
	cJSON_Delete(p);
	q = t = p = NULL;

	/* A new result replaces the triples; NULL page-info; out-params optional. */
	CHECK_INT(db_query_put(db, k1, q1, t2, NULL, 12), 0);
	CHECK_INT(db_query_get(db, k1, NULL, &t, &p, NULL), 0);
	CHECK(json_equal(t, t2));
	CHECK(p == NULL);
	cJSON_Delete(t);
	t = NULL;
	CHECK_INT(db_query_get(db, k1, NULL, NULL, NULL, &tx), 0);
	CHECK_INT(tx, 12);

	/* Big processed-tx-ids are kept exactly. */
	CHECK_INT(db_query_put(db, k2, q2, t1, NULL, 4503599627370497LL), 0);
	CHECK_INT(db_query_get(db, k2, NULL, NULL, NULL, &tx), 0);
	CHECK(tx == 4503599627370497LL);

	/* Honest sizes: key + q + triples + page-info as stored. */
	CHECK_INT(db_query_list(db, &list), 0);
	CHECK_INT(cJSON_GetArraySize(list), 2);
	ts = json_print(t2);
	{
		_cleanup_free_ char *qs = json_print(q1);

		CHECK_INT(list_bytes(list, k1), strlen(k1) + strlen(qs) + strlen(ts));
	}
	/* k1 was used before k2. */
	CHECK_STR(json_get_string(cJSON_GetArrayItem(list, 0), "key"), k1);
	CHECK(json_equal(json_get(cJSON_GetArrayItem(list, 0), "q"), q1));
	CHECK(cJSON_IsFalse(json_get(cJSON_GetArrayItem(list, 0), "in-use")));
	CHECK(json_get(cJSON_GetArrayItem(list, 0), "last-used") != NULL);
	CHECK(json_get(cJSON_GetArrayItem(list, 1), "processed-tx-id") != NULL);
	CHECK_INT(db_query_bytes(db, &total), 0);
	CHECK_INT(total, list_bytes(list, k1) + list_bytes(list, k2));
	cJSON_Delete(list);
	list = NULL;
	CHECK_INT(db_query_bytes(db, NULL), -EINVAL);

	/* Eviction: in-use queries stay; the least recently used goes first. */
	CHECK_INT(db_query_evict(db, -1, &ev), -EINVAL);
	CHECK_INT(db_query_evict(db, total, &ev), 0);
	CHECK_INT(ev, 0);
	CHECK_INT(db_query_set_in_use(db, k1, true), 0);	/* k1 now most recent and used */
	CHECK_INT(db_query_evict(db, 0, &ev), 0);
	CHECK_INT(ev, 1);					/* only k2 could go */
	CHECK_INT(db_query_get(db, k2, NULL, NULL, NULL, NULL), -ENOENT);
	CHECK_INT(db_query_get(db, k1, NULL, NULL, NULL, NULL), 0);
	CHECK_INT(db_query_set_in_use(db, k1, false), 0);
	CHECK_INT(db_query_evict(db, 0, NULL), 0);
	CHECK_INT(db_query_get(db, k1, NULL, NULL, NULL, NULL), -ENOENT);
	CHECK_INT(db_query_bytes(db, &total), 0);
	CHECK_INT(total, 0);

	/* LRU order with a budget: put a, b, c; touch a; budget for two -> b goes. */
	{
		const char *names[] = { "{\"a\":{}}", "{\"b\":{}}", "{\"c\":{}}" };
		_cleanup_json_ cJSON *tt = J("[[\"e\",\"a\",\"vvvvvvvvvvvvvvvvvvvvvvvv\",1]]");
		int64_t one;

		for (size_t i = 0; i < 3; i++) {
			_cleanup_json_ cJSON *qq = J(names[i]);

			CHECK_INT(db_query_put(db, names[i], qq, tt, NULL, 1), 0);
		}
		CHECK_INT(db_query_bytes(db, &total), 0);
		one = total / 3;
		CHECK_INT(total, one * 3);
		CHECK_INT(db_query_set_in_use(db, names[0], true), 0);
		CHECK_INT(db_query_set_in_use(db, names[0], false), 0);
		CHECK_INT(db_query_evict(db, 2 * one, &ev), 0);
		CHECK_INT(ev, 1);
		CHECK_INT(db_query_get(db, names[1], NULL, NULL, NULL, NULL), -ENOENT);
		CHECK_INT(db_query_get(db, names[0], NULL, NULL, NULL, NULL), 0);
		CHECK_INT(db_query_get(db, names[2], NULL, NULL, NULL, NULL), 0);
		/* An in-use mark survives a new result. */
		CHECK_INT(db_query_set_in_use(db, names[2], true), 0);
		CHECK_INT(db_query_put(db, names[2], q2, tt, NULL, 2), 0);
		CHECK_INT(db_query_evict(db, 0, &ev), 0);
		CHECK_INT(ev, 1);
		CHECK_INT(db_query_get(db, names[2], NULL, NULL, NULL, NULL), 0);
		CHECK_INT(db_query_remove(db, names[2]), 0);
		CHECK_INT(db_query_remove(db, names[2]), -ENOENT);
	}
}

static void
test_queries_in_use_reset(const char *path)
{
	_cleanup_json_ cJSON *q = J("{\"x\":{}}"), *t = J("[]");
	struct db *db = NULL;
	int ev = -1;

	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_query_put(db, "kx", q, t, NULL, 1), 0);
	CHECK_INT(db_query_set_in_use(db, "kx", true), 0);
	db_close(db);
	db = NULL;
	/* After a restart nobody uses it: it can be evicted. */
	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_query_evict(db, 0, &ev), 0);
	CHECK_INT(ev, 1);
	db_close(db);
}

static void
test_outbox(struct db *db)
{
	struct db_mutation *m[3], *got = NULL, **list = NULL;
	size_t n = 99, counts[DB_MUT_STATE_MAX];
	int64_t before = now_ms();

	CHECK_INT(db_outbox_append(db, NULL, 0), 0);
	CHECK_INT(db_outbox_counts(db, counts), 0);
	CHECK_INT(counts[DB_MUT_PENDING] + counts[DB_MUT_SENT] + counts[DB_MUT_CONFIRMED] +
	    counts[DB_MUT_FAILED], 0);
	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
	CHECK_INT(n, 0);
	free(list);
	list = NULL;

	m[0] = mut_new("m0", "[[\"add-triple\",\"e\",\"a\",1]]");
	m[1] = mut_new("m1", "[[\"add-triple\",\"e\",\"a\",2]]");
	m[2] = mut_new("m2", "[[\"add-triple\",\"e\",\"a\",3]]");
	cJSON_Delete(m[1]->ops);
	m[1]->ops = NULL;
	free(m[1]->origin);
	m[1]->origin = NULL;
	CHECK_INT(db_outbox_append(db, m, 3), 0);
	CHECK(m[0]->seq > 0 && m[1]->seq == m[0]->seq + 1 && m[2]->seq == m[1]->seq + 1);
	CHECK(m[0]->created_ms >= before && m[0]->updated_ms == m[0]->created_ms);

	/* Duplicate id: the whole batch fails, nothing of it is stored or assigned. */
	{
		struct db_mutation *b[2] = { mut_new("m3", "[]"), mut_new("m0", "[]") };

		CHECK_INT(db_outbox_append(db, b, 2), -EEXIST);
		CHECK_INT(b[0]->seq, 0);
		CHECK_INT(db_outbox_get(db, "m3", &got), -ENOENT);
		CHECK(strlen(db_errmsg(db)) > 0);
		/* Invalid entries. */
		cJSON_Delete(b[1]->steps);
		b[1]->steps = NULL;
		free(b[1]->mutation_id);
		b[1]->mutation_id = strdup("m4");
		CHECK_INT(db_outbox_append(db, b, 2), -EINVAL);
		b[1]->steps = J("[]");
		b[1]->state = (enum db_mut_state)7;
		CHECK_INT(db_outbox_append(db, b, 2), -EINVAL);
		CHECK_INT(db_outbox_append(db, NULL, 2), -EINVAL);
		db_mutation_free(b[0]);
		db_mutation_free(b[1]);
	}

	CHECK_INT(db_outbox_get(db, "m1", &got), 0);
	CHECK_INT(got->seq, m[1]->seq);
	CHECK_STR(got->mutation_id, "m1");
	CHECK(got->ops == NULL && got->origin == NULL && got->error == NULL);
	CHECK(json_is(got->steps, "[[\"add-triple\",\"e\",\"a\",2]]"));
	CHECK_INT(got->state, DB_MUT_PENDING);
	CHECK_INT(got->tx_id, 0);
	CHECK_INT(got->created_ms, m[1]->created_ms);
	db_mutation_free(got);
	got = NULL;
	CHECK_INT(db_outbox_get(db, "nope", &got), -ENOENT);
	CHECK_INT(db_outbox_get(db, NULL, &got), -EINVAL);

	/* State changes. */
	CHECK_INT(db_outbox_set_state(db, "m0", DB_MUT_SENT, 0, NULL), 0);
	CHECK_INT(db_outbox_set_state(db, "m1", DB_MUT_CONFIRMED, 4503599627370497LL, NULL), 0);
	CHECK_INT(db_outbox_set_state(db, "m2", DB_MUT_FAILED, 0, "{\"type\":\"permission-denied\"}"), 0);
	CHECK_INT(db_outbox_set_state(db, "nope", DB_MUT_SENT, 0, NULL), -ENOENT);
	CHECK_INT(db_outbox_set_state(db, "m0", (enum db_mut_state)9, 0, NULL), -EINVAL);
	CHECK_INT(db_outbox_set_state(db, NULL, DB_MUT_SENT, 0, NULL), -EINVAL);
	CHECK_INT(db_outbox_get(db, "m1", &got), 0);
	CHECK_INT(got->state, DB_MUT_CONFIRMED);
	CHECK(got->tx_id == 4503599627370497LL);
	db_mutation_free(got);
	CHECK_INT(db_outbox_get(db, "m2", &got), 0);
	CHECK_INT(got->state, DB_MUT_FAILED);
	CHECK_STR(got->error, "{\"type\":\"permission-denied\"}");
	CHECK(json_is(got->ops, "[[\"update\",\"goals\",\"g1\",{\"title\":\"x\"}]]"));
	CHECK_STR(got->origin, "test");
	db_mutation_free(got);
	got = NULL;
	/* Retry: back to pending clears tx-id and error. */
	CHECK_INT(db_outbox_set_state(db, "m2", DB_MUT_PENDING, 0, NULL), 0);
	CHECK_INT(db_outbox_get(db, "m2", &got), 0);
	CHECK(got->error == NULL && got->tx_id == 0 && got->state == DB_MUT_PENDING);
	db_mutation_free(got);
	got = NULL;

	CHECK_INT(db_outbox_counts(db, counts), 0);
	CHECK_INT(counts[DB_MUT_PENDING], 1);
	CHECK_INT(counts[DB_MUT_SENT], 1);
	CHECK_INT(counts[DB_MUT_CONFIRMED], 1);
	CHECK_INT(counts[DB_MUT_FAILED], 0);
	CHECK_INT(db_outbox_counts(db, NULL), -EINVAL);

	/* Steps rewrite. */
	{
		_cleanup_json_ cJSON *ns = J("[[\"add-triple\",\"e\",\"b\",2]]");

		CHECK_INT(db_outbox_set_steps(db, "m0", ns), 0);
		CHECK_INT(db_outbox_set_steps(db, "nope", ns), -ENOENT);
		CHECK_INT(db_outbox_set_steps(db, "m0", NULL), -EINVAL);
		CHECK_INT(db_outbox_get(db, "m0", &got), 0);
		CHECK(json_equal(got->steps, ns));
		CHECK_INT(got->state, DB_MUT_SENT);
		db_mutation_free(got);
		got = NULL;
	}

	/* Lists by state, in seq order. */
	CHECK_INT(db_outbox_list(db, 1u << DB_MUT_PENDING | 1u << DB_MUT_SENT, &list, &n), 0);
	CHECK_INT(n, 2);
	CHECK_STR(list[0]->mutation_id, "m0");
	CHECK_STR(list[1]->mutation_id, "m2");
	db_mutation_list_free(list, n);
	free(list);
	CHECK_INT(db_outbox_list(db, 1u << DB_MUT_FAILED, &list, &n), 0);
	CHECK_INT(n, 0);
	free(list);
	CHECK_INT(db_outbox_list(db, ~0u, NULL, &n), -EINVAL);

	/* Remove; a seq is never handed out again. */
	CHECK_INT(db_outbox_remove(db, "m2"), 0);
	CHECK_INT(db_outbox_remove(db, "m2"), -ENOENT);
	CHECK_INT(db_outbox_remove(db, NULL), -EINVAL);
	{
		struct db_mutation *b = mut_new("m5", "[]");

		CHECK_INT(db_outbox_append(db, &b, 1), 0);
		CHECK(b->seq > m[2]->seq);
		db_mutation_free(b);
	}
	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
	CHECK_INT(n, 3);
	CHECK(n == 3 && list[0]->seq < list[1]->seq && list[1]->seq < list[2]->seq);
	CHECK_STR(list[2]->mutation_id, "m5");
	/* list_free skips NULL entries (a caller that took some). */
	db_mutation_free(list[1]);
	list[1] = NULL;
	db_mutation_list_free(list, n);
	free(list);
	db_mutation_list_free(NULL, 3);
	db_mutation_free(NULL);

	for (size_t i = 0; i < 3; i++)
		db_mutation_free(m[i]);

	CHECK_STR(db_mut_state_to_string(DB_MUT_PENDING), "pending");
	CHECK_STR(db_mut_state_to_string(DB_MUT_SENT), "sent");
	CHECK_STR(db_mut_state_to_string(DB_MUT_CONFIRMED), "confirmed");
	CHECK_STR(db_mut_state_to_string(DB_MUT_FAILED), "failed");
	CHECK(db_mut_state_to_string((enum db_mut_state)4) == NULL);
}

/* The "may have reached the server" mark: one commit for a batch, only
 * queued entries change, and it survives a reopen with its checksum. */
static void
test_mark_sent(const char *path)
{
	struct db *db = NULL;
	struct db_mutation *m[3], *got = NULL;
	const char *ids[] = { "s0", "s2", "unknown" };
	const char *bad[] = { "s0", NULL };

	CHECK_INT(db_open(path, &db), 0);
	if (db == NULL)
		return;
	m[0] = mut_new("s0", "[[\"add-triple\",\"e\",\"a\",1,{\"mode\":\"create\"}]]");
	m[1] = mut_new("s1", "[]");
	m[2] = mut_new("s2", "[]");
	CHECK_INT(db_outbox_append(db, m, 3), 0);
	CHECK_INT(db_outbox_set_state(db, "s2", DB_MUT_CONFIRMED, 7, NULL), 0);
	CHECK_INT(db_outbox_mark_sent(db, ids, 3), 0);
	CHECK_INT(db_outbox_mark_sent(db, ids, 0), 0);
	CHECK_INT(db_outbox_mark_sent(db, NULL, 1), -EINVAL);
	CHECK_INT(db_outbox_mark_sent(db, bad, 2), -EINVAL);
	db_close(db);
	db = NULL;
	CHECK_INT(db_open(path, &db), 0);
	if (db == NULL)
		goto out;
	CHECK(db_recovered_from(db) == NULL);
	CHECK_INT(db_outbox_get(db, "s0", &got), 0);
	CHECK_INT(got->state, DB_MUT_SENT);
	CHECK(got->updated_ms >= got->created_ms);
	db_mutation_free(got);
	CHECK_INT(db_outbox_get(db, "s1", &got), 0);
	CHECK_INT(got->state, DB_MUT_PENDING);
	db_mutation_free(got);
	CHECK_INT(db_outbox_get(db, "s2", &got), 0);
	CHECK_INT(got->state, DB_MUT_CONFIRMED);
	CHECK_INT(got->tx_id, 7);
	db_mutation_free(got);
	db_close(db);
out:
	for (size_t i = 0; i < 3; i++)
		db_mutation_free(m[i]);
}

static int
count_stmts(struct db *db)
{
	int n = 0;

	for (sqlite3_stmt *s = sqlite3_next_stmt(db_sqlite(db), NULL); s; s = sqlite3_next_stmt(db_sqlite(db), s))
		n++;
	return n;
}

/* Group commit: many entries in one call, and statements prepared once. */
static void
test_batch(struct db *db)
{
	enum { N = 2000, B = 100 };
	struct db_mutation *b[B];
	int64_t t0, t1;
	int before = -1;
	size_t counts[DB_MUT_STATE_MAX];

	t0 = mono_us();
	for (int k = 0; k < N / B; k++) {
		for (int i = 0; i < B; i++) {
			char id[32];

			snprintf(id, sizeof(id), "batch-%d", k * B + i);
			b[i] = mut_new(id, "[[\"add-triple\",\"e\",\"a\",\"some value\"]]");
		}
		CHECK_INT(db_outbox_append(db, b, B), 0);
		for (int i = 0; i < B; i++)
			db_mutation_free(b[i]);
		if (k == 0)
			before = count_stmts(db);
	}
	t1 = mono_us();
	CHECK_INT(count_stmts(db), before);
	CHECK_INT(db_outbox_counts(db, counts), 0);
	CHECK_INT(counts[DB_MUT_PENDING], N + 1);
	fprintf(stderr, "# %d entries in %d commits: %.1f ms (%.0f commits/s)\n", N, N / B,
	    (t1 - t0) / 1000.0, (N / B) / ((t1 - t0) / 1e6));

	/* Single-entry commits (what one write at a time costs). */
	t0 = mono_us();
	for (int i = 0; i < 200; i++) {
		char id[32];
		struct db_mutation *one;

		snprintf(id, sizeof(id), "single-%d", i);
		one = mut_new(id, "[]");
		CHECK_INT(db_outbox_append(db, &one, 1), 0);
		db_mutation_free(one);
	}
	t1 = mono_us();
	CHECK_INT(count_stmts(db), before);
	fprintf(stderr, "# 200 single-entry commits: %.1f ms (%.0f commits/s)\n",
	    (t1 - t0) / 1000.0, 200 / ((t1 - t0) / 1e6));
}

/* Full disk, made deterministic with a size limit (PRAGMA max_page_count). */
static void
test_full(const char *path)
{
	struct db *db = NULL;
	struct db_mutation **list = NULL;
	size_t n = 0, stored = 0;
	char big[2048];
	int r = 0;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_set_size_limit(db, -1), -EINVAL);
	CHECK_INT(db_set_size_limit(db, 64 * 4096), 0);
	for (int i = 0; i < 1000; i++) {
		char id[32];
		struct db_mutation *b[4];

		for (int j = 0; j < 4; j++) {
			snprintf(id, sizeof(id), "full-%d-%d", i, j);
			b[j] = mut_new(id, "[]");
			cJSON_AddItemToArray(b[j]->steps, cJSON_CreateString(big));
		}
		r = db_outbox_append(db, b, 4);
		for (int j = 0; j < 4; j++)
			db_mutation_free(b[j]);
		if (r < 0)
			break;
		stored += 4;
	}
	CHECK_INT(r, -ENOSPC);
	CHECK(stored > 0);
	/* Everything acknowledged before is intact; the failed batch left nothing. */
	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
	CHECK_INT(n, stored);
	for (size_t i = 0; i < n; i++)
		CHECK(strcmp(cJSON_GetArrayItem(list[i]->steps, 0)->valuestring, big) == 0);
	db_mutation_list_free(list, n);
	free(list);
	/* Other writes fail the same way, and the handle stays usable. */
	{
		_cleanup_json_ cJSON *q = J("{\"q\":{}}"), *t = cJSON_CreateArray();

		for (int i = 0; i < 20; i++)
			cJSON_AddItemToArray(t, cJSON_CreateString(big));
		CHECK_INT(db_query_put(db, "kq", q, t, NULL, 1), -ENOSPC);
		r = db_meta_set(db, "big", big);
		CHECK(r == 0 || r == -ENOSPC);
	}
	/* Space returns: writes work again. */
	CHECK_INT(db_set_size_limit(db, 0), 0);
	{
		struct db_mutation *b = mut_new("after-full", "[]");

		cJSON_AddItemToArray(b->steps, cJSON_CreateString(big));
		CHECK_INT(db_outbox_append(db, &b, 1), 0);
		db_mutation_free(b);
	}
	db_close(db);
	db = NULL;
	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), 0);
	CHECK_INT(n, stored + 1);
	db_mutation_list_free(list, n);
	free(list);
	db_close(db);
}

static void
test_errno_map(void)
{
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_OK), 0);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_DONE), 0);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_FULL), -ENOSPC);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_BUSY), -EBUSY);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_BUSY_SNAPSHOT), -EBUSY);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_LOCKED), -EBUSY);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_NOMEM), -ENOMEM);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_IOERR_NOMEM), -ENOMEM);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_CORRUPT), -EBADMSG);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_NOTADB), -EBADMSG);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_CONSTRAINT_UNIQUE), -EEXIST);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_READONLY), -EACCES);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_IOERR_WRITE), -EIO);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_CANTOPEN), -EIO);
	CHECK_INT(db_errno_from_sqlite(NULL, SQLITE_ERROR), -EIO);
}

/* A second connection holds the write lock: writes wait, then fail -EBUSY. */
static void
test_busy(const char *path)
{
	struct db *db = NULL;
	sqlite3 *other = NULL;
	struct db_mutation *m = mut_new("busy", "[]");
	char *v = NULL;

	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_meta_set(db, "k", "v"), 0);
	sqlite3_busy_timeout(db_sqlite(db), 50);	/* keep the test short */
	CHECK_INT(sqlite3_open(path, &other), SQLITE_OK);
	CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(db_outbox_append(db, &m, 1), -EBUSY);
	CHECK_INT(m->seq, 0);
	CHECK_INT(db_meta_set(db, "k", "w"), -EBUSY);
	/* Readers are not blocked by a writer (WAL). */
	CHECK_INT(db_meta_get(db, "k", &v), 0);
	CHECK_STR(v, "v");
	free(v);
	CHECK_INT(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(db_outbox_append(db, &m, 1), 0);
	CHECK(m->seq > 0);
	sqlite3_close(other);
	db_mutation_free(m);
	db_close(db);
}

/* Damage after open (a row changed behind our back): reads fail -EBADMSG
 * instead of returning it; the next db_open recovers. */
static void
test_damaged_reads(const char *path)
{
	_cleanup_json_ cJSON *q = J("{\"d\":{}}"), *t = J("[[1,2,3,4]]"), *local = J("[{\"id\":\"A\"}]");
	struct db *db = NULL;
	struct db_mutation *m = mut_new("dmg", "[]"), *got = NULL, **list = NULL;
	cJSON *out = NULL;
	size_t n = 0;
	sqlite3 *other = NULL;

	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_outbox_append(db, &m, 1), 0);
	CHECK_INT(db_query_put(db, "kd", q, t, NULL, 1), 0);
	CHECK_INT(db_attrs_add_local(db, local), 0);
	CHECK_INT(sqlite3_open(path, &other), SQLITE_OK);
	CHECK_INT(sqlite3_exec(other, "UPDATE outbox SET steps = '[1]' WHERE mutation_id = 'dmg';"
	    "UPDATE queries SET triples = '[[1,2' WHERE key = 'kd';"
	    "UPDATE attrs SET body = '{' WHERE id = 'A';", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	CHECK_INT(db_outbox_get(db, "dmg", &got), -EBADMSG);
	CHECK(got == NULL);
	CHECK_INT(db_outbox_list(db, ~0u, &list, &n), -EBADMSG);
	CHECK(list == NULL);
	CHECK_INT(db_query_get(db, "kd", NULL, &out, NULL, NULL), -EBADMSG);
	CHECK(out == NULL);
	CHECK_INT(db_query_get(db, "kd", NULL, NULL, NULL, NULL), 0);	/* nothing parsed */
	CHECK_INT(db_attrs_load(db, &out), -EBADMSG);
	CHECK(out == NULL);
	db_close(db);
	db = NULL;
	/* Reopening notices the damaged entry and recovers without it. */
	CHECK_INT(db_open(path, &db), 0);
	CHECK(db && db_recovered_from(db) != NULL);
	CHECK_INT(db_recovered_salvaged(db), 0);
	CHECK_INT(db_outbox_get(db, "dmg", &got), -ENOENT);
	db_close(db);
	db_mutation_free(m);
}

/* Every durable write reports a full disk the same way. */
static void
test_full_others(const char *path)
{
	_cleanup_json_ cJSON *attrs = cJSON_CreateArray();
	struct db *db = NULL;
	struct db_mutation *m = mut_new("f0", "[]");
	char big[3000];
	int r;

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 400; i++) {
		cJSON *a = cJSON_CreateObject();
		char id[32];

		snprintf(id, sizeof(id), "attr-%d", i);
		cJSON_AddStringToObject(a, "id", id);
		cJSON_AddStringToObject(a, "pad", big);
		cJSON_AddItemToArray(attrs, a);
	}
	CHECK_INT(db_open(path, &db), 0);
	CHECK_INT(db_outbox_append(db, &m, 1), 0);
	CHECK_INT(db_set_size_limit(db, 40 * 4096), 0);
	CHECK_INT(db_attrs_add_local(db, attrs), -ENOSPC);
	CHECK_INT(db_attrs_replace_server(db, attrs), -ENOSPC);
	/* Fill what is left, then a bigger rewrite of the entry cannot fit. */
	for (int i = 0; i < 200; i++) {
		char k[32];

		snprintf(k, sizeof(k), "fill-%d", i);
		if ((r = db_meta_set(db, k, big)) < 0)
			break;
	}
	CHECK_INT(r, -ENOSPC);
	{
		_cleanup_json_ cJSON *steps = cJSON_CreateArray();

		for (int i = 0; i < 4; i++)
			cJSON_AddItemToArray(steps, cJSON_CreateString(big));
		CHECK_INT(db_outbox_set_steps(db, "f0", steps), -ENOSPC);
	}
	{
		_cleanup_free_ char *err = NULL;

		if (asprintf(&err, "\"%s%s%s%s\"", big, big, big, big) < 0)
			abort();
		CHECK_INT(db_outbox_set_state(db, "f0", DB_MUT_FAILED, 0, err), -ENOSPC);
	}
	/* The entry is as it was. */
	{
		struct db_mutation *got = NULL;

		CHECK_INT(db_outbox_get(db, "f0", &got), 0);
		CHECK(got && got->state == DB_MUT_PENDING && json_is(got->steps, "[]"));
		db_mutation_free(got);
	}
	/* Deleting needs no room. */
	CHECK_INT(db_outbox_remove(db, "f0"), 0);
	db_close(db);
	db_mutation_free(m);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	_cleanup_free_ char *p = NULL, *p2 = NULL, *p3 = NULL;
	struct db *db = NULL;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-db-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_open();
	test_migrate_v1();
	p = tpath("main.sqlite");
	CHECK_INT(db_open(p, &db), 0);
	if (db == NULL)
		return tap_done();
	test_meta(db);
	test_attrs(db);
	test_queries(db);
	test_outbox(db);
	test_batch(db);
	db_close(db);
	p2 = tpath("inuse.sqlite");
	test_queries_in_use_reset(p2);
	p3 = tpath("full.sqlite");
	test_full(p3);
	free(p3);
	p3 = tpath("mark.sqlite");
	test_mark_sent(p3);
	test_errno_map();
	free(p3);
	p3 = tpath("busy.sqlite");
	test_busy(p3);
	free(p3);
	p3 = tpath("damaged.sqlite");
	test_damaged_reads(p3);
	free(p3);
	p3 = tpath("full2.sqlite");
	test_full_others(p3);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (tap_failed == 0 && system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return tap_done();
}
