/* ipc-server.c: the daemon's Unix-socket server: listener and client fds
 * adopted into the libwebsockets loop, NDJSON framing, bounds, peer checks. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "ipc/ipc-protocol.h"
#include "ipc/ipc-server.h"

/* At most this much is written to one conn per writable callback, so one
 * fast reader does not starve the others. */
#define IPC_WRITE_SLICE		(1024 * 1024)
/* A conn closed after a fatal error reply gets this long to read it. */
#define IPC_FLUSH_CLOSE_SECS	5
/* Accept pauses this long when we are out of fds. */
#define IPC_EMFILE_PAUSE_US	(1000 * 1000)

struct ipc_obuf {
	TAILQ_ENTRY(ipc_obuf) link;
	size_t len;		/* bytes in data */
	size_t off;		/* bytes already written */
	char data[];
};
TAILQ_HEAD(ipc_obuf_list, ipc_obuf);

struct ipc_conn {
	TAILQ_ENTRY(ipc_conn) link;	/* in server->conns */
	struct ipc_server *server;	/* not owned */
	struct lws *wsi;		/* owned by lws; NULL once detached */
	uint64_t id;
	uid_t uid;
	pid_t pid;
	void *data;			/* the daemon's; never touched here */

	/* Input: the start of an unfinished line. Bytes are scanned for '\n'
	 * once, as they arrive, so a long line costs O(n). */
	char *in;
	size_t in_len;
	size_t in_cap;

	/* Output, owned. */
	struct ipc_obuf_list out;
	size_t out_bytes;		/* unwritten bytes in out */

	/* A virtual conn (ipc_conn_new_virtual) has no socket: what is sent to
	 * it goes to sink, and its requests come from ipc_conn_deliver. */
	ipc_sink_fn sink;
	void *sink_ud;

	bool dead;			/* closing without flush; ignore input, drop output */
	bool closing_after_flush;	/* no more input; close when out is empty */
	bool in_rx;			/* inside our RAW_RX handling */
};
TAILQ_HEAD(ipc_conn_list, ipc_conn);

struct ipc_server {
	struct lws_vhost *vh;
	struct lws_context *ctx;
	struct lws *listen_wsi;		/* owned by lws; NULL once closed */
	struct ipc_limits lim;
	const struct ipc_callbacks *cb;
	void *ud;
	struct ipc_conn_list conns;	/* owned */
	size_t n_conns;
	uint64_t next_id;
	lws_sorted_usec_list_t sul_resume;	/* accept pause after EMFILE */
	bool accept_paused;
};

void
ipc_limits_default(struct ipc_limits *lim)
{
	*lim = (struct ipc_limits){
		.max_message = IPC_DEFAULT_MAX_MESSAGE,
		.max_depth = IPC_DEFAULT_MAX_DEPTH,
		.max_output = IPC_DEFAULT_MAX_OUTPUT,
		.max_conns = IPC_DEFAULT_MAX_CONNS,
		.max_subs_per_conn = IPC_DEFAULT_MAX_SUBS_PER_CONN,
	};
}

int
ipc_raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return 0;
}

/* ---- socket setup ---- */

static int
ipc_server_make_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;		/* relative name in cwd, or directly under / */
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* Never chmod a directory we did not make (it may be $HOME): one that
	 * others can write is refused instead, since they could replace the socket. */
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0)
		return -EPERM;
	return 0;
}

/* A socket at `path` that nobody accepts on is stale; a live one means
 * another daemon already serves it. */
static int
ipc_server_remove_stale(const char *path, const struct sockaddr_un *sa, socklen_t salen)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, salen);
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int
ipc_server_open_socket(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	mode_t old;
	int fd, r;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);

	r = ipc_server_make_dir(path);
	if (r < 0)
		return r;
	r = ipc_server_remove_stale(path, &sa, salen);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(077);
	r = bind(fd, (const struct sockaddr *)&sa, salen);
	umask(old);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		unlink(path);
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int
ipc_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int
ipc_server_inherited_fd(int *ret_fd)
{
	return ipc_server_inherited_fd_named("ipc", true, ret_fd);
}

