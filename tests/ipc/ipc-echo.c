/* ipc-echo: a tiny daemon stand-in for the IPC tests. It serves the real
 * ipc-server inside an lws loop and answers every request with a plausible
 * canned reply, so the framing, limits, libinstantd and instantctl can be
 * tested without the sync core.
 *
 * usage: ipc-echo SOCKET [--max-message N] [--max-depth N] [--max-output N]
 *                        [--max-conns N] [--chmod OCTAL] [--nofile N]
 * Extra request fields understood on any op:
 *   "flood": N, "pad": "..."  — also send N status messages carrying pad (a
 *                               status then says how much of them was left
 *                               queued, "flood-queued");
 *   "shutdown": true          — stop the loop and exit 0 (after replying). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libwebsockets.h>

#include "ipc/ipc-protocol.h"
#include "ipc/ipc-server.h"

static volatile sig_atomic_t echo_stop;
static struct lws_context *echo_ctx;
static struct ipc_server *echo_server;
static int echo_opened, echo_closed;
static size_t echo_flood_queued;	/* bytes the last flood left queued (not taken by the kernel) */

static void
echo_on_signal(int sig)
{
	echo_stop = 1;
	if (echo_ctx != NULL)
		lws_cancel_service(echo_ctx);
}

static cJSON *
echo_reply(const cJSON *req, const char *op)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "client-event-id");
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "op", op);
	if (cJSON_IsString(id))
		cJSON_AddStringToObject(m, "client-event-id", id->valuestring);
	return m;
}

static void
echo_send(struct ipc_conn *c, cJSON *m)
{
	(void)ipc_conn_send(c, m);
	cJSON_Delete(m);
}

static void
echo_copy(cJSON *m, const cJSON *req, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);

	if (v != NULL)
		cJSON_AddItemToObject(m, key, cJSON_Duplicate(v, 1));
}

static cJSON *
echo_status(const cJSON *req)
{
	cJSON *m = echo_reply(req, IPC_REPLY_STATUS);

	cJSON_AddStringToObject(m, "connection", "offline");
	cJSON_AddNumberToObject(m, "conns", (double)ipc_server_conn_count(echo_server));
	cJSON_AddNumberToObject(m, "opened", echo_opened);
	cJSON_AddNumberToObject(m, "closed", echo_closed);
	cJSON_AddNumberToObject(m, "flood-queued", (double)echo_flood_queued);
	cJSON_AddNumberToObject(m, "pending-mutations", 0);
	cJSON_AddNumberToObject(m, "failed-mutations", 0);
	{
		/* A profile's status as the daemon reports it, for instantctl's words. */
		cJSON *st = cJSON_AddObjectToObject(m, "status"), *q;

		cJSON_AddStringToObject(st, "profile", "echo");
		cJSON_AddStringToObject(st, "app-id", "app-1");
		cJSON_AddStringToObject(st, "server", "ws://echo.invalid/runtime/session");
		cJSON_AddStringToObject(st, "state", "backoff");
		cJSON_AddNumberToObject(st, "state-since", (double)time(NULL) * 1000 - 180000);
		cJSON_AddNullToObject(st, "user");
		q = cJSON_AddObjectToObject(st, "queue");
		cJSON_AddNumberToObject(q, "pending", 1500);
		cJSON_AddNumberToObject(q, "sent", 300);
		cJSON_AddNumberToObject(q, "confirmed", 0);
		cJSON_AddNumberToObject(q, "failed", 1);
		q = cJSON_AddObjectToObject(st, "replay");
		cJSON_AddNumberToObject(q, "done", 300);
		cJSON_AddNumberToObject(q, "total", 1200);
		cJSON_AddNullToObject(st, "last-sync");
	}
	return m;
}

static void
echo_on_open(void *ud, struct ipc_conn *c)
{
	echo_opened++;
}

static void
echo_on_close(void *ud, struct ipc_conn *c)
{
	echo_closed++;
}

