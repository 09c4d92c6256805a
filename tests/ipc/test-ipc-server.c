/* Tests of ipc/ipc-server.c through the ipc-echo stand-in: framing, every
 * bound, slow readers, many connections, peer credentials, socket modes. */
#include "config.h"

#include <grp.h>
#include <sys/resource.h>

#include "tests/tap.h"
#include "tests/ipc/ipc-test.h"

/* Send one line and read one reply. */
static cJSON *
roundtrip(int fd, struct it_reader *r, const char *line)
{
	if (it_send_str(fd, line) < 0)
		return NULL;
	return it_read_json(r);
}

/* A fresh connection answers status: the server is alive and not blocked. */
static bool
alive(const char *path)
{
	struct it_reader r;
	cJSON *j;
	bool ok;
	int fd = it_connect(path);

	if (fd < 0)
		return false;
	it_reader_init(&r, fd);
	j = roundtrip(fd, &r, "{\"op\":\"status\",\"client-event-id\":\"alive\"}\n");
	ok = j != NULL && it_str(j, "client-event-id") != NULL &&
	    strcmp(it_str(j, "client-event-id"), "alive") == 0;
	cJSON_Delete(j);
	it_reader_free(&r);
	close(fd);
	return ok;
}

/* Send `line` (may be huge, may be cut short by the server closing), then
 * expect an error of `type` and a closed connection. */
static void
expect_fatal(const char *path, const char *line, size_t len, const char *type)
{
	struct it_reader r;
	cJSON *j;
	int fd = it_connect(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	it_reader_init(&r, fd);
	/* The server stops reading after the error, so our write may fail. */
	(void)it_write_all(fd, line, len);
	j = it_read_json(&r);
	CHECK(j != NULL);
	CHECK_STR(it_str(j, "op"), "error");
	CHECK_STR(it_str(j, "type"), type);
	CHECK(it_str(j, "message") != NULL);
	cJSON_Delete(j);
	CHECK(it_wait_closed(&r));
	it_reader_free(&r);
	close(fd);
}

static void
expect_error_stays(int fd, struct it_reader *r, const char *line, const char *type,
    const char *id)
{
	cJSON *j = roundtrip(fd, r, line);

	CHECK(j != NULL);
	CHECK_STR(it_str(j, "op"), "error");
	CHECK_STR(it_str(j, "type"), type);
	if (id != NULL)
		CHECK_STR(it_str(j, "client-event-id"), id);
	else
		CHECK(it_str(j, "client-event-id") == NULL);
	cJSON_Delete(j);
}

static void
test_modes(const struct it_echo *e)
{
	struct stat st;
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/instantd", e->dir);
	CHECK(stat(dir, &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0700);
	CHECK(stat(e->path, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_INT(st.st_mode & 07777, 0600);
}

static void
test_framing(const struct it_echo *e)
{
	struct it_reader r;
	cJSON *j;
	int fd = it_connect(e->path);

	CHECK(fd >= 0);
	it_reader_init(&r, fd);
	/* Two requests in one write. */
	CHECK(it_send_str(fd, "{\"op\":\"status\",\"client-event-id\":\"a\"}\n"
	    "{\"op\":\"status\",\"client-event-id\":\"b\"}\n") == 0);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "client-event-id"), "a");
	cJSON_Delete(j);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "client-event-id"), "b");
	cJSON_Delete(j);

	/* One request split across writes (byte by byte for part of it). */
	{
		const char *req = "{\"op\":\"status\",\"client-event-id\":\"split\"}\n";
		size_t n = strlen(req);

		for (size_t i = 0; i < 20; i++) {
			CHECK(it_write_all(fd, req + i, 1) == 0);
			usleep(1000);
		}
		CHECK(it_write_all(fd, req + 20, n - 20) == 0);
		j = it_read_json(&r);
		CHECK_STR(it_str(j, "client-event-id"), "split");
		cJSON_Delete(j);
	}

	/* A request's tail together with the next request's head; CRLF and blank lines. */
	CHECK(it_send_str(fd, "{\"op\":\"status\",\"client-event-id\":\"c\"}\r\n\n   \n{\"op\":") == 0);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "client-event-id"), "c");
	cJSON_Delete(j);
	CHECK(it_send_str(fd, "\"status\",\"client-event-id\":\"d\"}\n") == 0);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "client-event-id"), "d");
	cJSON_Delete(j);

	/* Replies keep request order across ops with several replies. */
	CHECK(it_send_str(fd, "{\"op\":\"transact\",\"client-event-id\":\"t\",\"ops\":[[\"update\",\"x\",\"1\",{}]]}\n"
	    "{\"op\":\"status\",\"client-event-id\":\"s\"}\n") == 0);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "op"), "transact-queued");
	cJSON_Delete(j);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "op"), "transact-ok");
	cJSON_Delete(j);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "client-event-id"), "s");
	cJSON_Delete(j);

	/* A large but allowed request (1 MiB string) spread over many writes. */
	{
		size_t n = 1 << 20;
		char *big = malloc(n + 64);
		int k = sprintf(big, "{\"op\":\"status\",\"client-event-id\":\"big\",\"x\":\"");

		memset(big + k, 'a', n);
		strcpy(big + k + n, "\"}\n");
		CHECK(it_send_str(fd, big) == 0);
		free(big);
		j = it_read_json(&r);
		CHECK_STR(it_str(j, "client-event-id"), "big");
		cJSON_Delete(j);
	}
	it_reader_free(&r);
	close(fd);
}