int
ipc_server_inherited_fd_named(const char *name, bool or_single, int *ret_fd)
{
	char **names = NULL;
	int n, fd = -1, r;

	/* The environment stays: several listeners are looked up by name
	 * (ipc_server_forget_inherited clears it). */
	n = sd_listen_fds_with_names(0, &names);
	if (n < 0)
		return n;
	if (n == 0) {
		free(names);
		return -ENOENT;
	}
	for (int i = 0; i < n; i++)
		if (names != NULL && names[i] != NULL && strcmp(names[i], name) == 0)
			fd = SD_LISTEN_FDS_START + i;
	if (fd < 0 && n == 1 && or_single)
		fd = SD_LISTEN_FDS_START;
	if (names != NULL)
		for (int i = 0; i < n; i++)
			free(names[i]);
	free(names);
	if (fd < 0)
		return -ENOENT;
	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOTSOCK;
	r = ipc_set_nonblock(fd);
	if (r < 0)
		return r;
	*ret_fd = fd;
	return 0;
}

void
ipc_server_forget_inherited(void)
{
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
}

/* ---- output ---- */

static void
ipc_conn_free_output(struct ipc_conn *c)
{
	struct ipc_obuf *b;

	while ((b = TAILQ_FIRST(&c->out)) != NULL) {
		TAILQ_REMOVE(&c->out, b, link);
		free(b);
	}
	c->out_bytes = 0;
}

void
ipc_conn_close(struct ipc_conn *c)
{
	if (c == NULL || c->dead)
		return;
	c->dead = true;
	ipc_conn_free_output(c);
	if (c->sink != NULL) {
		c->sink(c->sink_ud, NULL, 0);	/* the owner frees it later */
		return;
	}
	if (c->wsi == NULL)
		return;
	/* Inside our own RX the handler returns -1; elsewhere the wsi may be
	 * stuck unwritable (a slow reader), so ask lws to kill it on its own. */
	if (!c->in_rx) {
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		lws_callback_on_writable(c->wsi);
	}
}

void
ipc_conn_close_after_flush(struct ipc_conn *c)
{
	if (c == NULL || c->dead || c->closing_after_flush)
		return;
	if (c->sink != NULL) {	/* nothing is queued: sends reach the sink at once */
		ipc_conn_close(c);
		return;
	}
	c->closing_after_flush = true;
	if (c->wsi == NULL)
		return;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, IPC_FLUSH_CLOSE_SECS);
	lws_callback_on_writable(c->wsi);
}

/* A message for a connection with nothing queued goes to the kernel at
 * once: a push leaves before the next one is rendered (a small result does
 * not wait behind a large one's render in the same loop turn) and a reply
 * costs no extra poll round. Returns how many bytes of json + '\n' the
 * kernel took; any failure leaves the rest to the queue, whose writable
 * callback meets the same error and closes the connection there, never
 * under a caller that is walking its listeners. */
static size_t
ipc_conn_try_send(struct ipc_conn *c, const char *json, size_t len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)json, .iov_len = len },
		{ .iov_base = (void *)"\n", .iov_len = 1 },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	int fd;
	ssize_t n;

	if (!TAILQ_EMPTY(&c->out) || c->closing_after_flush)
		return 0;
	fd = lws_get_socket_fd(c->wsi);
	if (fd < 0)
		return 0;
	do
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? 0 : (size_t)n;
}