static void
echo_on_request(void *ud, struct ipc_conn *c, const cJSON *req)
{
	const char *opname = cJSON_GetObjectItemCaseSensitive(req, "op")->valuestring;
	const cJSON *flood = cJSON_GetObjectItemCaseSensitive(req, "flood");
	const cJSON *pad = cJSON_GetObjectItemCaseSensitive(req, "pad");
	const cJSON *mid = cJSON_GetObjectItemCaseSensitive(req, "mutation-id");
	cJSON *m, *data;

	switch (ipc_op_from_string(opname)) {
	case IPC_OP_INIT:
		m = echo_reply(req, IPC_REPLY_INIT_OK);
		cJSON_AddNumberToObject(m, "protocol-version", IPC_PROTOCOL_VERSION);
		echo_copy(m, req, "app-id");
		echo_copy(m, req, "api-uri");
		echo_copy(m, req, "profile");
		echo_copy(m, req, "server");
		echo_copy(m, req, "client-name");
		cJSON_AddStringToObject(m, "connection", "offline");
		echo_send(c, m);
		break;
	case IPC_OP_ADD_QUERY:
	case IPC_OP_QUERY_ONCE:
		m = echo_reply(req, ipc_op_from_string(opname) == IPC_OP_ADD_QUERY ?
		    IPC_REPLY_ADD_QUERY_OK : IPC_REPLY_QUERY_OK);
		echo_copy(m, req, "q");
		data = cJSON_AddObjectToObject(m, "data");
		cJSON_AddItemToObject(data, "echo", cJSON_Duplicate(req, 1));
		cJSON_AddBoolToObject(m, "from-cache", 1);
		cJSON_AddBoolToObject(m, "has-pending-writes", 0);
		cJSON_AddBoolToObject(m, "partial", 1);
		echo_send(c, m);
		if (ipc_op_from_string(opname) == IPC_OP_ADD_QUERY) {
			m = echo_reply(req, IPC_REPLY_REFRESH_OK);
			echo_copy(m, req, "q");
			data = cJSON_AddObjectToObject(m, "data");
			cJSON_AddNumberToObject(data, "refresh", 1);
			cJSON_AddBoolToObject(m, "from-cache", 0);
			cJSON_AddBoolToObject(m, "has-pending-writes", 0);
			cJSON_AddBoolToObject(m, "partial", 0);
			echo_send(c, m);
		}
		break;
	case IPC_OP_REMOVE_QUERY:
		echo_send(c, echo_reply(req, IPC_REPLY_REMOVE_QUERY_OK));
		break;
	case IPC_OP_TRANSACT:
		m = echo_reply(req, IPC_REPLY_TRANSACT_QUEUED);
		cJSON_AddStringToObject(m, "mutation-id", "m-1");
		echo_send(c, m);
		m = echo_reply(req, IPC_REPLY_TRANSACT_OK);
		cJSON_AddStringToObject(m, "mutation-id", "m-1");
		cJSON_AddNumberToObject(m, "tx-id", 42);
		echo_send(c, m);
		break;
	case IPC_OP_LIST_MUTATIONS:
		m = echo_reply(req, IPC_REPLY_MUTATIONS);
		data = cJSON_AddArrayToObject(m, "mutations");
		data = cJSON_AddItemToArray(data, cJSON_CreateObject()) ? data->child : NULL;
		if (data != NULL) {
			cJSON_AddStringToObject(data, "mutation-id", "m-1");
			cJSON_AddStringToObject(data, "state", "failed");
			cJSON_AddStringToObject(data, "error", "permission-denied");
			cJSON_AddNumberToObject(data, "created", (double)time(NULL) * 1000 - 120000);
			cJSON_AddItemToObject(data, "ops", cJSON_Parse("[[\"update\",\"goals\",\"g-1\","
			    "{\"title\":\"x\",\"done\":true}],[\"link\",\"goals\",\"g-1\",{\"todos\":\"t-1\"}]]"));
		}
		echo_send(c, m);
		break;
	case IPC_OP_RETRY_MUTATION:
	case IPC_OP_DISCARD_MUTATION:
		if (strcmp(mid->valuestring, "missing") == 0) {
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "client-event-id");

			(void)ipc_conn_send_error(c, cJSON_IsString(id) ? id->valuestring : NULL,
			    IPC_ERR_NOT_FOUND, "no such mutation");
			break;
		}
		m = echo_reply(req, ipc_op_from_string(opname) == IPC_OP_RETRY_MUTATION ?
		    IPC_REPLY_RETRY_MUTATION_OK : IPC_REPLY_DISCARD_MUTATION_OK);
		echo_copy(m, req, "mutation-id");
		echo_send(c, m);
		break;
	case IPC_OP_JOIN_ROOM:
	case IPC_OP_SET_PRESENCE:
		m = echo_reply(req, ipc_op_from_string(opname) == IPC_OP_JOIN_ROOM ?
		    IPC_REPLY_JOIN_ROOM_OK : IPC_REPLY_SET_PRESENCE_OK);
		echo_copy(m, req, "room-id");
		echo_send(c, m);
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "op", IPC_REPLY_REFRESH_PRESENCE);
		echo_copy(m, req, "room-id");
		data = cJSON_AddObjectToObject(m, "peers");
		data = cJSON_AddObjectToObject(data, "peer-1");
		cJSON_AddBoolToObject(data, "self", 1);
		echo_send(c, m);
		break;
	case IPC_OP_LEAVE_ROOM:
		m = echo_reply(req, IPC_REPLY_LEAVE_ROOM_OK);
		echo_copy(m, req, "room-id");
		echo_send(c, m);
		break;
	case IPC_OP_CLIENT_BROADCAST:
		echo_send(c, echo_reply(req, IPC_REPLY_CLIENT_BROADCAST_OK));
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "op", IPC_REPLY_SERVER_BROADCAST);
		echo_copy(m, req, "room-id");
		echo_copy(m, req, "topic");
		echo_copy(m, req, "data");
		echo_send(c, m);
		break;
	case IPC_OP_SEND_MAGIC_CODE:
		m = echo_reply(req, IPC_REPLY_SEND_MAGIC_CODE_OK);
		cJSON_AddBoolToObject(m, "sent", 1);
		echo_send(c, m);
		break;
	case IPC_OP_SIGN_IN:
	case IPC_OP_WHOAMI:
		if (cJSON_GetObjectItemCaseSensitive(req, "code") != NULL &&
		    strcmp(cJSON_GetObjectItemCaseSensitive(req, "code")->valuestring, "000000") == 0) {
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "client-event-id");

			(void)ipc_conn_send_error(c, cJSON_IsString(id) ? id->valuestring : NULL,
			    IPC_ERR_AUTH_FAILED, "the code is wrong");
			break;
		}
		m = echo_reply(req, ipc_op_from_string(opname) == IPC_OP_SIGN_IN ?
		    IPC_REPLY_SIGN_IN_OK : IPC_REPLY_WHOAMI);
		data = cJSON_AddObjectToObject(m, "user");
		cJSON_AddStringToObject(data, "id", "u-1");
		echo_copy(data, req, "email");
		echo_send(c, m);
		break;
	case IPC_OP_SIGN_OUT:
		m = echo_reply(req, IPC_REPLY_SIGN_OUT_OK);
		cJSON_AddBoolToObject(m, "server-signed-out", 1);
		echo_send(c, m);
		break;
	case IPC_OP_STATUS:
	case IPC_OP_WATCH_STATUS:
	default:
		echo_send(c, echo_status(req));
		break;
	}

	if (cJSON_IsNumber(flood)) {
		int n = (int)flood->valuedouble;

		for (int i = 0; i < n; i++) {
			m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "op", IPC_REPLY_STATUS);
			cJSON_AddNumberToObject(m, "seq", i);
			if (cJSON_IsString(pad))
				cJSON_AddStringToObject(m, "pad", pad->valuestring);
			if (ipc_conn_send(c, m) < 0) {
				cJSON_Delete(m);
				break;	/* closed for passing max_output */
			}
			cJSON_Delete(m);
		}
		echo_flood_queued = ipc_conn_queued(c);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "shutdown"))) {
		echo_stop = 1;
		lws_cancel_service(echo_ctx);
	}
}

