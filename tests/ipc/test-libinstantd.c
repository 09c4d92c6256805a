/* Tests of libinstantd against the ipc-echo stand-in: connect, the default
 * path, request helpers, callbacks, request_sync, timeouts, disconnects. */
#include "config.h"

#include "ipc/instantd.h"
#include "tests/tap.h"
#include "tests/ipc/ipc-test.h"

struct seen {
	int results, replies, pushes, errors, disconnects, messages;
	char last_result_id[64], last_reply_op[64], last_error_type[64], last_error_id[64];
	char last_push_op[64];
	int last_reason;
};

static void
copy(char *dst, const char *src)
{
	snprintf(dst, 64, "%s", src != NULL ? src : "");
}

static void
on_message(struct instantd_client *c, const cJSON *msg, void *ud)
{
	((struct seen *)ud)->messages++;
}

static void
on_result(struct instantd_client *c, const char *id, const cJSON *data, const cJSON *msg,
    void *ud)
{
	struct seen *s = ud;

	s->results++;
	copy(s->last_result_id, id);
	CHECK(data != NULL);
}

static void
on_reply(struct instantd_client *c, const char *id, const char *op, const cJSON *msg, void *ud)
{
	struct seen *s = ud;
	cJSON *reply = NULL;

	/* Re-entering the reader from a callback is refused, sending is fine. */
	CHECK_INT(instantd_dispatch(c), -EBUSY);
	CHECK_INT(instantd_wait(c, 0), -EBUSY);
	CHECK_INT(instantd_request_sync(c, msg, 10, &reply), -EBUSY);

	s->replies++;
	copy(s->last_reply_op, op);
}

static void
on_push(struct instantd_client *c, const char *op, const cJSON *msg, void *ud)
{
	struct seen *s = ud;

	s->pushes++;
	copy(s->last_push_op, op);
}

static void
on_error(struct instantd_client *c, const char *id, const char *type, const char *message,
    const cJSON *msg, void *ud)
{
	struct seen *s = ud;

	s->errors++;
	copy(s->last_error_type, type);
	copy(s->last_error_id, id);
}

static void
on_disconnect(struct instantd_client *c, int reason, void *ud)
{
	struct seen *s = ud;

	s->disconnects++;
	s->last_reason = reason;
}

static const struct instantd_callbacks callbacks = {
	.on_message = on_message,
	.on_result = on_result,
	.on_reply = on_reply,
	.on_push = on_push,
	.on_error = on_error,
	.on_disconnect = on_disconnect,
};

/* Run the client until `*counter` reaches `want` (or a generous bound). */
static void
pump(struct instantd_client *c, int *counter, int want)
{
	int64_t deadline = it_now_ms() + IT_TIMEOUT_MS;

	while (*counter < want && it_now_ms() < deadline)
		if (instantd_wait(c, 100) < 0)
			break;
}

static void
test_default_path(void)
{
	char *p = NULL;

	setenv("INSTANTD_SOCKET", "/x/y.sock", 1);
	CHECK(instantd_default_socket_path(&p) == 0);
	CHECK_STR(p, "/x/y.sock");
	free(p);
	unsetenv("INSTANTD_SOCKET");
	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	CHECK(instantd_default_socket_path(&p) == 0);
	CHECK_STR(p, "/run/user/7/instantd/socket");
	free(p);
	unsetenv("XDG_RUNTIME_DIR");
	CHECK_INT(instantd_default_socket_path(&p), -ENOENT);
}