int
ipc_conn_send_text(struct ipc_conn *c, const char *json, size_t len)
{
	struct ipc_obuf *b;
	size_t sent;

	if (c->dead)
		return -EPIPE;
	if (c->sink != NULL)
		return c->sink(c->sink_ud, json, len);
	if (c->wsi == NULL)
		return -EPIPE;
	if (len + 1 > c->server->lim.max_output ||
	    c->out_bytes + len + 1 > c->server->lim.max_output) {
		ipc_conn_close(c);
		return -ENOBUFS;
	}
	sent = ipc_conn_try_send(c, json, len);
	if (sent == len + 1)
		return 0;
	b = malloc(sizeof(*b) + len + 1);
	if (b == NULL)
		return -ENOMEM;
	memcpy(b->data, json, len);
	b->data[len] = '\n';
	b->len = len + 1;
	b->off = sent;
	TAILQ_INSERT_TAIL(&c->out, b, link);
	c->out_bytes += b->len - sent;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int
ipc_conn_send(struct ipc_conn *c, const cJSON *msg)
{
	char *s;
	int r;

	if (c->dead || (c->wsi == NULL && c->sink == NULL))
		return -EPIPE;
	s = cJSON_PrintUnformatted(msg);
	if (s == NULL)
		return -ENOMEM;
	r = ipc_conn_send_text(c, s, strlen(s));
	cJSON_free(s);
	return r;
}

int
ipc_conn_send_error(struct ipc_conn *c, const char *client_event_id, const char *type,
    const char *message)
{
	cJSON *m;
	int r = -ENOMEM;

	m = cJSON_CreateObject();
	if (m == NULL)
		return -ENOMEM;
	if (cJSON_AddStringToObject(m, "op", IPC_REPLY_ERROR) == NULL)
		goto out;
	if (client_event_id != NULL &&
	    cJSON_AddStringToObject(m, "client-event-id", client_event_id) == NULL)
		goto out;
	if (cJSON_AddStringToObject(m, "type", type) == NULL)
		goto out;
	if (cJSON_AddStringToObject(m, "message", message != NULL ? message : type) == NULL)
		goto out;
	r = ipc_conn_send(c, m);
out:
	cJSON_Delete(m);
	return r;
}

/* We write to the socket ourselves instead of through lws_write(): lws keeps
 * whatever the kernel refuses and then stops reading that socket until it
 * drains, which spins the loop on a peer that writes but never reads. Our
 * own queue keeps reading going, so such a peer reaches max_output and is
 * disconnected. */
static int
ipc_conn_write(struct ipc_conn *c)
{
	int fd = lws_get_socket_fd(c->wsi);
	size_t budget = IPC_WRITE_SLICE;
	struct ipc_obuf *b;

	if (c->dead || fd < 0)
		return -1;
	while (budget > 0 && (b = TAILQ_FIRST(&c->out)) != NULL) {
		size_t k = b->len - b->off;
		ssize_t n;

		if (k > budget)
			k = budget;
		n = send(fd, b->data + b->off, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;	/* EPIPE, ECONNRESET: the peer is gone */
		}
		b->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		budget -= (size_t)n;
		if (b->off == b->len) {
			TAILQ_REMOVE(&c->out, b, link);
			free(b);
		} else if ((size_t)n < k)
			break;		/* the kernel buffer is full */
	}
	if (!TAILQ_EMPTY(&c->out)) {
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->closing_after_flush)
		return -1;
	return 0;
}

/* ---- input ---- */

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool
ipc_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Nesting depth of JSON text, counted outside strings, without recursion;
 * stops early once past `limit`. */
static int
ipc_json_depth(const char *s, size_t n, int limit)
{
	int depth = 0, max = 0;
	bool in_str = false, esc = false;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		switch (ch) {
		case '"':
			in_str = true;
			break;
		case '[':
		case '{':
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return max;
			}
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
	}
	return max;
}

static bool
ipc_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* A fatal framing error: reply, then close once the reply is out. */
static void
ipc_conn_fatal(struct ipc_conn *c, const char *type, const char *message)
{
	(void)ipc_conn_send_error(c, NULL, type, message);
	ipc_conn_close_after_flush(c);
}

/* A parsed request: checked, then handed to the daemon. */
static void
ipc_conn_dispatch(struct ipc_conn *c, const cJSON *msg)
{
	struct ipc_server *s = c->server;
	const cJSON *id;
	char *err = NULL;
	int r;

	r = ipc_protocol_check(msg, &err);
	if (r < 0) {
		id = cJSON_IsObject(msg) ? cJSON_GetObjectItemCaseSensitive(msg, "client-event-id") :
		    NULL;
		(void)ipc_conn_send_error(c, cJSON_IsString(id) ? id->valuestring : NULL,
		    ipc_protocol_error_type(r), err != NULL ? err : "out of memory");
		free(err);
		return;
	}
	if (s->cb->on_request != NULL)
		s->cb->on_request(s->ud, c, msg);
}

