/* HTTP POSTs to the server's auth endpoints on a worker thread: a small HTTP/1.1
 * client (TLS through OpenSSL) on a non-blocking socket with one deadline for the
 * whole call, whose answer reaches the loop through a pipe adopted into lws. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <limits.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "daemon/auth.h"
#include "daemon/tls.h"
#include "store/util.h"

#define AUTH_TIMEOUT_S		15	/* for the whole call: DNS aside, connect to last byte */
#define AUTH_MAX_REPLY		(4 << 20)
#define AUTH_STR_(x)		#x
#define AUTH_STR(x)		AUTH_STR_(x)
#define AUTH_MAX_IN_FLIGHT	32	/* threads; more calls are refused until some finish */

struct auth_request {
	/* Set by the loop before the thread starts; read-only afterwards. */
	char *host, *port, *path, *body, *ca_file;	/* owned */
	bool tls;
	int wfd;			/* pipe write end: the thread's */
	auth_done_fn done;
	void *ud;
	/* Written by the thread before it signals the pipe. */
	int status;
	char *reply;			/* owned: the response body */
	/* Loop only. */
	atomic_bool cancelled;
	/* The loop (until the pipe's wsi closes) and the thread (until it ends) each hold one
	 * reference; the last to let go frees. lws may close the pipe's wsi without the
	 * thread having answered (context teardown), and the thread may outlive it. */
	atomic_int refs;
};

static atomic_int in_flight;

static void
request_free(struct auth_request *r)
{
	if (r == NULL)
		return;
	free(r->host);
	free(r->port);
	free(r->path);
	if (r->body)
		explicit_bzero(r->body, strlen(r->body));	/* may hold a token */
	free(r->body);
	free(r->ca_file);
	if (r->reply)
		explicit_bzero(r->reply, strlen(r->reply));
	free(r->reply);
	free(r);
}

static void
request_unref(struct auth_request *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		request_free(r);
}

/* http[s]://host[:port][/base] → parts; the base path is prefixed to path. */
static int
parse_uri(struct auth_request *r, const char *uri, const char *path)
{
	const char *p, *hs, *he, *slash;
	const char *base = "";

	if (strncmp(uri, "https://", 8) == 0) {
		r->tls = true;
		p = uri + 8;
	} else if (strncmp(uri, "http://", 7) == 0) {
		p = uri + 7;
	} else
		return -EINVAL;
	slash = strchr(p, '/');
	he = slash ? slash : p + strlen(p);
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(he - p));

		if (close == NULL)
			return -EINVAL;
		hs = p + 1;
		r->host = strndup(hs, (size_t)(close - hs));
		p = close + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(he - p));

		r->host = strndup(p, (size_t)((colon ? colon : he) - p));
		p = colon ? colon : he;
	}
	if (*p == ':')
		r->port = strndup(p + 1, (size_t)(he - p - 1));
	else
		r->port = strdup(r->tls ? "443" : "80");
	if (slash)
		base = slash;
	if (!r->host || !r->port || !*r->host)
		return -EINVAL;
	if (asprintf(&r->path, "%.*s%s", (int)(strlen(base) && base[strlen(base) - 1] == '/' ?
	    strlen(base) - 1 : strlen(base)), base, path) < 0)
		return -ENOMEM;
	return 0;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the call's deadline passes (-ETIMEDOUT). The
 * deadline covers the whole call, so a server answering a byte at a time cannot hold a
 * thread (and the program waiting for it) longer than one timeout. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int64_t left = deadline - mono_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int
tcp_connect(const char *host, const char *port, int64_t deadline)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *res, *ai;
	int fd = -1, e = -ECONNREFUSED;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			e = wait_fd(fd, POLLOUT, deadline);
			if (e == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
				break;
			if (e == 0)
				e = soerr ? -soerr : -ECONNREFUSED;
		} else
			e = -errno;
		close(fd);
		fd = -1;
		if (e == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : e;
}

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int64_t deadline;
};

