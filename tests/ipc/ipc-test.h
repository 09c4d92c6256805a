/* Helpers for the IPC tests: start ipc-echo on a private socket, connect,
 * and talk newline-delimited JSON with generous failure timeouts. */
#ifndef INSTANTD_TESTS_IPC_TEST_H
#define INSTANTD_TESTS_IPC_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

/* Only bounds how long a broken test hangs; nothing asserts timings. */
#define IT_TIMEOUT_MS 20000

struct it_echo {
	pid_t pid;
	char dir[256];		/* private temp dir */
	char path[300];		/* socket path */
};

static inline int64_t
it_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline const char *
it_builddir(void)
{
	const char *b = getenv("top_builddir");

	return b != NULL ? b : "..";
}

/* Start ipc-echo with extra options (NULL-terminated); waits for "ready". */
static inline int
it_echo_start(struct it_echo *e, const char *const *opts)
{
	char exe[512], line[64];
	const char *argv[32];
	int pfd[2], n = 0;
	FILE *f;

	snprintf(e->dir, sizeof(e->dir), "/tmp/ipc-test-XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		return -errno;
	/* A setuid'd child must be able to reach the socket's directory. */
	chmod(e->dir, 0755);
	snprintf(e->path, sizeof(e->path), "%s/instantd/socket", e->dir);
	snprintf(exe, sizeof(exe), "%s/tests/ipc-echo", it_builddir());
	argv[n++] = exe;
	argv[n++] = e->path;
	for (int i = 0; opts != NULL && opts[i] != NULL && n < 30; i++)
		argv[n++] = opts[i];
	argv[n] = NULL;
	if (pipe(pfd) < 0)
		return -errno;
	e->pid = fork();
	if (e->pid < 0)
		return -errno;
	if (e->pid == 0) {
		/* Do not outlive a test that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL || strcmp(line, "ready\n") != 0) {
		if (f != NULL)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	return 0;
}

/* Ask the echo server to exit; returns its wait status. */
static inline int
it_echo_stop(struct it_echo *e)
{
	int st = -1;

	kill(e->pid, SIGTERM);
	if (waitpid(e->pid, &st, 0) < 0)
		return -1;
	unlink(e->path);
	snprintf(e->path, sizeof(e->path), "%s/instantd", e->dir);
	rmdir(e->path);
	rmdir(e->dir);
	return st;
}

static inline int
it_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static inline int
it_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline int
it_send_str(int fd, const char *s)
{
	return it_write_all(fd, s, strlen(s));
}

/* Per-fd line reader. */
struct it_reader {
	int fd;
	char *buf;
	size_t len, cap;
	bool eof;
};

static inline void
it_reader_init(struct it_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
}

static inline void
it_reader_free(struct it_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Next line as a malloc'd string without '\n'; NULL on EOF, error or
 * timeout (r->eof tells EOF/reset apart from timeout). */
static inline char *
it_read_line(struct it_reader *r, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;

	for (;;) {
		char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		int64_t left;
		ssize_t n;

		if (nl != NULL) {
			size_t k = (size_t)(nl - r->buf);
			char *line = malloc(k + 1);

			memcpy(line, r->buf, k);
			line[k] = '\0';
			memmove(r->buf, nl + 1, r->len - k - 1);
			r->len -= k + 1;
			return line;
		}
		if (r->eof)
			return NULL;
		left = deadline - it_now_ms();
		if (left <= 0)
			return NULL;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (r->cap - r->len < 65536) {
			r->cap = r->cap ? r->cap * 2 : 131072;
			r->buf = realloc(r->buf, r->cap);
		}
		n = recv(r->fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			r->eof = true;
			continue;
		}
		if (n > 0)
			r->len += (size_t)n;
	}
}

/* Next message as parsed JSON (NULL as it_read_line). */
static inline cJSON *
it_read_json(struct it_reader *r)
{
	char *line = it_read_line(r, IT_TIMEOUT_MS);
	cJSON *j;

	if (line == NULL)
		return NULL;
	j = cJSON_Parse(line);
	free(line);
	return j;
}

/* True when the peer has closed: reads (and drops) until EOF or reset. */
static inline bool
it_wait_closed(struct it_reader *r)
{
	char *line;

	while ((line = it_read_line(r, IT_TIMEOUT_MS)) != NULL)
		free(line);
	return r->eof;
}

static inline const char *
it_str(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double
it_num(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

#endif
