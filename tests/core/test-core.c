/* Unit tests of the sync core (daemon/core.c, sync.c and its modules) without the network: programs
 * and the upstream session are fakes the test drives step by step on a
 * virtual clock (tests/core/fakes.h), over a real store in a temp dir. */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/sync.h"
#include "store/util.h"
#include "tests/core/fakes.h"
#include "tests/tap.h"

#define APP	"0d7d6bda-5c5c-4f3c-9a0f-2b8d6f0a9a11"
#define APP2	"5e0b6a43-1b7e-4c55-9d0e-7f3c2a1b9c08"
#define SERVER	"ws://127.0.0.1:9/runtime/session"
#define E1	"11111111-1111-4111-8111-111111111111"
#define E2	"22222222-2222-4222-8222-222222222222"
#define E3	"33333333-3333-4333-8333-333333333333"
#define E4	"44444444-4444-4444-8444-444444444444"
#define Q_ALL	"{\"todos\":{}}"
#define Q_A	"{\"todos\":{\"$\":{\"where\":{\"text\":\"a\"}}}}"
#define GRACE_MS 1000

/* todos.id and todos.text. */
static const char *attrs_json =
    "[{\"id\":\"a4\",\"forward-identity\":[\"i4\",\"todos\",\"id\"],\"value-type\":\"blob\","
    "\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
    "{\"id\":\"a5\",\"forward-identity\":[\"i5\",\"todos\",\"text\"],\"value-type\":\"blob\","
    "\"cardinality\":\"one\",\"unique?\":false,\"index?\":false}]";

static char state_dir[256];
static int64_t max_database_bytes;	/* for the next core_open; 0: unlimited */

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- helpers ---- */

/* The server's result (wire tree) holding these todos: pairs of id, text, NULL-ended. */
static char *
todos_result(const char *id, ...)
{
	va_list ap;
	char *out = NULL, *rows = strdup("");
	long long t = 1732700000000LL;

	va_start(ap, id);
	for (const char *e = id; e; e = va_arg(ap, const char *)) {
		const char *text = va_arg(ap, const char *);
		char *n = NULL;

		if (asprintf(&n, "%s%s[[\"%s\",\"a4\",\"%s\",%lld],[\"%s\",\"a5\",\"%s\",%lld]]", rows,
		    *rows ? "," : "", e, e, t, e, text, t + 1) < 0)
			abort();
		free(rows);
		rows = n;
		t += 10;
	}
	va_end(ap);
	if (asprintf(&out, "[{\"data\":{\"datalog-result\":{\"join-rows\":[%s]}},\"child-nodes\":[]}]",
	    rows) < 0)
		abort();
	free(rows);
	return out;
}

static void
show(const char *what, const cJSON *m)
{
	char *t = m ? cJSON_PrintUnformatted(m) : NULL;

	fprintf(stderr, "%s %s\n", what, t ? t : "(nothing)");
	free(t);
}

/* The texts of the todos a result message shows, in order: "a,b". */
static char *
todos_of(const cJSON *msg)
{
	const cJSON *t;
	char *out = strdup("");

	cJSON_ArrayForEach(t, json_get(json_get(msg, "data"), "todos")) {
		char *n = NULL;
		const char *text = json_get_string(t, "text");

		if (asprintf(&n, "%s%s%s", out, *out ? "," : "", text ? text : "?") < 0)
			abort();
		free(out);
		out = n;
	}
	return out;
}

#define CHECK_TODOS(msg, want) do { \
	const cJSON *_m = (msg); \
	char *_t = _m ? todos_of(_m) : NULL; \
	CHECK_STR(_t, want); \
	if (_m && strcmp(_t, want) != 0) \
		show("# got", _m); \
	free(_t); \
} while (0)

#define CHECK_BOOL(msg, field, want) \
	CHECK_INT(cJSON_IsTrue(json_get((msg), (field))), (want))

static int64_t
int_of(const cJSON *msg, const char *field)
{
	int64_t v = -1;

	if (json_get_int64(json_get(msg, field), &v) < 0)
		return -1;
	return v;
}