/* After an SSL call returned n <= 0: wait for what it wants, or the error to report. */
static int
tls_wait(struct conn *c, int n)
{
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, c->deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, c->deadline);
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		return errno ? -errno : -ECONNRESET;	/* errno 0: EOF without close_notify */
	default:
		return -EPROTO;
	}
}

static int
conn_write(struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n;
		int e;

		if (c->ssl) {
			int k;

			errno = 0;	/* SSL_ERROR_SYSCALL reads it */
			k = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);

			if (k <= 0) {
				if ((e = tls_wait(c, k)) < 0)
					return e;
				continue;
			}
			n = k;
		} else {
			n = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					return -errno;
				if ((e = wait_fd(c->fd, POLLOUT, c->deadline)) < 0)
					return e;
				continue;
			}
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Bytes read, 0 at the end of the stream, or a negative errno. */
static ssize_t
conn_read(struct conn *c, char *buf, size_t len)
{
	for (;;) {
		ssize_t n;
		int e;

		if (c->ssl) {
			int k;

			errno = 0;
			k = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);

			if (k > 0)
				return k;
			e = tls_wait(c, k);
			if (e == -ECONNRESET)
				return 0;	/* closed: the length check tells a cut answer from a whole one */
			if (e < 0)
				return e;
			continue;
		}
		n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if ((e = wait_fd(c->fd, POLLIN, c->deadline)) < 0)
			return e;
	}
}

static int
tls_start(struct conn *c, const struct auth_request *r)
{
	int n, e;

	if ((e = tls_client_ctx_new(r->ca_file, &c->ctx)) < 0)
		return e;
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL)
		return -ENOMEM;
	SSL_set_tlsext_host_name(c->ssl, r->host);
	if (SSL_set1_host(c->ssl, r->host) != 1)
		return -EINVAL;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A close without close_notify reads as the end of the stream; the Content-Length
	 * check then tells a cut answer (-ECONNRESET) from a whole one. */
	SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_set_fd(c->ssl, c->fd);
	for (;;) {
		errno = 0;
		if ((n = SSL_connect(c->ssl)) == 1)
			break;
		if (SSL_get_verify_result(c->ssl) != X509_V_OK)
			return -EKEYREJECTED;	/* certificate not trusted or wrong host: never ignored */
		if ((e = tls_wait(c, n)) < 0)
			return e;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		return -EKEYREJECTED;
	return 0;
}

/* Decode a chunked body in place; returns its length or -EBADMSG. */
static ssize_t
dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *end;
		unsigned long n;

		if (in >= len)
			return -EBADMSG;
		n = strtoul(b + in, &end, 16);
		end = strstr(end, "\r\n");
		if (end == NULL)
			return -EBADMSG;
		in = (size_t)(end - b) + 2;
		if (n == 0)
			return (ssize_t)out;
		if (in + n > len)
			return -EBADMSG;
		memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
}

/* Whether buf (len bytes, NUL-terminated) holds a whole response: headers, then
 * Content-Length bytes or a chunked body up to its last chunk. Without either, only the end
 * of the stream says. */
static bool
reply_complete(char *buf, size_t len)
{
	char *hdr_end = strstr(buf, "\r\n\r\n"), *cl;
	size_t hlen;

	if (hdr_end == NULL)
		return false;
	hlen = (size_t)(hdr_end - buf) + 4;
	*hdr_end = '\0';
	cl = strcasestr(buf, "\r\ncontent-length:");
	*hdr_end = '\r';
	if (cl)
		return len - hlen >= strtoull(cl + 17, NULL, 10);
	return len - hlen >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0;
}

