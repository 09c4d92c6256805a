/* fuzz-ipc-server.c: the real ipc-server (NDJSON line splitting, the UTF-8
 * and depth pre-checks, bounds, replies and closing) inside a real lws loop,
 * fed over a Unix socket. One connection per input; the first input byte
 * picks how the bytes are cut into writes and whether the client half-closes
 * or drops the socket; the rest is sent. Every line the server sends back
 * must be a JSON object with an "op", and the connection must end. Small
 * limits make every bound reachable. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <libwebsockets.h>

#include "ipc/ipc-protocol.h"
#include "ipc/ipc-server.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target_name[] = "ipc-server";

/* Limits small enough for a fuzzer to pass each of them. */
#define FZ_MAX_MESSAGE	4096
#define FZ_MAX_DEPTH	16
#define FZ_MAX_OUTPUT	(64 * 1024)
/* Service rounds before a connection that will not end counts as a hang. */
#define FZ_MAX_ROUNDS	200000

static struct lws_context *fz_ctx;
static struct ipc_server *fz_server;
static struct sockaddr_un fz_addr;
static char fz_dir[64];

/* Echo each request, and let some ops close the conn from inside the
 * callback, as the daemon may. */
static void
fz_on_request(void *ud, struct ipc_conn *c, const cJSON *req)
{
	const char *op = cJSON_GetObjectItemCaseSensitive(req, "op")->valuestring;

	switch (ipc_op_from_string(op)) {
	case IPC_OP_LEAVE_ROOM:
		ipc_conn_close(c);
		break;
	case IPC_OP_DISCARD_MUTATION:
		(void)ipc_conn_send_error(c, NULL, IPC_ERR_NOT_FOUND, "closing after this");
		ipc_conn_close_after_flush(c);
		break;
	default:
		(void)ipc_conn_send(c, req);
		break;
	}
}

static const struct ipc_callbacks fz_callbacks = {
	.on_request = fz_on_request,
};

static void
fz_cleanup(void)
{
	ipc_server_free(fz_server);
	fz_server = NULL;
	if (fz_ctx != NULL)
		lws_context_destroy(fz_ctx);
	fz_ctx = NULL;
	unlink(fz_addr.sun_path);
	rmdir(fz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct lws_context_creation_info info;
	static struct lws_protocols protos[3];
	struct ipc_limits lim = {
		.max_message = FZ_MAX_MESSAGE, .max_depth = FZ_MAX_DEPTH,
		.max_output = FZ_MAX_OUTPUT, .max_conns = 8,
	};
	struct lws_vhost *vh;
	int fd, r;

	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(0, NULL);
	snprintf(fz_dir, sizeof(fz_dir), "/tmp/instantd-fuzz-XXXXXX");
	if (mkdtemp(fz_dir) == NULL)
		fuzz_fail("mkdtemp: %s", strerror(errno));
	fz_addr.sun_family = AF_UNIX;
	snprintf(fz_addr.sun_path, sizeof(fz_addr.sun_path), "%s/socket", fz_dir);
	r = ipc_server_open_socket(fz_addr.sun_path, &fd);
	if (r < 0)
		fuzz_fail("ipc_server_open_socket: %s", strerror(-r));

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	fz_ctx = lws_create_context(&info);
	if (fz_ctx == NULL)
		fuzz_fail("lws_create_context failed");
	protos[0] = ipc_server_protocols[0];
	protos[1] = ipc_server_protocols[1];
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.vhost_name = "ipc";
	info.protocols = protos;
	vh = lws_create_vhost(fz_ctx, &info);
	if (vh == NULL)
		fuzz_fail("lws_create_vhost failed");
	r = ipc_server_new(vh, fd, &lim, &fz_callbacks, NULL, &fz_server);
	if (r < 0)
		fuzz_fail("ipc_server_new: %s", strerror(-r));
	atexit(fz_cleanup);
	return 0;
}

/* Check the complete lines in out[0..*len) and keep the unfinished one. */
static void
fz_check_lines(char *out, size_t *len)
{
	size_t start = 0;

	for (size_t i = 0; i < *len; i++) {
		cJSON *m;

		if (out[i] != '\n')
			continue;
		m = cJSON_ParseWithLength(out + start, i - start);
		if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "op")))
			fuzz_fail("the server sent a line that is not a message: %.*s",
			    (int)(i - start > 200 ? 200 : i - start), out + start);
		cJSON_Delete(m);
		start = i + 1;
	}
	memmove(out, out + start, *len - start);
	*len -= start;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[FZ_MAX_OUTPUT + 1024];
	size_t out_len = 0, sent = 0, got = 0, chunk;
	bool drop, wr_closed = false, eof = false;
	unsigned mode;
	int fd;

	if (size == 0)
		return 0;
	mode = data[0];
	data++;
	size--;
	/* Writes of 1..1024 bytes, or all at once. */
	chunk = (mode & 0x3f) ? (size_t)(mode & 0x3f) * (mode & 0x40 ? 16 : 1) : size;
	if (chunk == 0)
		chunk = 1;
	drop = (mode & 0x80) != 0;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fuzz_fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&fz_addr, sizeof(fz_addr)) < 0)
		fuzz_fail("connect: %s", strerror(errno));

	for (unsigned round = 0, idle = 0;; round++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		size_t sent_before = sent, got_before = got;
		bool eof_before = eof;

		if (round == FZ_MAX_ROUNDS)
			fuzz_fail("the connection did not end (%zu of %zu bytes sent, %zu conns)",
			    sent, size, ipc_server_conn_count(fz_server));
		if (!wr_closed && sent < size) {
			size_t k = size - sent < chunk ? size - sent : chunk;
			ssize_t n = send(fd, data + sent, k, MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				wr_closed = true;	/* the server closed on us */
		}
		if (!wr_closed && sent == size) {
			if (drop) {
				close(fd);
				fd = -1;
				eof = true;
			} else
				shutdown(fd, SHUT_WR);
			wr_closed = true;
		}
		lws_service(fz_ctx, -1);
		while (fd >= 0 && !eof && poll(&pfd, 1, 0) > 0) {
			ssize_t n = recv(fd, out + out_len, sizeof(out) - 1 - out_len, 0);

			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				eof = true;
				break;
			}
			if (n < 0)
				break;
			out_len += (size_t)n;
			got += (size_t)n;
			fz_check_lines(out, &out_len);
			if (out_len == sizeof(out) - 1)
				fuzz_fail("a reply line longer than max_output");
		}
		if (eof && ipc_server_conn_count(fz_server) == 0)
			break;
		/* Spin while bytes move; once nothing has moved for a while, the
		 * server is waiting on its own timers, so sleep a little. */
		if (sent != sent_before || got != got_before || eof != eof_before)
			idle = 0;
		else if (++idle > 100)
			(void)poll(&pfd, fd >= 0 && !eof ? 1 : 0, 1);
	}
	/* An unfinished last line is allowed: a close without flush (a reader
	 * past max_output, or the callback closing) drops queued output. */
	if (fd >= 0)
		close(fd);
	return 0;
}