static bool
same_json(const cJSON *a, const char *b_text)
{
	_cleanup_json_ cJSON *b = cJSON_Parse(b_text);
	_cleanup_free_ char *ca = a ? json_canonical(a) : NULL, *cb = b ? json_canonical(b) : NULL;

	return ca && cb && strcmp(ca, cb) == 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fresh_state_dir(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	if (state_dir[0])
		(void)nftw(state_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(state_dir, sizeof(state_dir), "%s/test-core-XXXXXX", tmp);
	if (mkdtemp(state_dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static struct sync *
core_open(void)
{
	struct sync_options o = {
		.state_dir = state_dir,
		.default_server = SERVER,
		.default_api_uri = CONFIG_DEFAULT_API_URI,
		.backoff_base_ms = 500,
		.backoff_cap_ms = 30000,
		.ping_interval_s = 20,
		.idle_timeout_s = 35,
		.transact_timeout_s = 30,
		.unsubscribe_grace_ms = GRACE_MS,
		.cache_budget_bytes = 64 << 20,
		.max_subs_per_conn = 64,
		.max_database_bytes = max_database_bytes,
	};
	struct sync *s = NULL;

	if (sync_new(NULL, NULL, &o, &s) < 0 || sync_start(s) < 0) {
		fprintf(stderr, "cannot start the core\n");
		exit(1);
	}
	return s;
}

/* Free the core: no session and no timer may outlive it (a timer left
 * scheduled would point into freed memory). */
static void
core_close(struct sync *s)
{
	sync_free(s);
	CHECK_INT(fake_up_count(), 0);
	CHECK_INT(fake_clock_pending(), 0);
}

/* A program that has sent init for APP. */
static struct fake_conn *
program(struct sync *s, const char *name)
{
	struct fake_conn *fc = fake_conn_open(&sync_ipc_callbacks, s);

	fake_conn_requestf(fc, "{\"op\":\"init\",\"client-event-id\":\"init\",\"app-id\":\"" APP "\","
	    "\"client-name\":\"%s\"}", name);
	CHECK(fake_conn_take(fc, "init-ok", "init") != NULL);
	return fc;
}

/* The session of APP comes up (init-ok with the attrs). */
static struct upstream *
online(void)
{
	struct upstream *u = fake_up_find(APP);

	if (u == NULL) {
		fprintf(stderr, "no upstream session for the app\n");
		exit(1);
	}
	fake_up_connect(u, attrs_json);
	fake_turn();
	return u;
}

/* The server's add-query-ok for the next add-query of q sent upstream. */
static void
answer_add_query(struct upstream *u, const char *q, int64_t ptx, const char *result)
{
	const cJSON *m = fake_up_take(u, "add-query");

	CHECK(m != NULL);
	CHECK(same_json(json_get(m, "q"), q));
	if (m == NULL)
		return;
	fake_up_deliverf(u, "{\"op\":\"add-query-ok\",\"client-event-id\":\"%s\",\"q\":%s,"
	    "\"result\":%s,\"processed-tx-id\":%lld}", json_get_string(m, "client-event-id"), q, result,
	    (long long)ptx);
}

static void
refresh(struct upstream *u, int64_t ptx, const char *q, const char *result)
{
	fake_up_deliverf(u, "{\"op\":\"refresh-ok\",\"processed-tx-id\":%lld,\"computations\":"
	    "[{\"instaql-query\":%s,\"instaql-result\":%s}]}", (long long)ptx, q, result);
	fake_turn();
}

/* p subscribes to Q_ALL as ceid; the server answers with todo E1 "a" at tx 10. */
static void
subscribe_all(struct fake_conn *p, struct upstream *u, const char *ceid)
{
	_cleanup_free_ char *r = todos_result(E1, "a", NULL);
	const cJSON *m;

	fake_conn_requestf(p, "{\"op\":\"add-query\",\"client-event-id\":\"%s\",\"q\":" Q_ALL "}", ceid);
	answer_add_query(u, Q_ALL, 10, r);
	m = fake_conn_take(p, "add-query-ok", ceid);
	CHECK(m != NULL);
	CHECK_TODOS(m, "a");
}

/* transact creating one todo (entity id, text) as ceid: its steps carry mode
 * "create", which a replay must drop (the first send may have landed). */
static void
write_todo(struct fake_conn *p, const char *ceid, const char *id, const char *text)
{
	fake_conn_requestf(p, "{\"op\":\"transact\",\"client-event-id\":\"%s\",\"ops\":"
	    "[[\"create\",\"todos\",\"%s\",{\"text\":\"%s\"}]]}", ceid, id, text);
}

/* The mutation id of the transact-queued for ceid (owned by the caller), NULL if none came. */
static char *
queued_id(struct fake_conn *p, const char *ceid)
{
	const cJSON *m = fake_conn_take(p, "transact-queued", ceid);
	const char *mid = json_get_string(m, "mutation-id");

	CHECK(mid != NULL);
	return mid ? strdup(mid) : NULL;
}

/* The next transact sent upstream; its client-event-id must be mid. */
static const cJSON *
sent_transact(struct upstream *u, const char *mid)
{
	const cJSON *m = fake_up_take(u, "transact");

	CHECK(m != NULL);
	CHECK_STR(json_get_string(m, "client-event-id"), mid);
	return m;
}

/* Whether any tx-step of a transact carries {"mode": mode}. */
static bool
has_mode(const cJSON *transact, const char *mode)
{
	const cJSON *st;

	cJSON_ArrayForEach(st, json_get(transact, "tx-steps")) {
		const char *md = json_get_string(cJSON_GetArrayItem(st, 4), "mode");

		if (md && strcmp(md, mode) == 0)
			return true;
	}
	return false;
}

/* Whether a transact has a tx-step of this kind. */
static bool
has_step(const cJSON *transact, const char *kind)
{
	const cJSON *st;

	cJSON_ArrayForEach(st, json_get(transact, "tx-steps"))
		if (cJSON_IsString(cJSON_GetArrayItem(st, 0)) &&
		    strcmp(cJSON_GetArrayItem(st, 0)->valuestring, kind) == 0)
			return true;
	return false;
}

/* The states of the profile's outbox as list-mutations shows them: "sent,failed". */
static char *
outbox_states(struct fake_conn *p)
{
	const cJSON *m, *e;
	char *out = strdup("");

	fake_conn_request(p, "{\"op\":\"list-mutations\",\"client-event-id\":\"lm\"}");
	m = fake_conn_take(p, "mutations", "lm");
	CHECK(m != NULL);
	cJSON_ArrayForEach(e, json_get(m, "mutations")) {
		char *n = NULL;

		if (asprintf(&n, "%s%s%s", out, *out ? "," : "", json_get_string(e, "state")) < 0)
			abort();
		free(out);
		out = n;
	}
	return out;
}

#define CHECK_OUTBOX(p, want) do { \
	char *_o = outbox_states(p); \
	CHECK_STR(_o, want); \
	free(_o); \
} while (0)

/* ---- cases ---- */

/* add-query goes upstream, the server's answer reaches the program, a refresh updates it. */
static void
test_query(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *r1 = todos_result(E1, "a", NULL), *r2 = todos_result(E1, "a", E2, "b", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = fake_up_find(APP);
	CHECK(u != NULL);
	CHECK_INT(fake_up_count(), 1);
	/* Still connecting: the query waits for the server (no partial answer). */
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q1\",\"q\":" Q_ALL "}");
	fake_turn();
	CHECK_INT(fake_conn_count(p, NULL, "q1"), 0);
	CHECK_INT(fake_up_count_unread(u, NULL), 0);
	u = online();
	answer_add_query(u, Q_ALL, 10, r1);
	m = fake_conn_take(p, "add-query-ok", "q1");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a");
	CHECK_BOOL(m, "from-cache", 0);
	CHECK_BOOL(m, "partial", 0);
	CHECK_BOOL(m, "has-pending-writes", 0);
	CHECK_INT(int_of(m, "processed-tx-id"), 10);
	CHECK(same_json(json_get(m, "q"), Q_ALL));

	refresh(u, 11, Q_ALL, r2);
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a,b");
	CHECK_INT(int_of(m, "processed-tx-id"), 11);
	/* The same result again tells the program nothing new. */
	refresh(u, 11, Q_ALL, r2);
	CHECK_INT(fake_conn_count(p, NULL, "q1"), 0);

	fake_conn_free(p);
	core_close(s);
	CHECK_INT(fake_up_count(), 0);
}

/* The server's result holding todo E1 with text first_text, then n more
 * todos ("t0".."t<n-1>"): over 64 KiB for n >= 600, so a frame carrying it is
 * cut into its computations (daemon/frame.h). */
static char *
many_todos_result(const char *first_text, int n)
{
	size_t cap = 400 + (size_t)n * 240, len = 0;
	char *rows = malloc(cap), *out = NULL;
	long long t = 1732700000000LL;

	if (rows == NULL)
		abort();
	len += (size_t)snprintf(rows, cap, "[[\"%s\",\"a4\",\"%s\",%lld],[\"%s\",\"a5\",\"%s\",%lld]]",
	    E1, E1, t, E1, first_text, t + 1);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(rows + len, cap - len,
		    ",[[\"00000000-0000-4000-8000-%012d\",\"a4\",\"00000000-0000-4000-8000-%012d\",%lld],"
		    "[\"00000000-0000-4000-8000-%012d\",\"a5\",\"t%d\",%lld]]", i, i, t, i, i, t + 1);
	if (asprintf(&out, "[{\"data\":{\"datalog-result\":{\"join-rows\":[%s]}},\"child-nodes\":[]}]",
	    rows) < 0)
		abort();
	free(rows);
	return out;
}

/* How many todos a result message shows. */
static int
todo_count(const cJSON *msg)
{
	return cJSON_GetArraySize(json_get(json_get(msg, "data"), "todos"));
}

/* A large refresh-ok is applied a computation per loop turn, the smallest
 * first. What must hold: every result arrives, a message from the server
 * that comes before the last turn finds them all applied (so an older
 * result never lands over a newer one), and a computation that is not
 * JSON is dropped alone. */
static void
test_refresh_in_parts(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *ra = todos_result(E1, "a", NULL), *big1 = many_todos_result("a", 700),
	    *big2 = many_todos_result("b", 800), *small = todos_result(E1, "a", E3, "a", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "all");
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"a\",\"q\":" Q_A "}");
	answer_add_query(u, Q_A, 10, ra);
	CHECK_TODOS(fake_conn_take(p, "add-query-ok", "a"), "a");

	/* The large result first in the frame: the small one is still pushed first. */
	fake_up_deliverf(u, "{\"op\":\"refresh-ok\",\"processed-tx-id\":11,\"computations\":["
	    "{\"instaql-query\":" Q_ALL ",\"instaql-result\":%s},"
	    "{\"instaql-query\":" Q_A ",\"instaql-result\":%s}]}", big1, small);
	fake_turn();
	fake_turn();
	m = fake_conn_take(p, NULL, NULL);
	CHECK_STR(json_get_string(m, "client-event-id"), "a");
	CHECK_TODOS(m, "a,a");
	m = fake_conn_take(p, "refresh-ok", "all");
	CHECK_INT(m ? todo_count(m) : -1, 701);
	CHECK_INT(int_of(m, "processed-tx-id"), 11);

	/* Another refresh right behind, before any turn: the large result kept
	 * from the first is applied before it, not lost or applied after it. */
	fake_up_deliverf(u, "{\"op\":\"refresh-ok\",\"processed-tx-id\":12,\"computations\":["
	    "{\"instaql-query\":" Q_ALL ",\"instaql-result\":%s},"
	    "{\"instaql-query\":" Q_A ",\"instaql-result\":%s}]}", big2, ra);
	fake_up_deliverf(u, "{\"op\":\"refresh-ok\",\"processed-tx-id\":13,\"computations\":["
	    "{\"instaql-query\":" Q_A ",\"instaql-result\":%s}]}", small);
	for (int i = 0; i < 4; i++)
		fake_turn();
	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o\",\"q\":" Q_ALL ","
	    "\"policy\":\"cache-only\"}");
	m = fake_conn_take(p, "query-ok", "o");
	CHECK_INT(m ? todo_count(m) : -1, 801);
	CHECK_INT(int_of(m, "processed-tx-id"), 12);
	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o2\",\"q\":" Q_A ","
	    "\"policy\":\"cache-only\"}");
	CHECK_TODOS(fake_conn_take(p, "query-ok", "o2"), "a,a");

	/* One computation is not JSON: the other one still applies. */
	fake_conn_skip(p);
	fake_up_deliverf(u, "{\"op\":\"refresh-ok\",\"processed-tx-id\":15,\"computations\":["
	    "{\"instaql-query\":" Q_ALL ",\"instaql-result\":%s, oops},"
	    "{\"instaql-query\":" Q_A ",\"instaql-result\":%s}]}", big1, ra);
	for (int i = 0; i < 3; i++)
		fake_turn();
	CHECK_TODOS(fake_conn_take(p, "refresh-ok", "a"), "a");
	CHECK_INT(fake_conn_count(p, "refresh-ok", "all"), 0);

	fake_conn_free(p);
	core_close(s);
}

/* Two programs with one query share one subscription; it ends upstream only
 * after the last listener left and the grace period passed. */
static void
test_shared(void)
{
	struct sync *s;
	struct fake_conn *p1, *p2;
	struct upstream *u;
	_cleanup_free_ char *r2 = todos_result(E1, "a", E2, "b", NULL), *r3 = todos_result(E1, "a", E2, "c", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p1 = program(s, "one");
	p2 = program(s, "two");
	CHECK_INT(fake_up_count(), 1);		/* one profile, one session */
	u = online();
	subscribe_all(p1, u, "q1");
	/* The same query, spelled differently. */
	fake_conn_request(p2, "{\"op\":\"add-query\",\"client-event-id\":\"q2\",\"q\":{ \"todos\" : { } }}");
	CHECK_INT(fake_up_count_unread(u, "add-query"), 0);
	m = fake_conn_take(p2, "add-query-ok", "q2");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a");
	CHECK_BOOL(m, "from-cache", 0);

	refresh(u, 11, Q_ALL, r2);
	CHECK_TODOS(fake_conn_take(p1, "refresh-ok", "q1"), "a,b");
	CHECK_TODOS(fake_conn_take(p2, "refresh-ok", "q2"), "a,b");

	fake_conn_request(p1, "{\"op\":\"remove-query\",\"client-event-id\":\"q1\"}");
	CHECK(fake_conn_take(p1, "remove-query-ok", "q1") != NULL);
	fake_clock_advance(2 * GRACE_MS * 1000);
	CHECK_INT(fake_up_count_unread(u, "remove-query"), 0);
	refresh(u, 12, Q_ALL, r3);
	CHECK_INT(fake_conn_count(p1, NULL, "q1"), 0);
	CHECK_TODOS(fake_conn_take(p2, "refresh-ok", "q2"), "a,c");

	/* The last one leaves by q: remove-query-ok echoes it; upstream only after the grace. */
	fake_conn_request(p2, "{\"op\":\"remove-query\",\"client-event-id\":\"x\",\"q\":" Q_ALL "}");
	m = fake_conn_take(p2, "remove-query-ok", "x");
	CHECK(m != NULL && same_json(json_get(m, "q"), Q_ALL));
	fake_clock_advance((GRACE_MS - 10) * 1000);
	CHECK_INT(fake_up_count_unread(u, "remove-query"), 0);
	fake_clock_advance(20 * 1000);
	m = fake_up_take(u, "remove-query");
	CHECK(m != NULL && same_json(json_get(m, "q"), Q_ALL));
	/* Nothing matches any more. */
	fake_conn_request(p2, "{\"op\":\"remove-query\",\"client-event-id\":\"q2\"}");
	m = fake_conn_take(p2, "error", "q2");
	CHECK_STR(json_get_string(m, "type"), "not-found");

	fake_conn_free(p1);
	fake_conn_free(p2);
	core_close(s);
}

/* A program that comes back within the grace period keeps the subscription:
 * no remove-query, no new add-query, an answer at once; its disconnect
 * starts the grace again. */
static void
test_grace(void)
{
	struct sync *s;
	struct fake_conn *p1, *p2;
	struct upstream *u;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p1 = program(s, "one");
	u = online();
	subscribe_all(p1, u, "q1");
	fake_conn_free(p1);		/* closing is leaving */
	fake_clock_advance(GRACE_MS / 2 * 1000);
	p2 = program(s, "two");
	fake_conn_request(p2, "{\"op\":\"add-query\",\"client-event-id\":\"q2\",\"q\":" Q_ALL "}");
	m = fake_conn_take(p2, "add-query-ok", "q2");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a");
	fake_clock_advance(2 * GRACE_MS * 1000);
	CHECK_INT(fake_up_count_unread(u, "add-query"), 0);
	CHECK_INT(fake_up_count_unread(u, "remove-query"), 0);
	fake_conn_free(p2);
	fake_clock_advance(GRACE_MS * 1000);
	CHECK_INT(fake_up_count_unread(u, "remove-query"), 1);
	core_close(s);
}

/* A query in its grace period when the session drops is not subscribed
 * again, and ends without a remove-query (the server already forgot it). */
static void
test_grace_reconnect(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	fake_conn_request(p, "{\"op\":\"remove-query\",\"client-event-id\":\"q1\"}");
	fake_up_drop(u);
	fake_up_connect(u, attrs_json);
	CHECK_INT(fake_up_count_unread(u, "add-query"), 0);
	fake_clock_advance(2 * GRACE_MS * 1000);
	CHECK_INT(fake_up_count_unread(u, "remove-query"), 0);
	fake_conn_free(p);
	core_close(s);
}

/* transact: shown at once, durable (transact-queued) after the group commit,
 * sent, confirmed, and retired once the result reflects it. */
static void
test_transact(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL, *r2 = todos_result(E1, "a", E2, "b", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");

	write_todo(p, "t1", E2, "b");
	/* Nothing is acknowledged or sent before the group commit. */
	CHECK_INT(fake_conn_count(p, "transact-queued", NULL), 0);
	CHECK_INT(fake_up_count_unread(u, "transact"), 0);
	fake_turn();
	mid = queued_id(p, "t1");
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK_TODOS(m, "a,b");
	CHECK_BOOL(m, "has-pending-writes", 1);
	m = sent_transact(u, mid);
	CHECK(has_mode(m, "create"));		/* first send of a new entity */
	CHECK_OUTBOX(p, "sent");

	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":20}", mid);
	fake_turn();	/* confirmations are recorded once per loop turn */
	m = fake_conn_take(p, "transact-ok", "t1");
	CHECK(m != NULL);
	CHECK_STR(json_get_string(m, "mutation-id"), mid);
	CHECK_INT(int_of(m, "tx-id"), 20);
	fake_turn();
	/* Confirmed, but the result (tx 10) does not reflect it yet: still layered. */
	CHECK_INT(fake_conn_count(p, "refresh-ok", "q1"), 0);
	CHECK_OUTBOX(p, "confirmed");

	refresh(u, 20, Q_ALL, r2);
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a,b");
	CHECK_BOOL(m, "has-pending-writes", 0);
	CHECK_INT(int_of(m, "processed-tx-id"), 20);
	CHECK_OUTBOX(p, "");
	/* A late duplicate confirmation changes nothing. */
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":20}", mid);
	fake_turn();
	CHECK_INT(fake_conn_count(p, NULL, NULL), 0);

	fake_conn_free(p);
	core_close(s);
}

/* The server rejects a write: its writer is told, the write is listed failed
 * and no longer shown; retry-mutation sends it again. */
static void
test_reject(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	write_todo(p, "t1", E2, "b");
	fake_turn();
	mid = queued_id(p, "t1");
	CHECK_TODOS(fake_conn_take(p, "refresh-ok", "q1"), "a,b");
	sent_transact(u, mid);

	fake_up_deliverf(u, "{\"op\":\"error\",\"client-event-id\":\"%s\",\"status\":400,"
	    "\"type\":\"permission-denied\",\"message\":\"Permission denied: not perms-pass?\","
	    "\"hint\":{\"expected\":\"perms-pass?\"},\"original-event\":{\"op\":\"transact\","
	    "\"client-event-id\":\"%s\"}}", mid, mid);
	m = fake_conn_take(p, "error", "t1");
	CHECK(m != NULL);
	CHECK_STR(json_get_string(m, "type"), "permission-denied");
	CHECK_STR(json_get_string(m, "server-type"), "permission-denied");
	CHECK_STR(json_get_string(m, "mutation-id"), mid);
	CHECK(json_get(m, "hint") != NULL);
	CHECK(json_get(m, "queued") == NULL);
	fake_turn();
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a");
	CHECK_BOOL(m, "has-pending-writes", 0);
	CHECK_OUTBOX(p, "failed");

	fake_conn_requestf(p, "{\"op\":\"retry-mutation\",\"client-event-id\":\"r1\",\"mutation-id\":\"%s\"}", mid);
	CHECK(fake_conn_take(p, "retry-mutation-ok", "r1") != NULL);
	m = sent_transact(u, mid);
	CHECK(!has_mode(m, "create"));		/* it may have landed: a replay */
	fake_turn();
	CHECK_TODOS(fake_conn_take(p, "refresh-ok", "q1"), "a,b");
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":30}", mid);
	fake_turn();
	CHECK(fake_conn_take(p, "transact-ok", "r1") != NULL);	/* the retrier is told */
	CHECK_OUTBOX(p, "confirmed");

	fake_conn_free(p);
	core_close(s);
}