static int
http_post(struct auth_request *r)
{
	struct conn c = { .fd = -1, .deadline = mono_ms() + AUTH_TIMEOUT_S * 1000 };
	char *req = NULL, *buf = NULL, *hdr_end, *body;
	const char *cl;
	size_t len = 0, cap = 65536;
	int e = 0;

	c.fd = tcp_connect(r->host, r->port, c.deadline);
	if (c.fd < 0)
		return c.fd;
	if (r->tls && (e = tls_start(&c, r)) < 0)
		goto out;
	if (asprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	    "Accept: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
	    r->path, r->host, strlen(r->body), r->body) < 0) {
		e = -ENOMEM;
		goto out;
	}
	if ((e = conn_write(&c, req, strlen(req))) < 0)
		goto out;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		e = -ENOMEM;
		goto out;
	}
	buf[0] = '\0';
	/* Until the answer is whole (a server may keep the connection open after it) or ends. */
	while (!reply_complete(buf, len)) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= AUTH_MAX_REPLY) {
				e = -EMSGSIZE;
				goto out;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				e = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = conn_read(&c, buf + len, cap - len);
		if (n < 0) {
			e = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	if (len == 0) {
		e = -ECONNRESET;	/* closed without a byte of answer */
		goto out;
	}
	if (sscanf(buf, "HTTP/%*d.%*d %d", &r->status) != 1) {
		e = -EBADMSG;
		goto out;
	}
	if ((hdr_end = strstr(buf, "\r\n\r\n")) == NULL) {
		e = -ECONNRESET;	/* closed in the middle of the headers */
		goto out;
	}
	*hdr_end = '\0';
	body = hdr_end + 4;
	len -= (size_t)(body - buf);
	if ((cl = strcasestr(buf, "\r\ncontent-length:")) != NULL) {
		unsigned long long want = strtoull(cl + 17, NULL, 10);

		if (len < want) {
			e = -ECONNRESET;	/* closed in the middle of the body */
			goto out;
		}
		len = (size_t)want;
	} else if (strcasestr(buf, "\r\ntransfer-encoding: chunked")) {
		ssize_t n = dechunk(body, len);

		if (n < 0) {
			e = len >= 5 && memcmp(body + len - 5, "0\r\n\r\n", 5) == 0 ? (int)n : -ECONNRESET;
			goto out;
		}
		len = (size_t)n;
	}
	r->reply = strndup(body, len);
	if (r->reply == NULL)
		e = -ENOMEM;
out:
	if (c.ssl) {
		if (e == 0)
			SSL_shutdown(c.ssl);	/* never waits: the socket is non-blocking */
		SSL_free(c.ssl);
	}
	SSL_CTX_free(c.ctx);
	if (c.fd >= 0)
		close(c.fd);
	if (req)
		explicit_bzero(req, strlen(req));
	free(req);
	if (buf)
		explicit_bzero(buf, cap);	/* may hold a token */
	free(buf);
	return e;
}

static void *
worker(void *arg)
{
	struct auth_request *r = arg;
	int e = http_post(r), wfd = r->wfd;
	char one = 1;

	if (e < 0)
		r->status = e;
	ERR_clear_error();
	/* No longer counted before the loop hears of it: a program answered at the limit may
	 * call again at once. */
	atomic_fetch_sub(&in_flight, 1);
	/* The loop reads the answer once this byte arrives. */
	if (write(wfd, &one, 1) < 0) {
		/* The loop side is gone (teardown); nothing can be reported. */
	}
	close(wfd);
	request_unref(r);
	return NULL;
}

static int
auth_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct auth_request *r = lws_get_opaque_user_data(wsi);
	char b;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (r == NULL)
			return -1;
		if (read(lws_get_socket_fd(wsi), &b, 1) < 0) {
			/* EOF or error: the thread wrote nothing; report below anyway. */
		}
		lws_set_opaque_user_data(wsi, NULL);
		if (!atomic_load(&r->cancelled)) {
			cJSON *body = r->reply ? cJSON_Parse(r->reply) : NULL;

			r->done(r->ud, r->status ? r->status : -EIO, body);
			cJSON_Delete(body);
		}
		request_unref(r);
		return -1;	/* lws closes the read end */
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		/* Closed before the answer came (context teardown, or the thread never started):
		 * the loop lets go; done() is never called. */
		if (r) {
			lws_set_opaque_user_data(wsi, NULL);
			request_unref(r);
		}
		return 0;
	default:
		return 0;
	}
}