static const struct ipc_callbacks echo_callbacks = {
	.on_open = echo_on_open,
	.on_request = echo_on_request,
	.on_close = echo_on_close,
};

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct lws_protocols protos[3];
	struct ipc_limits lim = { 0 };
	struct lws_vhost *vh;
	const char *path, *chmod_mode = NULL;
	int fd, r;

	if (argc < 2) {
		fprintf(stderr, "usage: ipc-echo SOCKET [--max-message N] ...\n");
		return 2;
	}
	path = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		unsigned long long v = strtoull(argv[i + 1], NULL, 0);

		if (strcmp(argv[i], "--max-message") == 0)
			lim.max_message = v;
		else if (strcmp(argv[i], "--max-depth") == 0)
			lim.max_depth = (int)v;
		else if (strcmp(argv[i], "--max-output") == 0)
			lim.max_output = v;
		else if (strcmp(argv[i], "--max-conns") == 0)
			lim.max_conns = v;
		else if (strcmp(argv[i], "--chmod") == 0)
			chmod_mode = argv[i + 1];
		else if (strcmp(argv[i], "--nofile") == 0) {
			/* A tiny fd limit (soft = hard) to drive accept into EMFILE. */
			struct rlimit rl = { .rlim_cur = v, .rlim_max = v };

			if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
				perror("ipc-echo: setrlimit");
				return 1;
			}
		}
		else {
			fprintf(stderr, "ipc-echo: unknown option %s\n", argv[i]);
			return 2;
		}
	}

	signal(SIGTERM, echo_on_signal);
	signal(SIGINT, echo_on_signal);
	(void)ipc_raise_nofile_limit();
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	r = ipc_server_open_socket(path, &fd);
	if (r < 0) {
		fprintf(stderr, "ipc-echo: %s: %s\n", path, strerror(-r));
		return 1;
	}
	if (chmod_mode != NULL) {
		/* Loosen the modes to prove SO_PEERCRED alone keeps others out. */
		char *dir = strdup(path), *slash = strrchr(dir, '/');

		if (slash != NULL && slash != dir) {
			*slash = '\0';
			chmod(dir, 0777);
		}
		free(dir);
		chmod(path, (mode_t)strtoul(chmod_mode, NULL, 8));
	}

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	echo_ctx = lws_create_context(&info);
	if (echo_ctx == NULL) {
		fprintf(stderr, "ipc-echo: lws_create_context failed\n");
		return 1;
	}
	memset(protos, 0, sizeof(protos));
	protos[0] = ipc_server_protocols[0];
	protos[1] = ipc_server_protocols[1];
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.vhost_name = "net";
	info.protocols = protos;
	vh = lws_create_vhost(echo_ctx, &info);
	if (vh == NULL) {
		fprintf(stderr, "ipc-echo: lws_create_vhost failed\n");
		return 1;
	}
	r = ipc_server_new(vh, fd, &lim, &echo_callbacks, NULL, &echo_server);
	if (r < 0) {
		fprintf(stderr, "ipc-echo: ipc_server_new: %s\n", strerror(-r));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	while (!echo_stop)
		if (lws_service(echo_ctx, 0) < 0)
			break;

	ipc_server_free(echo_server);
	if (fcntl(fd, F_GETFD) >= 0) {
		fprintf(stderr, "ipc-echo: the listener fd is still open after ipc_server_free\n");
		return 3;
	}
	lws_context_destroy(echo_ctx);
	unlink(path);
	return 0;
}