/* Three writes in one turn: one group commit, sent in order; the server
 * rejects the middle one, the others stay shown and are confirmed. */
static void
test_fail_middle(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL;
	_cleanup_free_ char *r = todos_result(E1, "a", E2, "b", E4, "d", NULL);
	const cJSON *m;
	int64_t seq1, seq2, seq3;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	write_todo(p, "t1", E2, "b");
	write_todo(p, "t2", E3, "c");
	write_todo(p, "t3", E4, "d");
	fake_turn();
	m = fake_conn_take(p, "transact-queued", "t1");
	seq1 = int_of(m, "seq");
	m1 = dup_or_null(json_get_string(m, "mutation-id"));
	m = fake_conn_take(p, "transact-queued", "t2");
	seq2 = int_of(m, "seq");
	m2 = dup_or_null(json_get_string(m, "mutation-id"));
	m = fake_conn_take(p, "transact-queued", "t3");
	seq3 = int_of(m, "seq");
	m3 = dup_or_null(json_get_string(m, "mutation-id"));
	CHECK(seq1 > 0 && seq1 < seq2 && seq2 < seq3);
	CHECK_TODOS(fake_conn_take(p, "refresh-ok", "q1"), "a,b,c,d");
	CHECK_INT(fake_conn_count(p, "refresh-ok", "q1"), 0);	/* one push for the three */
	CHECK_INT(int_of(sent_transact(u, m1), "order"), seq1);
	CHECK_INT(int_of(sent_transact(u, m2), "order"), seq2);
	CHECK_INT(int_of(sent_transact(u, m3), "order"), seq3);

	fake_up_deliverf(u, "{\"op\":\"error\",\"client-event-id\":\"%s\",\"status\":400,"
	    "\"type\":\"validation-failed\",\"message\":\"bad\",\"original-event\":{\"op\":\"transact\"}}", m2);
	m = fake_conn_take(p, "error", "t2");
	CHECK_STR(json_get_string(m, "type"), "server-error");
	CHECK_STR(json_get_string(m, "server-type"), "validation-failed");
	fake_turn();
	CHECK_TODOS(fake_conn_take(p, "refresh-ok", "q1"), "a,b,d");
	CHECK_OUTBOX(p, "sent,failed,sent");
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":21}", m1);
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":23}", m3);
	fake_turn();
	CHECK(fake_conn_take(p, "transact-ok", "t1") != NULL);
	CHECK(fake_conn_take(p, "transact-ok", "t3") != NULL);
	refresh(u, 23, Q_ALL, r);
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK_TODOS(m, "a,b,d");
	CHECK_BOOL(m, "has-pending-writes", 0);
	CHECK_OUTBOX(p, "failed");
	/* A failed write can be dropped. */
	fake_conn_requestf(p, "{\"op\":\"discard-mutation\",\"client-event-id\":\"d\",\"mutation-id\":\"%s\"}", m2);
	CHECK(fake_conn_take(p, "discard-mutation-ok", "d") != NULL);
	CHECK_OUTBOX(p, "");

	fake_conn_free(p);
	core_close(s);
}