const struct lws_protocols auth_protocol = {
	.name = "auth-http",
	.callback = auth_callback,
};

/* What a failure means, for a person reading the error (see auth_strerror). */
static const struct {
	int e;
	const char *what;
} auth_errors[] = {
	{ -ETIMEDOUT, "no complete answer within " AUTH_STR(AUTH_TIMEOUT_S) " s" },
	{ -ECONNRESET, "the server closed the connection before its answer was complete" },
	{ -ECONNREFUSED, "the connection was refused" },
	{ -EHOSTUNREACH, "the host name could not be resolved" },
	{ -ENETUNREACH, "the network is unreachable" },
	{ -EBADMSG, "the answer is not valid HTTP" },
	{ -EMSGSIZE, "the answer is larger than 4 MiB" },
	{ -EKEYREJECTED, "the TLS certificate is not trusted or names another host (see ca-file)" },
	{ -EPROTO, "the TLS handshake failed" },
	{ -EAGAIN, "too many sign-in calls are in flight; try again shortly" },
};

const char *
auth_strerror(int status)
{
	for (size_t i = 0; i < sizeof(auth_errors) / sizeof(auth_errors[0]); i++)
		if (auth_errors[i].e == status)
			return auth_errors[i].what;
	return strerror(-status);
}

int
auth_post(struct lws_vhost *vh, const char *api_uri, const char *path, const cJSON *body,
    const char *ca_file, auth_done_fn done, void *ud, struct auth_request **ret)
{
	struct auth_request *r = calloc(1, sizeof(*r));
	lws_sock_file_fd_type fdu;
	pthread_attr_t attr;
	pthread_t tid;
	struct lws *wsi;
	int fds[2], e;

	if (r == NULL)
		return -ENOMEM;
	e = parse_uri(r, api_uri, path);
	if (e < 0)
		goto fail;
	r->body = json_print(body);
	r->ca_file = ca_file ? strdup(ca_file) : NULL;
	r->done = done;
	r->ud = ud;
	if (r->body == NULL || (ca_file && r->ca_file == NULL)) {
		e = -ENOMEM;
		goto fail;
	}
	if (atomic_fetch_add(&in_flight, 1) >= AUTH_MAX_IN_FLIGHT) {
		atomic_fetch_sub(&in_flight, 1);
		e = -EAGAIN;
		goto fail;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		e = -errno;
		goto fail_counted;
	}
	fdu.filefd = fds[0];
	wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fdu, auth_protocol.name, NULL);
	if (wsi == NULL) {
		close(fds[0]);
		close(fds[1]);
		e = -ENOMEM;
		goto fail_counted;
	}
	r->wfd = fds[1];
	atomic_store(&r->refs, 2);	/* the pipe's wsi and the thread */
	lws_set_opaque_user_data(wsi, r);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = -pthread_create(&tid, &attr, worker, r);
	pthread_attr_destroy(&attr);
	if (e < 0) {
		/* The read end sees the hang-up and lets go of its reference without reporting. */
		atomic_store(&r->cancelled, true);
		atomic_fetch_sub(&in_flight, 1);
		close(fds[1]);
		request_unref(r);
		return e;
	}
	if (ret)
		*ret = r;
	return 0;
fail_counted:
	atomic_fetch_sub(&in_flight, 1);
fail:
	request_free(r);
	return e;
}

void
auth_cancel(struct auth_request *r)
{
	if (r)
		atomic_store(&r->cancelled, true);
}
