/* Tests of ipc/ipc-protocol.c: op names and the per-op request checks. */
#include "config.h"

#include <errno.h>

#include "ipc/ipc-protocol.h"
#include "tests/tap.h"

static int
check(const char *text)
{
	cJSON *j = cJSON_Parse(text);
	char *err = NULL;
	int r;

	if (j == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", text);
		return -999;
	}
	r = ipc_protocol_check(j, &err);
	if (r < 0) {
		CHECK(err != NULL && err[0] != '\0');
	} else
		CHECK(err == NULL);
	free(err);
	cJSON_Delete(j);
	return r;
}

int
main(void)
{
	/* Names round-trip. */
	for (int i = 0; i < _IPC_OP_MAX; i++)
		CHECK_INT(ipc_op_from_string(ipc_op_to_string((enum ipc_op)i)), i);
	CHECK_INT(ipc_op_from_string("nope"), _IPC_OP_INVALID);
	CHECK_INT(ipc_op_from_string(NULL), _IPC_OP_INVALID);
	CHECK(ipc_op_to_string(_IPC_OP_MAX) == NULL);
	CHECK_STR(ipc_op_to_string(IPC_OP_ADD_QUERY), "add-query");
	CHECK_INT(ipc_op_from_string("Add-Query"), _IPC_OP_INVALID);
	{
		int n = 0;

		for (const char *const *p = ipc_protocol_error_types; *p != NULL; p++)
			n++;
		CHECK(n >= 19);
		n = 0;
		for (const char *const *p = ipc_protocol_reply_names; *p != NULL; p++)
			n++;
		CHECK_INT(n, 27);
	}
	CHECK_STR(ipc_protocol_error_type(-EBADMSG), "invalid-op");
	CHECK_STR(ipc_protocol_error_type(-EOPNOTSUPP), "invalid-op");
	CHECK_STR(ipc_protocol_error_type(-EINVAL), "invalid-request");

	/* Shape. */
	CHECK_INT(check("[]"), -EBADMSG);
	CHECK_INT(check("\"init\""), -EBADMSG);
	CHECK_INT(check("{}"), -EBADMSG);
	CHECK_INT(check("{\"op\":null}"), -EBADMSG);
	CHECK_INT(check("{\"OP\":\"status\"}"), -EBADMSG);
	CHECK_INT(check("{\"op\":\"nope\"}"), -EOPNOTSUPP);
	CHECK_INT(check("{\"op\":\"init-ok\"}"), -EOPNOTSUPP);
	CHECK_INT(check("{\"op\":\"status\",\"client-event-id\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"status\",\"client-event-id\":\"x\"}"), 0);
	CHECK_INT(check("{\"op\":\"status\"}"), 0);
	CHECK(ipc_protocol_check(NULL, NULL) == -EBADMSG);

	/* init */
	CHECK_INT(check("{\"op\":\"init\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":5}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\"}"), 0);
	CHECK_INT(check("{\"op\":\"init\",\"profile\":\"work\"}"), 0);
	CHECK_INT(check("{\"op\":\"init\",\"profile\":3}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"server\":\"wss://x\"}"), 0);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"server\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"api-uri\":\"http://x\",\"refresh-token\":\"t\",\"client-name\":\"n\"}"), 0);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"api-uri\":7}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"refresh-token\":{}}"), -EINVAL);

	/* queries */
	CHECK_INT(check("{\"op\":\"add-query\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":[]}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":{\"goals\":{}}}"), 0);
	CHECK_INT(check("{\"op\":\"remove-query\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"remove-query\",\"client-event-id\":\"q1\"}"), 0);
	CHECK_INT(check("{\"op\":\"remove-query\",\"q\":{}}"), 0);
	CHECK_INT(check("{\"op\":\"remove-query\",\"query-event-id\":\"q1\"}"), 0);
	CHECK_INT(check("{\"op\":\"remove-query\",\"query-event-id\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"remove-query\",\"q\":\"x\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{}}"), 0);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"policy\":\"cache-first\"}"), 0);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"policy\":\"network-only\"}"), 0);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"policy\":\"cache-only\"}"), 0);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"policy\":\"sometimes\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"policy\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"allow-partial\":false}"), 0);
	CHECK_INT(check("{\"op\":\"query-once\",\"q\":{},\"allow-partial\":\"no\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":{},\"allow-partial\":true}"), 0);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":{},\"allow-partial\":0}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":{},\"format\":\"triples\"}"), 0);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":{},\"format\":\"data\"}"), 0);
	CHECK_INT(check("{\"op\":\"add-query\",\"q\":{},\"format\":\"rows\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"with-attrs\":true,\"token-profile\":true}"), 0);
	CHECK_INT(check("{\"op\":\"init\",\"app-id\":\"a\",\"token-profile\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"query-once\"}"), -EINVAL);

	/* transact */
	CHECK_INT(check("{\"op\":\"transact\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"transact\",\"ops\":[]}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"transact\",\"ops\":{}}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"transact\",\"ops\":[1]}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"transact\",\"ops\":[[\"update\",\"g\",\"id\",{}]]}"), 0);
	CHECK_INT(check("{\"op\":\"transact\",\"tx-steps\":[[\"add-triple\",\"e\",\"a\",\"v\"]]}"), 0);
	CHECK_INT(check("{\"op\":\"transact\",\"ops\":[[]],\"tx-steps\":[[]]}"), -EINVAL);

	/* outbox */
	CHECK_INT(check("{\"op\":\"list-mutations\"}"), 0);
	CHECK_INT(check("{\"op\":\"retry-mutation\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"retry-mutation\",\"mutation-id\":\"m\"}"), 0);
	CHECK_INT(check("{\"op\":\"discard-mutation\",\"mutation-id\":3}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"discard-mutation\",\"mutation-id\":\"m\"}"), 0);

	/* rooms */
	CHECK_INT(check("{\"op\":\"join-room\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"join-room\",\"room-id\":\"r\"}"), 0);
	CHECK_INT(check("{\"op\":\"join-room\",\"room-id\":\"r\",\"room-type\":\"chat\",\"data\":{}}"), 0);
	CHECK_INT(check("{\"op\":\"join-room\",\"room-id\":\"r\",\"data\":[]}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"leave-room\",\"room-id\":\"r\"}"), 0);
	CHECK_INT(check("{\"op\":\"leave-room\",\"room-id\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"set-presence\",\"room-id\":\"r\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"set-presence\",\"room-id\":\"r\",\"data\":{\"x\":1}}"), 0);
	CHECK_INT(check("{\"op\":\"client-broadcast\",\"room-id\":\"r\",\"topic\":\"t\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"client-broadcast\",\"room-id\":\"r\",\"topic\":\"t\",\"data\":null}"), 0);
	CHECK_INT(check("{\"op\":\"client-broadcast\",\"room-id\":\"r\",\"data\":{}}"), -EINVAL);

	/* status */
	CHECK_INT(check("{\"op\":\"watch-status\"}"), 0);
	CHECK_INT(check("{\"op\":\"watch-status\",\"enabled\":false}"), 0);
	CHECK_INT(check("{\"op\":\"watch-status\",\"enabled\":\"yes\"}"), -EINVAL);

	/* signing in */
	CHECK_INT(check("{\"op\":\"send-magic-code\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"send-magic-code\",\"email\":\"a@b.c\"}"), 0);
	CHECK_INT(check("{\"op\":\"sign-in\",\"method\":\"guest\"}"), 0);
	CHECK_INT(check("{\"op\":\"sign-in\",\"method\":\"magic-code\",\"email\":\"a@b.c\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"sign-in\",\"method\":\"magic-code\",\"email\":\"a@b.c\",\"code\":\"123\"}"), 0);
	CHECK_INT(check("{\"op\":\"sign-in\",\"method\":\"token\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"sign-in\",\"method\":\"token\",\"refresh-token\":\"t\"}"), 0);
	CHECK_INT(check("{\"op\":\"sign-in\",\"method\":\"password\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"sign-out\"}"), 0);
	CHECK_INT(check("{\"op\":\"whoami\"}"), 0);

	/* Managing stored profiles. */
	CHECK_INT(check("{\"op\":\"list-profiles\"}"), 0);
	CHECK_INT(check("{\"op\":\"forget-profile\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"forget-profile\",\"profile\":\"\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"forget-profile\",\"profile\":\"notes\"}"), 0);
	CHECK_INT(check("{\"op\":\"forget-profile\",\"profile\":\"notes\",\"discard-queued\":1}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"forget-profile\",\"profile\":\"notes\",\"discard-queued\":true}"), 0);
	CHECK_INT(check("{\"op\":\"export-cache\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"export-cache\",\"profile\":\"notes\"}"), 0);
	CHECK_INT(check("{\"op\":\"clear-cache\",\"profile\":7}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"clear-cache\",\"profile\":\"notes\"}"), 0);
	CHECK_INT(check("{\"op\":\"list-mutations\",\"attr-names\":true}"), 0);
	CHECK_INT(check("{\"op\":\"list-mutations\",\"attr-names\":\"yes\"}"), -EINVAL);
	/* set-log-level: one of the five level names */
	CHECK_INT(check("{\"op\":\"set-log-level\",\"level\":\"debug\"}"), 0);
	CHECK_INT(check("{\"op\":\"set-log-level\",\"level\":\"warning\"}"), 0);
	CHECK_INT(check("{\"op\":\"set-log-level\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"set-log-level\",\"level\":\"loud\"}"), -EINVAL);
	CHECK_INT(check("{\"op\":\"set-log-level\",\"level\":7}"), -EINVAL);
	return tap_done();
}