/* The connection drops: results turn from-cache, writes queue; on the next
 * session the queries are subscribed again and the writes go in order, the
 * one already sent as a replay. */
static void
test_reconnect(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL, *ceid_all = NULL, *ceid_a = NULL;
	_cleanup_free_ char *ra = todos_result(E1, "a", NULL);
	const cJSON *m;
	int before;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	ceid_all = dup_or_null(json_get_string(cJSON_GetArrayItem(u->sent, 0), "client-event-id"));
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q2\",\"q\":" Q_A "}");
	m = fake_up_take(u, "add-query");
	ceid_a = dup_or_null(json_get_string(m, "client-event-id"));
	fake_up_deliverf(u, "{\"op\":\"add-query-ok\",\"client-event-id\":\"%s\",\"q\":" Q_A ","
	    "\"result\":%s,\"processed-tx-id\":10}", ceid_a, ra);
	CHECK_TODOS(fake_conn_take(p, "add-query-ok", "q2"), "a");

	write_todo(p, "t1", E2, "b");
	fake_turn();
	m1 = queued_id(p, "t1");
	sent_transact(u, m1);
	fake_conn_skip(p);

	fake_up_drop(u);
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK(m != NULL);
	CHECK_BOOL(m, "from-cache", 1);
	m = fake_conn_take(p, "refresh-ok", "q2");
	CHECK(m != NULL);
	CHECK_BOOL(m, "from-cache", 1);

	write_todo(p, "t2", E3, "c");
	write_todo(p, "t3", E4, "d");
	fake_turn();
	m2 = queued_id(p, "t2");
	m3 = queued_id(p, "t3");
	CHECK_TODOS(fake_conn_take(p, "refresh-ok", "q1"), "a,b,c,d");
	CHECK_INT(fake_up_count_unread(u, "transact"), 0);

	fake_up_skip(u);
	before = cJSON_GetArraySize(u->sent);
	fake_up_connect(u, attrs_json);
	/* The outbox goes first (daemon/session.c handle_init_ok), then the queries. */
	{
		int n = cJSON_GetArraySize(u->sent), last_tx = -1, first_q = n;

		for (int i = before; i < n; i++) {
			const char *op = json_get_string(cJSON_GetArrayItem(u->sent, i), "op");

			if (strcmp(op, "transact") == 0)
				last_tx = i;
			else if (strcmp(op, "add-query") == 0 && i < first_q)
				first_q = i;
		}
		CHECK(last_tx >= 0 && last_tx < first_q);
	}
	/* Both queries again, under the ids they had. */
	CHECK_INT(fake_up_count_unread(u, "add-query"), 2);
	for (int i = 0; i < 2; i++) {
		const char *id;

		m = fake_up_take(u, "add-query");
		id = json_get_string(m, "client-event-id");
		CHECK(id && ((strcmp(id, ceid_all) == 0 && same_json(json_get(m, "q"), Q_ALL)) ||
		    (strcmp(id, ceid_a) == 0 && same_json(json_get(m, "q"), Q_A))));
	}
	/* The outbox, in order: the sent one as a replay. */
	{
		int n = cJSON_GetArraySize(u->sent), k = 0;
		const char *want[3] = { m1, m2, m3 };

		for (int i = before; i < n; i++) {
			const cJSON *t = cJSON_GetArrayItem(u->sent, i);

			if (strcmp(json_get_string(t, "op"), "transact") != 0)
				continue;
			if (k < 3) {
				CHECK_STR(json_get_string(t, "client-event-id"), want[k]);
				CHECK_INT(has_mode(t, "create"), k > 0);
			}
			k++;
		}
		CHECK_INT(k, 3);
	}
	fake_up_skip(u);
	CHECK_OUTBOX(p, "sent,sent,sent");
	/* The server's answer in the new session makes the result fresh again. */
	fake_up_deliverf(u, "{\"op\":\"add-query-ok\",\"client-event-id\":\"%s\",\"q\":" Q_ALL ","
	    "\"result\":%s,\"processed-tx-id\":12}", ceid_all, ra);
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK(m != NULL);
	CHECK_BOOL(m, "from-cache", 0);
	CHECK_TODOS(m, "a,b,c,d");
	CHECK_INT(int_of(m, "processed-tx-id"), 12);
	fake_conn_free(p);
	core_close(s);
}