static void
test_errors(const struct it_echo *e)
{
	struct it_reader r;
	char *buf;
	size_t n;
	int fd = it_connect(e->path);

	/* Non-fatal: the connection stays. */
	it_reader_init(&r, fd);
	expect_error_stays(fd, &r, "{\"op\":\"frobnicate\",\"client-event-id\":\"u1\"}\n",
	    "invalid-op", "u1");
	expect_error_stays(fd, &r, "[1,2]\n", "invalid-op", NULL);
	expect_error_stays(fd, &r, "\"status\"\n", "invalid-op", NULL);
	expect_error_stays(fd, &r, "{}\n", "invalid-op", NULL);
	expect_error_stays(fd, &r, "{\"op\":7}\n", "invalid-op", NULL);
	expect_error_stays(fd, &r, "{\"op\":\"add-query\",\"client-event-id\":\"q1\"}\n",
	    "invalid-request", "q1");
	expect_error_stays(fd, &r, "{\"op\":\"query-once\",\"q\":{},\"policy\":\"sometimes\"}\n",
	    "invalid-request", NULL);
	expect_error_stays(fd, &r, "{\"op\":\"status\",\"client-event-id\":5}\n",
	    "invalid-request", NULL);
	/* 64 levels is the default bound: allowed (then not an object). */
	n = 64;
	buf = malloc(2 * n + 2);
	memset(buf, '[', n);
	memset(buf + n, ']', n);
	strcpy(buf + 2 * n, "\n");
	expect_error_stays(fd, &r, buf, "invalid-op", NULL);
	free(buf);
	CHECK(alive(e->path));
	{
		cJSON *j = roundtrip(fd, &r, "{\"op\":\"status\",\"client-event-id\":\"still\"}\n");

		CHECK_STR(it_str(j, "client-event-id"), "still");
		cJSON_Delete(j);
	}
	it_reader_free(&r);
	close(fd);

	/* Fatal: error, then the connection is closed. */
	expect_fatal(e->path, "{nope\n", 6, "invalid-json");
	expect_fatal(e->path, "{\"op\":\"status\",\"x\":\"a\0b\"}\n", 26, "invalid-json");
	expect_fatal(e->path, "{\"op\":\"status\"} trailing\n", 25, "invalid-json");
	expect_fatal(e->path, "{\"op\":\"status\",\"x\":\"\xff\"}\n", 24, "invalid-utf8");
	expect_fatal(e->path, "{\"op\":\"status\",\"x\":\"\xc0\xaf\"}\n", 25, "invalid-utf8");
	expect_fatal(e->path, "{\"op\":\"status\",\"x\":\"\xed\xa0\x80\"}\n", 26, "invalid-utf8");

	/* 65 levels, and 100,000 levels. */
	n = 65;
	buf = malloc(2 * n + 2);
	memset(buf, '[', n);
	memset(buf + n, ']', n);
	strcpy(buf + 2 * n, "\n");
	expect_fatal(e->path, buf, 2 * n + 1, "too-deep");
	free(buf);
	n = 100000;
	buf = malloc(n + 2);
	memset(buf, '{', n);
	for (size_t i = 0; i < n; i += 2)
		memcpy(buf + i, "[{", 2);
	buf[n] = '\n';
	expect_fatal(e->path, buf, n + 1, "too-deep");
	free(buf);
	/* Brackets inside strings do not count. */
	{
		struct it_reader r2;
		cJSON *j;
		size_t k;
		int fd2 = it_connect(e->path);

		n = 1000;
		buf = malloc(n + 100);
		strcpy(buf, "{\"op\":\"status\",\"client-event-id\":\"str\",\"x\":\"");
		k = strlen(buf);
		memset(buf + k, '[', n);
		strcpy(buf + k + n, "\\\"[{\"}\n");
		it_reader_init(&r2, fd2);
		j = roundtrip(fd2, &r2, buf);
		CHECK_STR(it_str(j, "client-event-id"), "str");
		cJSON_Delete(j);
		free(buf);
		it_reader_free(&r2);
		close(fd2);
	}

	/* A 100 MB line against the default 16 MiB bound. */
	n = (size_t)100 << 20;
	buf = malloc(n + 1);
	memset(buf, ' ', n);
	memcpy(buf, "{\"op\":\"status\",\"x\":\"", 20);
	memset(buf + 20, 'x', n - 20);
	buf[n] = '\n';
	expect_fatal(e->path, buf, n + 1, "too-large");
	free(buf);
	CHECK(alive(e->path));
}

