/* HTTP POSTs to the server's auth endpoints on a worker thread: a small
 * blocking HTTP/1.1 client (TLS through OpenSSL) whose answer reaches the
 * loop through a pipe adopted into lws. */
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
#include <sys/time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "daemon/auth.h"
#include "store/util.h"

#define AUTH_TIMEOUT_S		20
#define AUTH_MAX_REPLY		(4 << 20)

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
};

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

static int
tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *res, *ai;
	struct timeval tv = { .tv_sec = AUTH_TIMEOUT_S };
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : -ECONNREFUSED;
}

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static ssize_t
conn_write(struct conn *c, const char *buf, size_t len)
{
	if (c->ssl)
		return SSL_write(c->ssl, buf, (int)len) > 0 ? (ssize_t)len : -1;
	return send(c->fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t
conn_read(struct conn *c, char *buf, size_t len)
{
	if (c->ssl) {
		int n = SSL_read(c->ssl, buf, (int)len);

		if (n > 0)
			return n;
		return SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : (n == 0 ? 0 : -1);
	}
	return recv(c->fd, buf, len, 0);
}

static int
tls_start(struct conn *c, const struct auth_request *r)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		return -ENOMEM;
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
		return -EIO;
	if (r->ca_file && SSL_CTX_load_verify_locations(c->ctx, r->ca_file, NULL) != 1)
		return -ENOENT;
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL)
		return -ENOMEM;
	SSL_set_tlsext_host_name(c->ssl, r->host);
	if (SSL_set1_host(c->ssl, r->host) != 1)
		return -EINVAL;
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1 || SSL_get_verify_result(c->ssl) != X509_V_OK)
		return -EPROTO;	/* certificate not trusted or wrong host: never ignored */
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

static int
http_post(struct auth_request *r)
{
	struct conn c = { .fd = -1 };
	char *req = NULL, *buf = NULL, *hdr_end, *body;
	size_t len = 0, cap = 65536;
	int e = 0;

	c.fd = tcp_connect(r->host, r->port);
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
	if (conn_write(&c, req, strlen(req)) < 0) {
		e = -EIO;
		goto out;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		e = -ENOMEM;
		goto out;
	}
	for (;;) {
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
			e = -ETIMEDOUT;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/%*d.%*d %d", &r->status) != 1 || (hdr_end = strstr(buf, "\r\n\r\n")) == NULL) {
		e = -EBADMSG;
		goto out;
	}
	*hdr_end = '\0';
	body = hdr_end + 4;
	len -= (size_t)(body - buf);
	if (strcasestr(buf, "\r\ntransfer-encoding: chunked")) {
		ssize_t n = dechunk(body, len);

		if (n < 0) {
			e = (int)n;
			goto out;
		}
		len = (size_t)n;
	}
	r->reply = strndup(body, len);
	if (r->reply == NULL)
		e = -ENOMEM;
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	SSL_CTX_free(c.ctx);
	if (c.fd >= 0)
		close(c.fd);
	if (req)
		explicit_bzero(req, strlen(req));
	free(req);
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
	/* After this write the loop owns r again (and may free it at once). */
	if (write(wfd, &one, 1) < 0) {
		/* The loop side is gone; nothing can be reported. */
	}
	close(wfd);
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
		request_free(r);
		return -1;	/* lws closes the read end */
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (r) {
			/* Closed before the answer came (context teardown). */
			lws_set_opaque_user_data(wsi, NULL);
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
	if (pipe2(fds, O_CLOEXEC) < 0) {
		e = -errno;
		goto fail;
	}
	fdu.filefd = fds[0];
	wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fdu, auth_protocol.name, NULL);
	if (wsi == NULL) {
		close(fds[0]);
		close(fds[1]);
		e = -ENOMEM;
		goto fail;
	}
	lws_set_opaque_user_data(wsi, r);
	r->wfd = fds[1];
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = -pthread_create(&tid, &attr, worker, r);
	pthread_attr_destroy(&attr);
	if (e < 0) {
		/* The loop side sees EOF and frees r without reporting. */
		atomic_store(&r->cancelled, true);
		close(fds[1]);
		return e;
	}
	if (ret)
		*ret = r;
	return 0;
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