/* Writes queued offline survive the daemon: freed and created again over
 * the same state dir, the core opens the profile by itself and sends them in
 * order; sent once before a restart, they go again as replays. */
static void
test_restart_replay(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *m1 = NULL, *m2 = NULL;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	write_todo(p, "t1", E2, "b");
	write_todo(p, "t2", E3, "c");
	fake_turn();
	m1 = queued_id(p, "t1");
	m2 = queued_id(p, "t2");
	u = fake_up_find(APP);
	CHECK_INT(cJSON_GetArraySize(u->sent), 0);
	fake_conn_free(p);
	core_close(s);
	CHECK_INT(fake_up_count(), 0);

	/* Restart: no program, yet the queued profile opens and replays. */
	s = core_open();
	CHECK_INT(fake_up_count(), 1);
	u = online();
	CHECK(has_mode(sent_transact(u, m1), "create"));	/* never sent before */
	CHECK(has_mode(sent_transact(u, m2), "create"));
	CHECK_INT(fake_up_count_unread(u, "transact"), 0);
	/* status shows the replay's progress. */
	p = program(s, "watcher");
	fake_conn_request(p, "{\"op\":\"status\",\"client-event-id\":\"st\"}");
	m = fake_conn_take(p, "status", "st");
	CHECK_INT(int_of(json_get(json_get(m, "status"), "replay"), "total"), 2);
	CHECK_INT(int_of(json_get(json_get(m, "status"), "replay"), "done"), 0);
	CHECK_INT(int_of(json_get(json_get(m, "status"), "queue"), "pending"), 2);
	fake_conn_free(p);
	core_close(s);

	/* Sent but never confirmed: after this restart they may have landed. */
	s = core_open();
	u = online();
	CHECK(!has_mode(sent_transact(u, m1), "create"));
	CHECK(!has_mode(sent_transact(u, m2), "create"));
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":40}", m1);
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":41}", m2);
	fake_turn();
	p = program(s, "two");
	CHECK_OUTBOX(p, "");		/* no query holds a result: nothing waits for one */
	fake_conn_free(p);
	core_close(s);

	/* Confirmed: nothing to replay, no session opened without a program. */
	s = core_open();
	CHECK_INT(fake_up_count(), 0);
	core_close(s);
}

/* Offline after a restart: a cached query is answered from the mirror, an
 * unseen one partially from every mirrored triple, network-only fails. */
static void
test_offline(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *r2 = todos_result(E1, "a", E2, "b", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	refresh(u, 11, Q_ALL, r2);
	fake_clock_advance(500 * 1000);		/* past the mirror's write-behind */
	fake_conn_free(p);
	core_close(s);

	s = core_open();
	p = program(s, "two");
	u = fake_up_find(APP);
	/* Connecting still: the cached query is answered at once, from the cache. */
	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o0\",\"q\":" Q_ALL "}");
	m = fake_conn_take(p, "query-ok", "o0");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a,b");
	CHECK_BOOL(m, "from-cache", 1);
	fake_up_state(u, UPSTREAM_CONNECTING, NULL);
	fake_up_state(u, UPSTREAM_BACKOFF, "connection refused");

	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o1\",\"q\":" Q_ALL ","
	    "\"policy\":\"cache-first\"}");
	m = fake_conn_take(p, "query-ok", "o1");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a,b");
	CHECK_BOOL(m, "from-cache", 1);
	CHECK_BOOL(m, "partial", 0);
	CHECK_INT(int_of(m, "processed-tx-id"), 11);

	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o2\",\"q\":" Q_A "}");
	m = fake_conn_take(p, "query-ok", "o2");
	CHECK(m != NULL);
	CHECK_TODOS(m, "a");
	CHECK_BOOL(m, "partial", 1);

	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o3\",\"q\":" Q_ALL ","
	    "\"policy\":\"network-only\"}");
	m = fake_conn_take(p, "error", "o3");
	CHECK_STR(json_get_string(m, "type"), "offline");

	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o4\",\"q\":" Q_A ","
	    "\"allow-partial\":false}");
	m = fake_conn_take(p, "error", "o4");
	CHECK_STR(json_get_string(m, "type"), "offline");

	/* Writes offline show at once and queue. */
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q1\",\"q\":" Q_ALL "}");
	CHECK_TODOS(fake_conn_take(p, "add-query-ok", "q1"), "a,b");
	write_todo(p, "t1", E3, "c");
	fake_turn();
	CHECK(fake_conn_take(p, "transact-queued", "t1") != NULL);
	m = fake_conn_take(p, "refresh-ok", "q1");
	CHECK_TODOS(m, "a,b,c");
	CHECK_BOOL(m, "has-pending-writes", 1);
	CHECK_INT(cJSON_GetArraySize(u->sent), 0);

	fake_conn_free(p);
	core_close(s);
}

/* A confirmed write that no result reflects (the server sends refresh-ok
 * only for changed results) leaves the outbox after the grace anyway. */
static void
test_confirmed_grace(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	write_todo(p, "t1", E2, "b");
	fake_turn();
	mid = queued_id(p, "t1");
	sent_transact(u, mid);
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":20}", mid);
	fake_turn();
	fake_clock_advance(4 * 1000 * 1000);
	CHECK_OUTBOX(p, "confirmed");
	fake_clock_advance(2 * 1000 * 1000);
	CHECK_OUTBOX(p, "");
	fake_conn_free(p);
	core_close(s);
}

/* While the app is read-only a write stays queued and its writer is told;
 * it is sent once the app takes writes again. */
static void
test_read_only(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	fake_up_deliver(u, "{\"op\":\"app-status-changed\",\"status\":\"read-only\"}");
	write_todo(p, "t1", E2, "b");
	fake_turn();
	mid = queued_id(p, "t1");
	m = fake_conn_take(p, "error", "t1");
	CHECK_STR(json_get_string(m, "type"), "app-read-only");
	CHECK_BOOL(m, "queued", 1);
	CHECK_STR(json_get_string(m, "mutation-id"), mid);
	CHECK_INT(fake_up_count_unread(u, "transact"), 0);
	CHECK_OUTBOX(p, "pending");
	fake_up_deliver(u, "{\"op\":\"app-status-changed\",\"status\":\"active\"}");
	sent_transact(u, mid);
	fake_conn_free(p);
	core_close(s);
}

/* The server rejects a query: its subscriber gets server-error; the
 * subscription stays and is sent again on the next session. */
static void
test_query_rejected(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *ceid = NULL;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q1\",\"q\":" Q_A "}");
	m = fake_up_take(u, "add-query");
	ceid = dup_or_null(json_get_string(m, "client-event-id"));
	fake_up_deliverf(u, "{\"op\":\"error\",\"client-event-id\":\"%s\",\"status\":400,"
	    "\"type\":\"validation-failed\",\"message\":\"bad query\","
	    "\"original-event\":{\"op\":\"add-query\",\"q\":" Q_A "}}", ceid);
	m = fake_conn_take(p, "error", "q1");
	CHECK_STR(json_get_string(m, "type"), "server-error");
	CHECK_STR(json_get_string(m, "message"), "bad query");
	fake_up_drop(u);
	fake_up_connect(u, attrs_json);
	m = fake_up_take(u, "add-query");
	CHECK(m != NULL && same_json(json_get(m, "q"), Q_A));
	fake_conn_free(p);
	core_close(s);
}