static void
test_flow(const struct it_echo *e)
{
	struct instantd_client *c = NULL;
	struct seen s = { 0 };
	cJSON *q, *m, *reply = NULL;
	char *id = NULL, *qid = NULL;
	int before;

	/* Through $INSTANTD_SOCKET. */
	setenv("INSTANTD_SOCKET", e->path, 1);
	CHECK(instantd_connect(NULL, &c) == 0);
	unsetenv("INSTANTD_SOCKET");
	if (c == NULL)
		return;
	instantd_set_callbacks(c, &callbacks, &s);
	CHECK(instantd_fd(c) >= 0);

	/* request_sync: init. */
	m = cJSON_Parse("{\"op\":\"init\",\"app-id\":\"app-1\",\"api-uri\":\"http://localhost:1\"}");
	CHECK(instantd_request_sync(c, m, IT_TIMEOUT_MS, &reply) == 0);
	CHECK_STR(instantd_msg_op(reply), "init-ok");
	CHECK(instantd_msg_id(reply) != NULL);
	CHECK(!instantd_is_error(reply));
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(reply, "app-id")->valuestring, "app-1");
	cJSON_Delete(reply);
	CHECK(cJSON_GetObjectItemCaseSensitive(m, "client-event-id") == NULL);	/* msg untouched */
	cJSON_Delete(m);
	CHECK_INT(s.messages, 0);	/* the sync reply is not also dispatched */

	/* add-query: add-query-ok then refresh-ok, both to on_result with our id. */
	q = cJSON_Parse("{\"goals\":{\"todos\":{}}}");
	CHECK(instantd_add_query(c, q, &qid) == 0);
	CHECK(qid != NULL && strlen(qid) == 36);
	pump(c, &s.results, 2);
	CHECK_INT(s.results, 2);
	CHECK_STR(s.last_result_id, qid);

	CHECK(instantd_query_once(c, q, "cache-only", &id) == 0);
	pump(c, &s.results, 3);
	CHECK_INT(s.results, 3);
	CHECK_STR(s.last_result_id, id);
	free(id);
	cJSON_Delete(q);

	CHECK(instantd_remove_query(c, qid, &id) == 0);
	CHECK_STR(id, qid);
	free(id);
	before = s.replies;
	pump(c, &s.replies, before + 1);
	CHECK_STR(s.last_reply_op, "remove-query-ok");
	free(qid);

	/* transact: two replies. */
	m = cJSON_Parse("[[\"update\",\"goals\",\"0d7d6bda-5c5c-4f3c-9a0f-2b8d6f0a9a11\",{\"t\":1}]]");
	CHECK(instantd_transact(c, m, NULL) == 0);
	CHECK(instantd_transact_steps(c, m, NULL) == 0);
	cJSON_Delete(m);
	before = s.replies;
	pump(c, &s.replies, before + 4);
	CHECK_INT(s.replies, before + 4);
	CHECK_STR(s.last_reply_op, "transact-ok");

	/* Errors carry the request's id. */
	CHECK(instantd_retry_mutation(c, "missing", &id) == 0);
	pump(c, &s.errors, 1);
	CHECK_INT(s.errors, 1);
	CHECK_STR(s.last_error_type, "not-found");
	CHECK_STR(s.last_error_id, id);
	free(id);
	CHECK(instantd_discard_mutation(c, "m-1", NULL) == 0);
	CHECK(instantd_list_mutations(c, NULL) == 0);
	before = s.replies;
	pump(c, &s.replies, before + 2);
	CHECK_STR(s.last_reply_op, "mutations");

	/* Rooms: pushes. */
	m = cJSON_Parse("{\"name\":\"x\"}");
	CHECK(instantd_join_room(c, "room-1", NULL, m, NULL) == 0);
	pump(c, &s.pushes, 1);
	CHECK_STR(s.last_push_op, "refresh-presence");
	CHECK(instantd_set_presence(c, "room-1", m, NULL) == 0);
	CHECK(instantd_broadcast(c, "room-1", "hello", m, NULL) == 0);
	pump(c, &s.pushes, 3);
	CHECK_STR(s.last_push_op, "server-broadcast");
	CHECK(instantd_leave_room(c, "room-1", NULL) == 0);
	CHECK(instantd_status(c, NULL) == 0);
	CHECK(instantd_watch_status(c, true, NULL) == 0);
	cJSON_Delete(m);
	before = s.replies;
	pump(c, &s.replies, before + 5);
	CHECK_STR(s.last_reply_op, "status");

	/* Signing in. */
	CHECK(instantd_send_magic_code(c, "a@b.c", NULL) == 0);
	CHECK(instantd_sign_in_magic_code(c, "a@b.c", "123456", NULL) == 0);
	CHECK(instantd_sign_in_guest(c, NULL) == 0);
	CHECK(instantd_sign_in_token(c, "t", NULL) == 0);
	CHECK(instantd_whoami(c, NULL) == 0);
	CHECK(instantd_sign_out(c, NULL) == 0);
	before = s.replies;
	pump(c, &s.replies, before + 6);
	CHECK_INT(s.replies, before + 6);
	CHECK_STR(s.last_reply_op, "sign-out-ok");
	CHECK_INT(instantd_sign_in_token(c, NULL, NULL), -EINVAL);

	/* Bad arguments are refused locally. */
	CHECK_INT(instantd_set_presence(c, "r", NULL, NULL), -EINVAL);
	CHECK_INT(instantd_init(c, NULL, NULL, NULL, NULL), -EINVAL);

	/* request_sync leaves later messages buffered for dispatch. */
	m = cJSON_Parse("{\"op\":\"transact\",\"client-event-id\":\"tx-sync\",\"ops\":[[\"update\",\"a\",\"b\",{}]]}");
	CHECK(instantd_request_sync(c, m, IT_TIMEOUT_MS, &reply) == 0);
	CHECK_STR(instantd_msg_op(reply), "transact-queued");
	CHECK_STR(instantd_msg_id(reply), "tx-sync");
	cJSON_Delete(reply);
	cJSON_Delete(m);
	before = s.replies;
	pump(c, &s.replies, before + 1);
	CHECK_STR(s.last_reply_op, "transact-ok");

	/* An error reply to a sync request comes back as the reply. */
	m = cJSON_Parse("{\"op\":\"frobnicate\"}");
	CHECK(instantd_request_sync(c, m, IT_TIMEOUT_MS, &reply) == 0);
	CHECK(instantd_is_error(reply));
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(reply, "type")->valuestring, "invalid-op");
	cJSON_Delete(reply);
	cJSON_Delete(m);

	/* A 4 MiB message each way. */
	{
		size_t n = (size_t)4 << 20;
		char *big = malloc(n + 1);

		memset(big, 'z', n);
		big[n] = '\0';
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "op", "query-once");
		q = cJSON_AddObjectToObject(m, "q");
		cJSON_AddStringToObject(q, "big", big);
		CHECK(instantd_request_sync(c, m, IT_TIMEOUT_MS, &reply) == 0);
		CHECK_STR(instantd_msg_op(reply), "query-ok");
		CHECK(strlen(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
		    reply, "q"), "big")->valuestring) == n);
		cJSON_Delete(reply);
		cJSON_Delete(m);
		free(big);
	}
	CHECK_INT(s.disconnects, 0);
	instantd_free(c);
}