static void
ipc_conn_handle_line(struct ipc_conn *c, const char *line, size_t len)
{
	struct ipc_server *s = c->server;
	const char *end = NULL;
	cJSON *msg;
	char buf[128];
	size_t i;

	for (i = 0; i < len && ipc_is_space(line[i]); i++)
		;
	if (i == len)
		return;		/* blank lines are keep-alives */

	/* cJSON would cut strings at a NUL and JSON text never contains one. */
	if (memchr(line, '\0', len) != NULL) {
		ipc_conn_fatal(c, IPC_ERR_INVALID_JSON, "the request contains a NUL byte");
		return;
	}
	if (!ipc_utf8_valid((const unsigned char *)line, len)) {
		ipc_conn_fatal(c, IPC_ERR_INVALID_UTF8, "the request is not valid UTF-8");
		return;
	}
	if (ipc_json_depth(line, len, s->lim.max_depth) > s->lim.max_depth) {
		snprintf(buf, sizeof(buf), "the request nests deeper than %d levels",
		    s->lim.max_depth);
		ipc_conn_fatal(c, IPC_ERR_TOO_DEEP, buf);
		return;
	}
	msg = cJSON_ParseWithLengthOpts(line, len, &end, 0);
	if (msg != NULL && end != NULL) {
		for (const char *p = end; p < line + len; p++)
			if (!ipc_is_space(*p)) {
				cJSON_Delete(msg);
				msg = NULL;
				break;
			}
	}
	if (msg == NULL) {
		if (end != NULL && end >= line && end <= line + len)
			snprintf(buf, sizeof(buf), "the request is not valid JSON (near byte %zu)",
			    (size_t)(end - line));
		else
			snprintf(buf, sizeof(buf), "the request is not valid JSON");
		ipc_conn_fatal(c, IPC_ERR_INVALID_JSON, buf);
		return;
	}

	ipc_conn_dispatch(c, msg);
	cJSON_Delete(msg);
}

static int
ipc_conn_buffer(struct ipc_conn *c, const char *p, size_t n)
{
	if (c->in_len + n > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 4096;
		char *nb;

		while (cap < c->in_len + n)
			cap *= 2;
		if (cap > c->server->lim.max_message)
			cap = c->server->lim.max_message;
		nb = realloc(c->in, cap);
		if (nb == NULL)
			return -ENOMEM;
		c->in = nb;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	return 0;
}

static void
ipc_conn_too_large(struct ipc_conn *c)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "the request is longer than %zu bytes",
	    c->server->lim.max_message);
	c->in_len = 0;
	ipc_conn_fatal(c, IPC_ERR_TOO_LARGE, buf);
}

/* Split what arrived into lines. Each byte is looked at once by memchr; a
 * partial line waits in c->in, never longer than max_message. */
static void
ipc_conn_rx(struct ipc_conn *c, const char *p, size_t n)
{
	size_t max = c->server->lim.max_message;

	while (n > 0 && !c->dead && !c->closing_after_flush) {
		const char *nl = memchr(p, '\n', n);
		size_t part = nl != NULL ? (size_t)(nl - p) : n;

		if (c->in_len + part > max) {
			ipc_conn_too_large(c);
			return;
		}
		if (nl == NULL) {
			if (ipc_conn_buffer(c, p, n) < 0)
				ipc_conn_close(c);
			return;
		}
		if (c->in_len == 0) {
			ipc_conn_handle_line(c, p, part);
		} else {
			size_t total;

			if (ipc_conn_buffer(c, p, part) < 0) {
				ipc_conn_close(c);
				return;
			}
			total = c->in_len;
			c->in_len = 0;
			ipc_conn_handle_line(c, c->in, total);
		}
		p = nl + 1;
		n -= part + 1;
	}
}

/* ---- lifecycle ---- */

static void
ipc_conn_destroy(struct ipc_conn *c)
{
	struct ipc_server *s = c->server;

	if (s->cb->on_close != NULL)
		s->cb->on_close(s->ud, c);
	TAILQ_REMOVE(&s->conns, c, link);
	s->n_conns--;
	if (c->wsi != NULL)
		lws_set_opaque_user_data(c->wsi, NULL);
	ipc_conn_free_output(c);
	free(c->in);
	free(c);
}