/* A write the database cannot hold: the writer gets storage-full and no
 * transact-queued, nothing goes upstream, and the optimistic effect it had
 * shown goes away; the next write that fits is stored as usual. */
static void
test_storage_full(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	const cJSON *m;
	size_t n = 600 * 1024;
	char *big = malloc(n + 1);

	fresh_state_dir();
	max_database_bytes = 512 * 1024;
	s = core_open();
	max_database_bytes = 0;
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	memset(big, 'x', n);
	big[n] = '\0';
	write_todo(p, "t1", E2, big);
	fake_turn();
	m = fake_conn_take(p, "error", "t1");
	CHECK_STR(json_get_string(m, "type"), "storage-full");
	CHECK(json_get(m, "mutation-id") == NULL);
	CHECK_INT(fake_conn_count(p, "transact-queued", "t1"), 0);
	CHECK_INT(fake_up_count_unread(u, "transact"), 0);
	fake_turn();
	CHECK_OUTBOX(p, "");
	/* The last result the program saw must not show the write. */
	{
		const cJSON *last = NULL;

		while ((m = fake_conn_take(p, "refresh-ok", "q1")))
			last = m;
		CHECK(last != NULL);
		CHECK_TODOS(last, "a");
	}
	write_todo(p, "t2", E3, "c");
	fake_turn();
	CHECK(fake_conn_take(p, "transact-queued", "t2") != NULL);
	CHECK_INT(fake_up_count_unread(u, "transact"), 1);
	free(big);
	fake_conn_free(p);
	core_close(s);
}

/* attrs the server knows: todos.* and notes.id / notes.body under its ids. */
static const char *attrs_with_notes_json =
    "[{\"id\":\"a4\",\"forward-identity\":[\"i4\",\"todos\",\"id\"],\"value-type\":\"blob\","
    "\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
    "{\"id\":\"a5\",\"forward-identity\":[\"i5\",\"todos\",\"text\"],\"value-type\":\"blob\","
    "\"cardinality\":\"one\",\"unique?\":false,\"index?\":false},"
    "{\"id\":\"n1\",\"forward-identity\":[\"j1\",\"notes\",\"id\"],\"value-type\":\"blob\","
    "\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
    "{\"id\":\"n2\",\"forward-identity\":[\"j2\",\"notes\",\"body\"],\"value-type\":\"blob\","
    "\"cardinality\":\"one\",\"unique?\":false,\"index?\":false}]";

/* A write made before the daemon ever saw the server's attrs creates attrs of
 * its own; once the server's attrs arrive it is sent with the server's ids
 * and without those add-attr steps. */
static void
test_attrs_rewrite(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL;
	const cJSON *m, *st;
	int add_attrs = 0, on_server_ids = 0;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	fake_conn_request(p, "{\"op\":\"transact\",\"client-event-id\":\"t1\",\"ops\":"
	    "[[\"create\",\"notes\",\"" E1 "\",{\"body\":\"hello\"}]]}");
	fake_turn();
	mid = queued_id(p, "t1");
	u = fake_up_find(APP);
	fake_up_connect(u, attrs_with_notes_json);
	m = sent_transact(u, mid);
	cJSON_ArrayForEach(st, json_get(m, "tx-steps")) {
		const char *op = cJSON_GetArrayItem(st, 0)->valuestring;
		const char *aid = cJSON_IsString(cJSON_GetArrayItem(st, 2)) ?
		    cJSON_GetArrayItem(st, 2)->valuestring : "";

		add_attrs += strcmp(op, "add-attr") == 0;
		on_server_ids += strcmp(op, "add-triple") == 0 &&
		    (strcmp(aid, "n1") == 0 || strcmp(aid, "n2") == 0);
	}
	CHECK_INT(add_attrs, 0);
	CHECK_INT(on_server_ids, 2);
	if (add_attrs || on_server_ids != 2)
		show("# sent", m);
	fake_conn_free(p);
	core_close(s);
}

/* The attr id of the add-attr step in transact for etype.label, NULL if none. */
static const char *
added_attr_id(const cJSON *transact, const char *etype, const char *label)
{
	const cJSON *st;

	cJSON_ArrayForEach(st, json_get(transact, "tx-steps")) {
		const cJSON *a = cJSON_GetArrayItem(st, 1), *fwd = json_get(a, "forward-identity");

		if (strcmp(cJSON_GetArrayItem(st, 0)->valuestring, "add-attr") == 0 &&
		    cJSON_IsString(cJSON_GetArrayItem(fwd, 1)) && cJSON_IsString(cJSON_GetArrayItem(fwd, 2)) &&
		    strcmp(cJSON_GetArrayItem(fwd, 1)->valuestring, etype) == 0 &&
		    strcmp(cJSON_GetArrayItem(fwd, 2)->valuestring, label) == 0)
			return json_get_string(a, "id");
	}
	return NULL;
}

/* A write made new attrs here; once confirmed, a result that uses them
 * arrives before the server sends its attrs again: it shows what it holds
 * (its store knows the local attrs, as the store of an older result, built
 * before they were made, does not). */
static void
test_result_new_attrs(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL, *result = NULL;
	const char *id_attr, *body_attr;
	const cJSON *m, *notes;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	fake_conn_request(p, "{\"op\":\"transact\",\"client-event-id\":\"t1\",\"ops\":"
	    "[[\"create\",\"notes\",\"" E1 "\",{\"body\":\"hello\"}]]}");
	fake_turn();
	mid = queued_id(p, "t1");
	m = sent_transact(u, mid);
	id_attr = added_attr_id(m, "notes", "id");
	body_attr = added_attr_id(m, "notes", "body");
	CHECK(id_attr && body_attr);
	if (!id_attr || !body_attr)
		show("# sent", m);
	if (asprintf(&result, "[{\"data\":{\"datalog-result\":{\"join-rows\":[[[\"%s\",\"%s\",\"%s\","
	    "1732700000000],[\"%s\",\"%s\",\"hello\",1732700000001]]]}},\"child-nodes\":[]}]",
	    E1, id_attr ? id_attr : "?", E1, E1, body_attr ? body_attr : "?") < 0)
		abort();
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":20}", mid);
	fake_turn();
	CHECK(fake_conn_take(p, "transact-ok", "t1") != NULL);
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q2\",\"q\":{\"notes\":{}}}");
	fake_turn();
	answer_add_query(u, "{\"notes\":{}}", 21, result);
	fake_turn();
	m = fake_conn_take(p, "add-query-ok", "q2");
	CHECK(m != NULL);
	notes = json_get(json_get(m, "data"), "notes");
	CHECK_INT(cJSON_GetArraySize(notes), 1);
	CHECK_STR(json_get_string(cJSON_GetArrayItem(notes, 0), "body"), "hello");
	CHECK_BOOL(m, "has-pending-writes", 0);
	if (cJSON_GetArraySize(notes) != 1)
		show("# got", m);
	fake_conn_free(p);
	core_close(s);
}

/* An update of an entity the results show is sent with mode "update"; when a
 * queued delete of that entity follows it, its replay goes without the mode
 * (the delete may already have run), and the delete is sent again after it.
 * An update of an entity nothing deletes keeps its mode in the replay. */