static void
test_timeout_and_disconnect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct instantd_client *c = NULL;
	struct seen s = { 0 };
	char dir[] = "/tmp/ipc-test-XXXXXX", path[64];
	cJSON *m, *reply = NULL;
	int lfd, afd;

	/* A socket that accepts but never answers. */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/s", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(lfd, 4) == 0);
	CHECK(instantd_connect(path, &c) == 0);
	instantd_set_callbacks(c, &callbacks, &s);
	m = cJSON_Parse("{\"op\":\"status\"}");
	CHECK_INT(instantd_request_sync(c, m, 50, &reply), -ETIMEDOUT);
	/* Now the "daemon" goes away. */
	afd = accept(lfd, NULL, NULL);
	CHECK(afd >= 0);
	close(afd);
	CHECK_INT(instantd_request_sync(c, m, IT_TIMEOUT_MS, &reply), -EPIPE);
	CHECK_INT(s.disconnects, 1);
	CHECK(instantd_status(c, NULL) < 0);
	cJSON_Delete(m);
	instantd_free(c);
	close(lfd);
	unlink(path);
	rmdir(dir);

	/* Nothing listening. */
	CHECK(instantd_connect("/nonexistent/instantd/socket", &c) == -ENOENT);
}

static void
keep_last(struct instantd_client *c, const cJSON *msg, void *ud)
{
	cJSON **last = ud;

	cJSON_Delete(*last);
	*last = cJSON_Duplicate(msg, 1);
}