static void
test_hostile(const struct it_echo *e)
{
	unsigned char *buf;
	size_t n = 1 << 20;
	int fd;

	/* Random bytes. */
	buf = malloc(n);
	srandom(1234);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)random();
	fd = it_connect(e->path);
	(void)it_write_all(fd, buf, n);
	close(fd);
	free(buf);
	CHECK(alive(e->path));

	/* Half-closed: a partial line, then no more writes. */
	fd = it_connect(e->path);
	CHECK(it_send_str(fd, "{\"op\":\"sta") == 0);
	shutdown(fd, SHUT_WR);
	CHECK(alive(e->path));
	close(fd);

	/* Connect and vanish, many times, some mid-request. */
	for (int i = 0; i < 200; i++) {
		fd = it_connect(e->path);
		if (i % 2)
			(void)it_send_str(fd, "{\"op\":\"status\",\"flood\":100,\"pad\":\"xxxxxxxxxxxx\"}\n");
		close(fd);
	}
	CHECK(alive(e->path));
}

static void
test_protocol_is_used(const struct it_echo *e)
{
	struct it_reader r;
	cJSON *j;
	int fd = it_connect(e->path);

	it_reader_init(&r, fd);
	j = roundtrip(fd, &r, "{\"op\":\"init\",\"client-event-id\":\"i\",\"app-id\":\"app\"}\n");
	CHECK_STR(it_str(j, "op"), "init-ok");
	CHECK_INT(it_num(j, "protocol-version"), 1);
	cJSON_Delete(j);
	it_reader_free(&r);
	close(fd);
}