static void
test_replay_update_delete(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL, *r = todos_result(E1, "a", E3, "c", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	refresh(u, 11, Q_ALL, r);
	fake_conn_request(p, "{\"op\":\"transact\",\"client-event-id\":\"t1\",\"ops\":"
	    "[[\"update\",\"todos\",\"" E1 "\",{\"text\":\"A\"}]]}");
	fake_turn();
	m1 = queued_id(p, "t1");
	CHECK(has_mode(sent_transact(u, m1), "update"));
	fake_conn_request(p, "{\"op\":\"transact\",\"client-event-id\":\"t2\",\"ops\":"
	    "[[\"delete\",\"todos\",\"" E1 "\",null]]}");
	fake_turn();
	m2 = queued_id(p, "t2");
	sent_transact(u, m2);
	fake_conn_request(p, "{\"op\":\"transact\",\"client-event-id\":\"t3\",\"ops\":"
	    "[[\"update\",\"todos\",\"" E3 "\",{\"text\":\"C\"}]]}");
	fake_turn();
	m3 = queued_id(p, "t3");
	CHECK(has_mode(sent_transact(u, m3), "update"));
	fake_up_drop(u);
	fake_up_connect(u, attrs_json);
	CHECK(!has_mode(sent_transact(u, m1), "update"));
	m = sent_transact(u, m2);
	CHECK(has_step(m, "delete-entity"));
	CHECK(has_mode(sent_transact(u, m3), "update"));
	fake_conn_free(p);
	core_close(s);
}

/* The server does not know the app: a subscription without a cached result
 * is told app-not-found and stays; it is answered when the app appears. */
static void
test_app_not_found(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *r = todos_result(E1, "a", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = fake_up_find(APP);
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q1\",\"q\":" Q_ALL "}");
	fake_up_state(u, UPSTREAM_OPENED, NULL);
	fake_up_state(u, UPSTREAM_APP_NOT_FOUND, "app not found");
	m = fake_conn_take(p, "error", "q1");
	CHECK_STR(json_get_string(m, "type"), "app-not-found");
	/* Told once, not on every retry. */
	fake_up_state(u, UPSTREAM_OPENED, NULL);
	fake_up_state(u, UPSTREAM_APP_NOT_FOUND, "app not found");
	CHECK_INT(fake_conn_count(p, NULL, "q1"), 0);
	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o1\",\"q\":" Q_ALL "}");
	m = fake_conn_take(p, "error", "o1");
	CHECK_STR(json_get_string(m, "type"), "app-not-found");
	fake_up_connect(u, attrs_json);
	answer_add_query(u, Q_ALL, 10, r);
	CHECK_TODOS(fake_conn_take(p, "add-query-ok", "q1"), "a");
	fake_conn_free(p);
	core_close(s);
}

/* Offline, a subscription to a query never seen is answered partial from the
 * mirror; the server's answer then comes as refresh-ok, no longer partial. */
static void
test_partial_then_full(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *r2 = todos_result(E1, "a", E2, "a", NULL);
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	fake_up_drop(u);
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q2\",\"q\":" Q_A "}");
	m = fake_conn_take(p, "add-query-ok", "q2");
	CHECK(m != NULL);
	CHECK_BOOL(m, "partial", 1);
	CHECK_BOOL(m, "from-cache", 1);
	CHECK_TODOS(m, "a");
	fake_up_connect(u, attrs_json);
	answer_add_query(u, Q_ALL, 11, r2);
	answer_add_query(u, Q_A, 11, r2);
	m = fake_conn_take(p, "refresh-ok", "q2");
	CHECK(m != NULL);
	CHECK_BOOL(m, "partial", 0);
	CHECK_BOOL(m, "from-cache", 0);
	CHECK_TODOS(m, "a,a");
	fake_conn_free(p);
	core_close(s);
}

/* The ops on stored profiles, from a program bound to none: export-cache
 * includes a result still waiting for the write-behind, clear-cache removes
 * it, forget-profile refuses while a write is queued and otherwise closes the
 * profile, its session and its programs, and removes its database. */
static void
test_store_ops(void)
{
	struct sync *s;
	struct fake_conn *p, *admin;
	struct upstream *u;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	admin = fake_conn_open(&sync_ipc_callbacks, s);
	fake_conn_request(admin, "{\"op\":\"export-cache\",\"client-event-id\":\"e\",\"profile\":\"" APP "\"}");
	m = fake_conn_take(admin, "cache", "e");
	CHECK_INT(cJSON_GetArraySize(json_get(m, "queries")), 1);
	CHECK(same_json(json_get(cJSON_GetArrayItem(json_get(m, "queries"), 0), "q"), Q_ALL));
	fake_conn_request(admin, "{\"op\":\"clear-cache\",\"client-event-id\":\"c\",\"profile\":\"" APP "\"}");
	m = fake_conn_take(admin, "clear-cache-ok", "c");
	CHECK_INT(int_of(m, "removed"), 1);
	fake_clock_advance(500 * 1000);		/* nothing dirty comes back */
	fake_conn_request(admin, "{\"op\":\"export-cache\",\"client-event-id\":\"e2\",\"profile\":\"" APP "\"}");
	m = fake_conn_take(admin, "cache", "e2");
	CHECK_INT(cJSON_GetArraySize(json_get(m, "queries")), 0);

	fake_up_drop(u);
	write_todo(p, "t1", E2, "b");
	fake_conn_request(admin, "{\"op\":\"forget-profile\",\"client-event-id\":\"f\",\"profile\":\"" APP "\"}");
	m = fake_conn_take(admin, "error", "f");
	CHECK_STR(json_get_string(m, "type"), "invalid-request");
	CHECK_INT(int_of(m, "queued"), 1);	/* awaiting its commit counts too */
	fake_turn();
	fake_conn_request(admin, "{\"op\":\"forget-profile\",\"client-event-id\":\"f2\",\"profile\":\"" APP "\","
	    "\"discard-queued\":true}");
	m = fake_conn_take(admin, "forget-profile-ok", "f2");
	CHECK(m != NULL);
	CHECK_INT(int_of(m, "discarded"), 1);
	CHECK(fake_conn_closed(p));
	CHECK_INT(fake_up_count(), 0);
	fake_conn_free(p);
	fake_conn_request(admin, "{\"op\":\"list-profiles\",\"client-event-id\":\"l\"}");
	m = fake_conn_take(admin, "profiles", "l");
	CHECK(m != NULL);
	CHECK_INT(cJSON_GetArraySize(json_get(m, "profiles")), 0);
	fake_conn_free(admin);
	core_close(s);
}

/* Two apps are two profiles with a session each: a write goes only to its own. */
static void
test_two_apps(void)
{
	struct sync *s;
	struct fake_conn *p, *q;
	struct upstream *u, *v;
	_cleanup_free_ char *mid = NULL;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	q = fake_conn_open(&sync_ipc_callbacks, s);
	fake_conn_request(q, "{\"op\":\"init\",\"client-event-id\":\"i\",\"app-id\":\"" APP2 "\"}");
	CHECK(fake_conn_take(q, "init-ok", "i") != NULL);
	CHECK_INT(fake_up_count(), 2);
	u = online();
	v = fake_up_find(APP2);
	fake_up_connect(v, attrs_json);
	write_todo(q, "t1", E2, "b");
	fake_turn();
	mid = queued_id(q, "t1");
	CHECK_INT(fake_up_count_unread(u, "transact"), 0);
	sent_transact(v, mid);
	CHECK_INT(fake_conn_count(p, NULL, NULL), 0);
	fake_conn_free(p);
	fake_conn_free(q);
	core_close(s);
}

/* A query-once that waits for the server gets timeout when timeout-ms passes. */
static void
test_query_once_timeout(void)
{
	struct sync *s;
	struct fake_conn *p;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	fake_conn_request(p, "{\"op\":\"query-once\",\"client-event-id\":\"o1\",\"q\":" Q_ALL ","
	    "\"policy\":\"network-only\",\"timeout-ms\":500}");
	fake_clock_advance(499 * 1000);
	CHECK_INT(fake_conn_count(p, NULL, "o1"), 0);
	fake_clock_advance(2 * 1000);
	m = fake_conn_take(p, "error", "o1");
	CHECK_STR(json_get_string(m, "type"), "timeout");
	fake_conn_free(p);
	core_close(s);
}

/* A writer that disconnects before its write is confirmed: the write is still
 * sent and confirmed; nobody is told. */
static void
test_writer_gone(void)
{
	struct sync *s;
	struct fake_conn *p, *p2;
	struct upstream *u;
	const cJSON *m;
	char *mid;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	p2 = program(s, "two");
	u = online();
	write_todo(p, "t1", E2, "b");
	fake_conn_free(p);		/* before the group commit */
	fake_turn();
	m = fake_up_take(u, "transact");
	CHECK(m != NULL);
	mid = dup_or_null(json_get_string(m, "client-event-id"));
	fake_up_deliverf(u, "{\"op\":\"transact-ok\",\"client-event-id\":\"%s\",\"tx-id\":20}", mid);
	fake_turn();
	CHECK_INT(fake_conn_count(p2, "transact-ok", NULL), 0);
	free(mid);
	fake_conn_free(p2);
	core_close(s);
}