/* init by profile or server, UUIDs, and the result flags without cJSON. */
static void
test_helpers(const struct it_echo *e)
{
	const struct instantd_init_options o = { .profile = "notes",
	    .server = "wss://example.test/runtime/session", .client_name = "t" };
	const struct instantd_init_options none = { .server = "wss://example.test/runtime/session" };
	const struct instantd_callbacks cb = { .on_message = keep_last };
	struct instantd_client *c = NULL;
	cJSON *q, *m, *last = NULL, *reply = NULL;
	char a[37], b[37];

	CHECK(instantd_uuid(a) == 0 && instantd_uuid(b) == 0);
	CHECK(strlen(a) == 36 && a[8] == '-' && a[13] == '-' && a[14] == '4' && a[18] == '-' &&
	    strchr("89ab", a[19]) != NULL && a[23] == '-');
	CHECK(strcmp(a, b) != 0);

	CHECK(instantd_connect(e->path, &c) == 0);
	if (c == NULL)
		return;
	instantd_set_callbacks(c, &cb, &last);
	CHECK_INT(instantd_init_with(c, &none, NULL), -EINVAL);	/* no app and no profile */
	CHECK_INT(instantd_init_with(c, NULL, NULL), -EINVAL);
	CHECK(instantd_init_with(c, &o, NULL) == 0);
	while (last == NULL && instantd_wait(c, IT_TIMEOUT_MS) > 0)
		;
	CHECK_STR(instantd_msg_op(last), "init-ok");
	/* The echo returns what init carried. */
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "profile")), "notes");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "server")),
	    "wss://example.test/runtime/session");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "client-name")), "t");
	CHECK(cJSON_GetObjectItemCaseSensitive(last, "app-id") == NULL);
	cJSON_Delete(last);

	/* The echo answers from the "cache". */
	q = cJSON_Parse("{\"goals\":{}}");
	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "op", "query-once");
	cJSON_AddItemToObject(m, "q", q);
	CHECK(instantd_request_sync(c, m, IT_TIMEOUT_MS, &reply) == 0);
	cJSON_Delete(m);
	CHECK(instantd_result_from_cache(reply));
	CHECK(!instantd_result_has_pending_writes(reply));
	CHECK(instantd_result_partial(reply));
	CHECK(cJSON_IsObject(instantd_result_data(reply)));
	cJSON_Delete(reply);
	reply = cJSON_Parse("{\"op\":\"refresh-ok\",\"has-pending-writes\":true}");
	CHECK(!instantd_result_from_cache(reply) && instantd_result_has_pending_writes(reply));
	CHECK(!instantd_result_partial(reply));	/* absent: false */
	CHECK(instantd_result_data(reply) == NULL);
	cJSON_Delete(reply);
	reply = cJSON_Parse("{\"op\":\"query-ok\",\"partial\":false}");
	CHECK(!instantd_result_partial(reply));
	cJSON_Delete(reply);
	instantd_free(c);
}

int
main(void)
{
	struct it_echo e;

	signal(SIGPIPE, SIG_IGN);
	test_default_path();
	CHECK(it_echo_start(&e, NULL) == 0);
	test_flow(&e);
	test_helpers(&e);
	CHECK_INT(it_echo_stop(&e), 0);
	test_timeout_and_disconnect();
	return tap_done();
}