static int
status_num(const char *path, const char *key)
{
	struct it_reader r;
	cJSON *j;
	int v, fd = it_connect(path);

	if (fd < 0)
		return -1;
	it_reader_init(&r, fd);
	j = roundtrip(fd, &r, "{\"op\":\"status\"}\n");
	v = (int)it_num(j, key);
	cJSON_Delete(j);
	it_reader_free(&r);
	close(fd);
	return v;
}

static void
test_slow_reader(void)
{
	const char *opts[] = { "--max-output", "1048576", NULL };
	struct it_echo e;
	struct it_reader ra, rb;
	char req[4200];
	int a, b, i;
	bool a_closed = false;
	size_t got = 0;
	char *line;

	CHECK(it_echo_start(&e, opts) == 0);
	a = it_connect(e.path);
	b = it_connect(e.path);
	it_reader_init(&ra, a);
	it_reader_init(&rb, b);
	strcpy(req, "{\"op\":\"status\",\"flood\":50,\"pad\":\"");
	memset(req + strlen(req), 'p', 4000);
	req[34 + 4000] = '\0';
	strcat(req, "\"}\n");

	/* A asks for 200 KB at a time and never reads; B keeps talking. */
	for (i = 0; i < 400 && !a_closed; i++) {
		cJSON *j;

		if (it_send_str(a, req) < 0)
			a_closed = true;
		j = roundtrip(b, &rb, "{\"op\":\"status\",\"client-event-id\":\"b\"}\n");
		CHECK(j != NULL);
		if (j == NULL)
			break;
		CHECK_STR(it_str(j, "client-event-id"), "b");
		/* Only B left: A was disconnected (a probe may still be counted). */
		if (it_num(j, "conns") == 1)
			a_closed = true;
		cJSON_Delete(j);
		/* B does not need what the flood appended to its own replies. */
	}
	CHECK(a_closed);
	/* A finds the end of its stream after what was already delivered. */
	while ((line = it_read_line(&ra, IT_TIMEOUT_MS)) != NULL) {
		got += strlen(line) + 1;
		free(line);
	}
	CHECK(ra.eof);
	CHECK(got < (size_t)i * 50 * 4050);
	CHECK(alive(e.path));
	it_reader_free(&ra);
	it_reader_free(&rb);
	close(a);
	close(b);
	CHECK_INT(it_echo_stop(&e), 0);
}

/* A reply goes to the kernel at once while nothing is queued for its
 * reader, and to the queue once the kernel refuses. A flood several times
 * the socket buffer, unread until the echo says most of it is queued (so
 * the kernel took part of one message and the rest waited), then read,
 * arrives whole and in order, followed by the answer to a later request. */
static void
test_order_past_kernel_buffer(void)
{
	/* Messages larger than half a socket buffer: the kernel takes them in
	 * pieces, so one is cut where it stops taking them. */
	enum { N = 60, PAD = 150000 };
	const char *opts[] = { "--max-output", "67108864", "--max-message", "1048576", NULL };
	struct it_echo e;
	static char req[PAD + 200];
	struct it_reader r, rb;
	int fd, fb, seq = 0;
	bool intact = true, after = false;
	double queued = 0;
	char *line;
	size_t pre;

	CHECK(it_echo_start(&e, opts) == 0);
	fd = it_connect(e.path);
	fb = it_connect(e.path);
	CHECK(fd >= 0 && fb >= 0);
	it_reader_init(&r, fd);
	it_reader_init(&rb, fb);
	pre = (size_t)snprintf(req, sizeof(req), "{\"op\":\"status\",\"flood\":%d,\"pad\":\"", N);
	memset(req + pre, 'q', PAD);
	strcpy(req + pre + PAD, "\"}\n");
	CHECK(it_send_str(fd, req) == 0);
	for (int i = 0; i < 500 && queued == 0; i++) {
		cJSON *j = roundtrip(fb, &rb, "{\"op\":\"status\"}\n");

		queued = j ? it_num(j, "flood-queued") : -1;
		cJSON_Delete(j);
	}
	CHECK(queued > (double)N * PAD / 2);
	CHECK(it_send_str(fd, "{\"op\":\"status\",\"client-event-id\":\"after\"}\n") == 0);
	while (!after && (line = it_read_line(&r, IT_TIMEOUT_MS)) != NULL) {
		cJSON *j = cJSON_Parse(line);
		const cJSON *n = j ? cJSON_GetObjectItemCaseSensitive(j, "seq") : NULL;
		const char *pad = j ? it_str(j, "pad") : NULL;

		free(line);
		if (j == NULL)
			intact = false;
		else if (cJSON_IsNumber(n)) {
			if ((int)n->valuedouble != seq++ || pad == NULL || strlen(pad) != PAD)
				intact = false;
		} else if (it_str(j, "client-event-id") != NULL)
			after = true;
		cJSON_Delete(j);
	}
	CHECK_INT(seq, N);
	CHECK(after);
	CHECK(intact);
	it_reader_free(&r);
	it_reader_free(&rb);
	close(fd);
	close(fb);
	CHECK_INT(it_echo_stop(&e), 0);
}