/* Requests are checked as the server checks them, and init comes first. */
static void
test_requests(void)
{
	struct sync *s;
	struct fake_conn *p;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p = fake_conn_open(&sync_ipc_callbacks, s);
	fake_conn_request(p, "{\"op\":\"add-query\",\"client-event-id\":\"q1\",\"q\":" Q_ALL "}");
	m = fake_conn_take(p, "error", "q1");
	CHECK_STR(json_get_string(m, "type"), "not-initialized");
	fake_conn_request(p, "{\"op\":\"no-such-op\",\"client-event-id\":\"x\"}");
	m = fake_conn_take(p, "error", "x");
	CHECK_STR(json_get_string(m, "type"), "invalid-op");
	fake_conn_request(p, "{\"op\":\"init\",\"client-event-id\":\"i\",\"app-id\":\"not-a-uuid\"}");
	m = fake_conn_take(p, "error", "i");
	CHECK_STR(json_get_string(m, "type"), "invalid-request");
	CHECK_INT(fake_up_count(), 0);
	fake_conn_free(p);

	/* init binds once; a watcher follows its profile's state. */
	p = program(s, "one");
	fake_conn_request(p, "{\"op\":\"init\",\"client-event-id\":\"i2\",\"app-id\":\"" APP "\"}");
	m = fake_conn_take(p, "error", "i2");
	CHECK_STR(json_get_string(m, "type"), "invalid-request");
	fake_conn_request(p, "{\"op\":\"watch-status\",\"client-event-id\":\"w\"}");
	CHECK(fake_conn_take(p, "status", "w") != NULL);
	online();
	fake_conn_skip(p);
	fake_up_drop(fake_up_find(APP));
	m = fake_conn_take(p, "status", NULL);
	CHECK_STR(json_get_string(json_get(m, "status"), "state"), "backoff");
	CHECK_STR(json_get_string(json_get(m, "status"), "last-error"), "the server closed the connection");
	fake_conn_free(p);
	core_close(s);
}

static void
count_done(void *ud)
{
	(*(int *)ud)++;
}

/* A graceful shutdown commits the writes accepted in this turn before the
 * sessions close; they replay on the next start. */
static void
test_shutdown(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL;
	int done = 0;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	write_todo(p, "t1", E2, "b");
	sync_shutdown(s, count_done, &done);
	mid = queued_id(p, "t1");
	CHECK_INT(done, 0);		/* the session closes from the loop */
	fake_turn();
	CHECK_INT(done, 1);
	fake_conn_free(p);
	core_close(s);

	s = core_open();
	u = online();
	sent_transact(u, mid);
	core_close(s);
}

/* A network-only query-once for a query another program holds, with a
 * result fresh from this session: the server sends nothing more unless the
 * result changes, so the answer must come from that fresh result. */
static void
test_network_only_shared(void)
{
	struct sync *s;
	struct fake_conn *p1, *p2;
	struct upstream *u;
	const cJSON *m;

	fresh_state_dir();
	s = core_open();
	p1 = program(s, "one");
	p2 = program(s, "two");
	u = online();
	subscribe_all(p1, u, "q1");
	fake_conn_request(p2, "{\"op\":\"query-once\",\"client-event-id\":\"o1\",\"q\":" Q_ALL ","
	    "\"policy\":\"network-only\",\"timeout-ms\":10000}");
	fake_clock_advance(10001 * 1000);
	m = fake_conn_take(p2, NULL, "o1");
	CHECK_STR(json_get_string(m, "op"), "query-ok");
	if (m && strcmp(json_get_string(m, "op"), "query-ok") != 0)
		show("# got", m);
	fake_conn_free(p1);
	fake_conn_free(p2);
	core_close(s);
}

/* list-mutations after the connection dropped: PROTOCOL.md says pending is
 * "not yet sent in this session", and after a restart it is listed so. */
static void
test_state_after_drop(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;
	_cleanup_free_ char *mid = NULL;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	write_todo(p, "t1", E2, "b");
	fake_turn();
	mid = queued_id(p, "t1");
	sent_transact(u, mid);
	fake_up_drop(u);
	CHECK_OUTBOX(p, "pending");
	fake_conn_free(p);
	core_close(s);
}

/* Pacing (daemon/query.c): a render of new server results that costs much
 * waits until the loop had time for other work. Of many refreshes in a row
 * the program sees fewer than it was sent, and always the last; its own write,
 * and a second program's first answer, come at once. */
static void
test_paced_refresh(void)
{
	struct sync *s;
	struct fake_conn *p, *p2;
	struct upstream *u;
	const cJSON *m, *last = NULL;
	char text[16];
	int n = 0;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	/* Every render now takes 5 ms, a turn about 1 ms and a few clock reads. */
	fake_clock_cost(5000);
	for (int i = 0; i < 20; i++) {
		_cleanup_free_ char *r = NULL;

		snprintf(text, sizeof(text), "r%d", i);
		r = todos_result(E1, text, NULL);
		refresh(u, 11 + i, Q_ALL, r);
	}
	fake_clock_cost(0);
	n = fake_conn_count(p, "refresh-ok", "q1");
	CHECK(n >= 1 && n < 20);
	if (!(n >= 1 && n < 20))
		printf("# %d refreshes of 20 shown at once\n", n);

	/* A second program's first answer does not wait. */
	p2 = program(s, "two");
	fake_conn_request(p2, "{\"op\":\"add-query\",\"client-event-id\":\"q2\",\"q\":" Q_ALL "}");
	fake_turn();
	CHECK_TODOS(fake_conn_take(p2, "add-query-ok", "q2"), "r19");

	/* The last result reaches the first program once time passes. */
	fake_clock_advance(200000);
	while ((m = fake_conn_take(p, "refresh-ok", "q1")) != NULL)
		last = m;
	CHECK_TODOS(last, "r19");

	/* A program's own write is shown at once, even right after a paced refresh. */
	fake_clock_cost(5000);
	{
		_cleanup_free_ char *r = todos_result(E1, "r20", NULL);

		refresh(u, 40, Q_ALL, r);
	}
	fake_clock_cost(0);
	fake_conn_skip(p);
	write_todo(p, "t1", E2, "mine");
	fake_turn();
	last = NULL;
	while ((m = fake_conn_take(p, "refresh-ok", "q1")) != NULL)
		last = m;
	CHECK(last != NULL);
	if (last)
		CHECK_TODOS(last, "r20,mine");

	fake_conn_free(p2);
	fake_conn_free(p);
	core_close(s);
}

/* sync_free with a program still connected that holds a subscription (the
 * daemon frees ipc first, so only a test or an embedder gets here). */
static void
test_free_with_programs(void)
{
	struct sync *s;
	struct fake_conn *p;
	struct upstream *u;

	fresh_state_dir();
	s = core_open();
	p = program(s, "one");
	u = online();
	subscribe_all(p, u, "q1");
	sync_free(s);
	fake_conn_abandon(p);
}

int
main(void)
{
	log_set_level(getenv("TEST_CORE_DEBUG") ? LOG_DEBUG : LOG_ERR);
	test_query();
	test_shared();
	test_grace();
	test_grace_reconnect();
	test_transact();
	test_reject();
	test_fail_middle();
	test_reconnect();
	test_restart_replay();
	test_offline();
	test_query_once_timeout();
	test_confirmed_grace();
	test_read_only();
	test_query_rejected();
	test_storage_full();
	test_attrs_rewrite();
	test_result_new_attrs();
	test_replay_update_delete();
	test_app_not_found();
	test_partial_then_full();
	test_store_ops();
	test_refresh_in_parts();
	test_two_apps();
	test_writer_gone();
	test_requests();
	test_shutdown();
	test_network_only_shared();
	test_state_after_drop();
	test_free_with_programs();
	test_paced_refresh();
	if (state_dir[0])
		(void)nftw(state_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