static void
ipc_server_refuse(int fd, const char *type, const char *message)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf), "{\"op\":\"error\",\"type\":\"%s\",\"message\":\"%s\"}\n",
	    type, message);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void
ipc_server_resume_accept(lws_sorted_usec_list_t *sul)
{
	struct ipc_server *s = lws_container_of(sul, struct ipc_server, sul_resume);

	s->accept_paused = false;
	if (s->listen_wsi != NULL)
		lws_rx_flow_control(s->listen_wsi, 1);
}

static void
ipc_server_accept(struct ipc_server *s)
{
	for (;;) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct ipc_conn *c;
		struct lws *wsi;
		int fd;

		fd = accept4(lws_get_socket_fd(s->listen_wsi), NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Stop polling the listener for a while rather than spin. */
				s->accept_paused = true;
				lws_rx_flow_control(s->listen_wsi, 0);
				lws_sul_schedule(s->ctx, 0, &s->sul_resume,
				    ipc_server_resume_accept, IPC_EMFILE_PAUSE_US);
			}
			return;		/* EAGAIN and anything else: wait for the next wakeup */
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		if (cred.uid != geteuid()) {
			close(fd);
			if (s->cb->on_refused != NULL)
				s->cb->on_refused(s->ud, cred.uid, cred.pid);
			continue;
		}
		if (s->n_conns >= s->lim.max_conns) {
			ipc_server_refuse(fd, IPC_ERR_TOO_MANY_CONNECTIONS,
			    "the daemon serves too many connections");
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		/* lws closes fd itself when adoption fails. */
		wsi = lws_adopt_descriptor_vhost(s->vh, LWS_ADOPT_SOCKET,
		    (lws_sock_file_fd_type){ .sockfd = fd }, IPC_SERVER_PROTOCOL_CLIENT, NULL);
		if (wsi == NULL) {
			free(c);
			continue;
		}
		c->server = s;
		c->wsi = wsi;
		c->id = ++s->next_id;
		c->uid = cred.uid;
		c->pid = cred.pid;
		TAILQ_INIT(&c->out);
		TAILQ_INSERT_TAIL(&s->conns, c, link);
		s->n_conns++;
		lws_set_opaque_user_data(wsi, c);
		if (s->cb->on_open != NULL)
			s->cb->on_open(s->ud, c);
	}
}

static int
ipc_server_listen_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct ipc_server *s = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (s != NULL && !s->accept_paused)
			ipc_server_accept(s);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (s != NULL)
			s->listen_wsi = NULL;
		return 0;
	default:
		return 0;
	}
}

static int
ipc_server_client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct ipc_conn *c = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_RX:
		if (c == NULL)
			return -1;
		if (c->dead)
			return -1;
		if (c->closing_after_flush || in == NULL)
			return 0;
		c->in_rx = true;
		ipc_conn_rx(c, in, len);
		c->in_rx = false;
		return c->dead ? -1 : 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c == NULL)
			return -1;
		return ipc_conn_write(c);
	case LWS_CALLBACK_RAW_CLOSE:
		if (c != NULL) {
			c->wsi = NULL;
			c->dead = true;
			ipc_conn_destroy(c);
		}
		return 0;
	default:
		return 0;
	}
}

const struct lws_protocols ipc_server_protocols[2] = {
	{ .name = IPC_SERVER_PROTOCOL_LISTEN, .callback = ipc_server_listen_cb },
	{ .name = IPC_SERVER_PROTOCOL_CLIENT, .callback = ipc_server_client_cb },
};