static void
test_many(const struct it_echo *e)
{
	enum { N = 1000 };
	static int fds[N];
	int ok = 0;

	for (int i = 0; i < N; i++) {
		char req[80];

		fds[i] = it_connect(e->path);
		if (fds[i] < 0)
			continue;
		snprintf(req, sizeof(req), "{\"op\":\"status\",\"client-event-id\":\"m%d\"}\n", i);
		(void)it_send_str(fds[i], req);
	}
	for (int i = 0; i < N; i++) {
		struct it_reader r;
		cJSON *j;
		char id[16];

		if (fds[i] < 0)
			continue;
		it_reader_init(&r, fds[i]);
		j = it_read_json(&r);
		snprintf(id, sizeof(id), "m%d", i);
		if (j != NULL && it_str(j, "client-event-id") != NULL &&
		    strcmp(it_str(j, "client-event-id"), id) == 0)
			ok++;
		cJSON_Delete(j);
		it_reader_free(&r);
	}
	CHECK_INT(ok, N);
	CHECK(status_num(e->path, "conns") >= N + 1);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void
test_max_conns(void)
{
	const char *opts[] = { "--max-conns", "3", NULL };
	struct it_echo e;
	struct it_reader r;
	int fds[3], fd, n = -1;
	cJSON *j;

	CHECK(it_echo_start(&e, opts) == 0);
	for (int i = 0; i < 3; i++)
		fds[i] = it_connect(e.path);
	CHECK(status_num(e.path, "conns") == -1);	/* the 4th is refused */
	fd = it_connect(e.path);
	it_reader_init(&r, fd);
	j = it_read_json(&r);
	CHECK_STR(it_str(j, "type"), "too-many-connections");
	cJSON_Delete(j);
	CHECK(it_wait_closed(&r));
	it_reader_free(&r);
	close(fd);
	close(fds[0]);
	/* The slot frees once the server has seen the close: a status request is
	 * served again, and counts fds[1], fds[2] and itself. */
	for (int i = 0; i < 1000 && n < 0; i++) {
		n = status_num(e.path, "conns");
		if (n < 0)
			usleep(10000);
	}
	CHECK_INT(n, 3);
	close(fds[1]);
	close(fds[2]);
	CHECK_INT(it_echo_stop(&e), 0);
}

/* Out of fds: accept pauses instead of spinning, and the connections that
 * waited in the backlog are served once fds are free again. */
static void
test_emfile(void)
{
	enum { N = 60 };
	const char *opts[] = { "--nofile", "40", NULL };
	struct it_echo e;
	int fds[N], served = 0;

	CHECK(it_echo_start(&e, opts) == 0);
	for (int i = 0; i < N; i++) {
		fds[i] = it_connect(e.path);	/* the backlog takes them all */
		CHECK(fds[i] >= 0);
		(void)it_send_str(fds[i], "{\"op\":\"status\",\"client-event-id\":\"e\"}\n");
	}
	/* Read in order; free each fd as soon as it was served, so the ones
	 * still in the backlog get their turn after the pause. */
	for (int i = 0; i < N; i++) {
		struct it_reader r;
		cJSON *j;

		it_reader_init(&r, fds[i]);
		j = it_read_json(&r);
		if (j != NULL && it_str(j, "client-event-id") != NULL)
			served++;
		cJSON_Delete(j);
		it_reader_free(&r);
		close(fds[i]);
	}
	CHECK_INT(served, N);
	CHECK(alive(e.path));
	CHECK_INT(it_echo_stop(&e), 0);
}

static void
test_peercred(void)
{
	const char *opts[] = { "--chmod", "0777", NULL };
	struct it_echo e;
	struct stat st;
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		fprintf(stderr, "# not root: SO_PEERCRED refusal test skipped\n");
		return;
	}
	CHECK(it_echo_start(&e, opts) == 0);
	CHECK(stat(e.path, &st) == 0);
	CHECK_INT(st.st_mode & 0777, 0777);
	pid = fork();
	if (pid == 0) {
		struct it_reader r;
		char *line;
		int fd;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		fd = it_connect(e.path);
		if (fd < 0)
			_exit(11);	/* the modes were loosened: connect must work */
		(void)it_send_str(fd, "{\"op\":\"status\"}\n{\"op\":\"init\",\"app-id\":\"x\"}\n");
		it_reader_init(&r, fd);
		line = it_read_line(&r, IT_TIMEOUT_MS);
		if (line != NULL)
			_exit(12);	/* got an answer: not refused */
		_exit(r.eof ? 0 : 13);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
	CHECK_INT(status_num(e.path, "opened"), 1);	/* only our own status probe */
	CHECK_INT(it_echo_stop(&e), 0);
}

static void
test_stale_and_busy(const struct it_echo *e)
{
	char exe[512];
	int st;
	pid_t pid;

	/* A second server on a live socket refuses to start. */
	snprintf(exe, sizeof(exe), "%s/tests/ipc-echo", it_builddir());
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 1);
		dup2(devnull, 2);
		execl(exe, exe, e->path, (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	CHECK(alive(e->path));
}

static void
test_shutdown_with_open_conns(void)
{
	struct it_echo e;
	struct it_reader r;
	int fds[5], st;

	CHECK(it_echo_start(&e, NULL) == 0);
	for (int i = 0; i < 5; i++) {
		fds[i] = it_connect(e.path);
		(void)it_send_str(fds[i], "{\"op\":\"sta");
	}
	it_reader_init(&r, fds[0]);
	/* ipc_server_free() does not flush, so the reply may or may not come. */
	CHECK(it_send_str(fds[0], "tus\",\"shutdown\":true}\n") == 0);
	CHECK(it_wait_closed(&r));
	it_reader_free(&r);
	CHECK(waitpid(e.pid, &st, 0) == e.pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	e.pid = -1;
	snprintf(e.path, sizeof(e.path), "%s/instantd", e.dir);
	rmdir(e.path);
	rmdir(e.dir);
}

int
main(void)
{
	struct it_echo e;

	signal(SIGPIPE, SIG_IGN);
	{
		/* 1,000 client fds in this process need more than a 1024 soft limit leaves. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	CHECK(it_echo_start(&e, NULL) == 0);
	test_modes(&e);
	test_framing(&e);
	test_protocol_is_used(&e);
	test_errors(&e);
	test_hostile(&e);
	test_many(&e);
	test_stale_and_busy(&e);
	CHECK(alive(e.path));
	CHECK_INT(it_echo_stop(&e), 0);

	test_slow_reader();
	test_order_past_kernel_buffer();
	test_max_conns();
	test_emfile();
	test_peercred();
	test_shutdown_with_open_conns();
	return tap_done();
}