int
ipc_server_new(struct lws_vhost *vh, int listen_fd, const struct ipc_limits *lim,
    const struct ipc_callbacks *cb, void *ud, struct ipc_server **ret)
{
	struct ipc_server *s;
	struct lws *wsi;
	int r;

	if (vh == NULL || listen_fd < 0 || cb == NULL || ret == NULL) {
		if (listen_fd >= 0)
			close(listen_fd);
		return -EINVAL;
	}
	(void)ipc_raise_nofile_limit();	/* best effort: a lower limit still works */
	r = ipc_set_nonblock(listen_fd);
	if (r < 0) {
		close(listen_fd);
		return r;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(listen_fd);
		return -ENOMEM;
	}
	ipc_limits_default(&s->lim);
	if (lim != NULL) {
		if (lim->max_message)
			s->lim.max_message = lim->max_message;
		if (lim->max_depth > 0)
			s->lim.max_depth = lim->max_depth;
		if (lim->max_output)
			s->lim.max_output = lim->max_output;
		if (lim->max_conns)
			s->lim.max_conns = lim->max_conns;
		if (lim->max_subs_per_conn)
			s->lim.max_subs_per_conn = lim->max_subs_per_conn;
	}
	s->vh = vh;
	s->cb = cb;
	s->ud = ud;
	TAILQ_INIT(&s->conns);

	/* Adopted as a file (so lws does not accept() for us); lws 4.1.6 closes
	 * only sockets when adoption fails, so listen_fd is still ours to close. */
	wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC,
	    (lws_sock_file_fd_type){ .filefd = listen_fd }, IPC_SERVER_PROTOCOL_LISTEN, NULL);
	if (wsi == NULL) {
		close(listen_fd);
		free(s);
		return -EIO;
	}
	s->listen_wsi = wsi;
	s->ctx = lws_get_context(wsi);
	lws_set_opaque_user_data(wsi, s);
	*ret = s;
	return 0;
}

void
ipc_server_free(struct ipc_server *s)
{
	struct ipc_conn *c;

	if (s == NULL)
		return;
	if (s->ctx != NULL)
		lws_sul_cancel(&s->sul_resume);
	while ((c = TAILQ_FIRST(&s->conns)) != NULL) {
		struct lws *wsi = c->wsi;

		c->dead = true;
		ipc_conn_destroy(c);	/* detaches wsi from c */
		if (wsi != NULL)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	}
	if (s->listen_wsi != NULL) {
		struct lws *wsi = s->listen_wsi;

		lws_set_opaque_user_data(wsi, NULL);
		s->listen_wsi = NULL;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	}
	free(s);
}

int
ipc_conn_new_virtual(struct ipc_server *s, ipc_sink_fn sink, void *ud, uid_t uid,
    struct ipc_conn **ret)
{
	struct ipc_conn *c;

	if (s == NULL || sink == NULL || ret == NULL)
		return -EINVAL;
	if (s->n_conns >= s->lim.max_conns)
		return -EMFILE;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->server = s;
	c->id = ++s->next_id;
	c->uid = uid;
	c->sink = sink;
	c->sink_ud = ud;
	TAILQ_INIT(&c->out);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->n_conns++;
	if (s->cb->on_open != NULL)
		s->cb->on_open(s->ud, c);
	*ret = c;
	return 0;
}

int
ipc_conn_deliver(struct ipc_conn *c, const cJSON *msg)
{
	if (c == NULL || c->sink == NULL || msg == NULL)
		return -EINVAL;
	if (c->dead)
		return -EPIPE;
	ipc_conn_dispatch(c, msg);
	return 0;
}

void
ipc_conn_free_virtual(struct ipc_conn *c)
{
	if (c == NULL)
		return;
	c->dead = true;
	c->sink = NULL;		/* on_close may still try to send: dropped */
	ipc_conn_destroy(c);
}

size_t
ipc_server_conn_count(const struct ipc_server *s)
{
	return s->n_conns;
}

const struct ipc_limits *
ipc_server_limits(const struct ipc_server *s)
{
	return &s->lim;
}

void
ipc_conn_set_data(struct ipc_conn *c, void *data)
{
	c->data = data;
}

void *
ipc_conn_get_data(const struct ipc_conn *c)
{
	return c->data;
}

uid_t
ipc_conn_uid(const struct ipc_conn *c)
{
	return c->uid;
}

pid_t
ipc_conn_pid(const struct ipc_conn *c)
{
	return c->pid;
}

uint64_t
ipc_conn_id(const struct ipc_conn *c)
{
	return c->id;
}

size_t
ipc_conn_queued(const struct ipc_conn *c)
{
	return c->out_bytes;
}

struct ipc_server *
ipc_conn_server(const struct ipc_conn *c)
{
	return c->server;
}
