/* libinstantd.c: the client side of the instantd local protocol: a
 * non-blocking NDJSON connection, request helpers and a blocking request. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc/instantd.h"

struct instantd_client {
	int fd;
	struct instantd_callbacks cb;
	void *ud;

	/* Input: unparsed bytes; [0, in_scan) is known to hold no '\n', so a
	 * long message is scanned once. */
	char *in;
	size_t in_len, in_cap, in_scan;

	/* Output: [out_off, out_len) is still to be written. */
	char *out;
	size_t out_len, out_cap, out_off;

	bool closed;
	int close_reason;
	bool in_callback;	/* dispatching: re-entering the reader is refused */

	/* instantd_request_sync() in progress: the id it waits for and the
	 * reply once seen (owned). */
	const char *sync_id;
	cJSON *sync_reply;
};

int
instantd_default_socket_path(char **ret)
{
	const char *e = getenv("INSTANTD_SOCKET");
	char *s;

	if (e != NULL && e[0] != '\0') {
		s = strdup(e);
	} else {
		e = getenv("XDG_RUNTIME_DIR");
		if (e == NULL || e[0] == '\0')
			return -ENOENT;
		if (asprintf(&s, "%s/instantd/socket", e) < 0)
			s = NULL;
	}
	if (s == NULL)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int
instantd_connect(const char *path, struct instantd_client **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct instantd_client *c;
	char *def = NULL;
	int fd, r;

	if (path == NULL) {
		r = instantd_default_socket_path(&def);
		if (r < 0)
			return r;
		path = def;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		free(def);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	free(def);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* Only our own daemon: whoever else listens there would see our
	 * queries, writes and tokens. */
	{
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
			close(fd);
			return -EPERM;
		}
	}
	r = fcntl(fd, F_GETFL);
	if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	*ret = c;
	return 0;
}

void
instantd_free(struct instantd_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	cJSON_Delete(c->sync_reply);
	free(c->in);
	free(c->out);
	free(c);
}

void
instantd_set_callbacks(struct instantd_client *c, const struct instantd_callbacks *cb, void *ud)
{
	if (cb != NULL)
		c->cb = *cb;
	else
		memset(&c->cb, 0, sizeof(c->cb));
	c->ud = ud;
}

int
instantd_fd(const struct instantd_client *c)
{
	return c->fd;
}

bool
instantd_wants_write(const struct instantd_client *c)
{
	return !c->closed && c->out_off < c->out_len;
}

const char *
instantd_msg_op(const cJSON *msg)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "op");

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *
instantd_msg_id(const cJSON *msg)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "client-event-id");

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
instantd_is_error(const cJSON *msg)
{
	const char *op = instantd_msg_op(msg);

	return op != NULL && strcmp(op, "error") == 0;
}

static void
instantd_mark_closed(struct instantd_client *c, int reason)
{
	if (c->closed)
		return;
	c->closed = true;
	c->close_reason = reason;
	if (c->cb.on_disconnect != NULL) {
		bool was = c->in_callback;

		c->in_callback = true;
		c->cb.on_disconnect(c, reason, c->ud);
		c->in_callback = was;
	}
}

/* ---- output ---- */

int
instantd_flush(struct instantd_client *c)
{
	if (c->closed)
		return c->close_reason;
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			if (errno == EPIPE) {
				/* The daemon stopped reading, typically after a fatal
				 * error (too-large) that is waiting unread in our input:
				 * drop the output and let the reader deliver that error
				 * and then the end of the stream. */
				c->out_off = c->out_len = 0;
				return 0;
			}
			instantd_mark_closed(c, -errno);
			return c->close_reason;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static int
instantd_queue(struct instantd_client *c, const char *s, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *nb;

		/* Reclaim what was already written before growing. */
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + n + 1)
			cap *= 2;
		if (cap > c->out_cap) {
			nb = realloc(c->out, cap);
			if (nb == NULL)
				return -ENOMEM;
			c->out = nb;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	return 0;
}

static int
instantd_new_id(char out[37])
{
	uint8_t b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	    b[13], b[14], b[15]);
	return 0;
}

int
instantd_send(struct instantd_client *c, const cJSON *msg, char **ret_id)
{
	cJSON *copy = NULL;
	const char *id;
	char idbuf[37];
	char *text, *idcopy = NULL;
	int r;

	if (c->closed)
		return c->close_reason;
	if (!cJSON_IsObject(msg))
		return -EINVAL;
	id = instantd_msg_id(msg);
	if (id == NULL) {
		r = instantd_new_id(idbuf);
		if (r < 0)
			return r;
		copy = cJSON_Duplicate(msg, 1);
		if (copy == NULL)
			return -ENOMEM;
		cJSON_DeleteItemFromObjectCaseSensitive(copy, "client-event-id");
		if (cJSON_AddStringToObject(copy, "client-event-id", idbuf) == NULL) {
			cJSON_Delete(copy);
			return -ENOMEM;
		}
		id = idbuf;
	}
	if (ret_id != NULL) {
		idcopy = strdup(id);
		if (idcopy == NULL) {
			cJSON_Delete(copy);
			return -ENOMEM;
		}
	}
	text = cJSON_PrintUnformatted(copy != NULL ? copy : msg);
	cJSON_Delete(copy);
	if (text == NULL) {
		free(idcopy);
		return -ENOMEM;
	}
	r = instantd_queue(c, text, strlen(text));
	cJSON_free(text);
	if (r < 0) {
		free(idcopy);
		return r;
	}
	r = instantd_flush(c);
	if (r < 0 && r != -EAGAIN) {
		free(idcopy);
		return r;
	}
	if (ret_id != NULL)
		*ret_id = idcopy;
	return 0;
}

/* ---- input ---- */

static bool
instantd_is(const char *op, const char *name)
{
	return op != NULL && strcmp(op, name) == 0;
}

static void
instantd_deliver(struct instantd_client *c, const cJSON *msg)
{
	const char *op = instantd_msg_op(msg);
	const char *id = instantd_msg_id(msg);

	if (c->cb.on_message != NULL)
		c->cb.on_message(c, msg, c->ud);
	if (instantd_is(op, "error")) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(msg, "type");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "message");

		if (c->cb.on_error != NULL)
			c->cb.on_error(c, id, cJSON_IsString(t) ? t->valuestring : "internal",
			    cJSON_IsString(m) ? m->valuestring : "", msg, c->ud);
	} else if (instantd_is(op, "add-query-ok") || instantd_is(op, "refresh-ok") ||
	    instantd_is(op, "query-ok")) {
		if (c->cb.on_result != NULL)
			c->cb.on_result(c, id, cJSON_GetObjectItemCaseSensitive(msg, "data"), msg,
			    c->ud);
	} else if (id == NULL || instantd_is(op, "refresh-presence") ||
	    instantd_is(op, "server-broadcast")) {
		if (c->cb.on_push != NULL)
			c->cb.on_push(c, op != NULL ? op : "", msg, c->ud);
	} else {
		if (c->cb.on_reply != NULL)
			c->cb.on_reply(c, id, op != NULL ? op : "", msg, c->ud);
	}
}

/* Handle one line. Returns 1 when it was the reply a sync request waits
 * for (the caller then stops), 0 otherwise, negative on a bad message. */
static int
instantd_handle_line(struct instantd_client *c, const char *line, size_t len)
{
	cJSON *msg;
	size_t i;

	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'); i++)
		;
	if (i == len)
		return 0;
	msg = cJSON_ParseWithLength(line, len);
	if (msg == NULL || !cJSON_IsObject(msg)) {
		cJSON_Delete(msg);
		return -EBADMSG;
	}
	if (c->sync_id != NULL && c->sync_reply == NULL) {
		const char *id = instantd_msg_id(msg);

		if (id != NULL && strcmp(id, c->sync_id) == 0) {
			c->sync_reply = msg;
			return 1;
		}
	}
	c->in_callback = true;
	instantd_deliver(c, msg);
	c->in_callback = false;
	cJSON_Delete(msg);
	return 0;
}

/* Dispatch complete lines already buffered. */
static int
instantd_process(struct instantd_client *c)
{
	int count = 0;

	for (;;) {
		char *nl;
		size_t k;
		int r;

		if (c->closed)
			return c->close_reason;
		if (c->sync_id != NULL && c->sync_reply != NULL)
			return count;
		nl = c->in_scan < c->in_len ?
		    memchr(c->in + c->in_scan, '\n', c->in_len - c->in_scan) : NULL;
		if (nl == NULL) {
			c->in_scan = c->in_len;
			if (c->in_len > INSTANTD_MAX_MESSAGE) {
				instantd_mark_closed(c, -EMSGSIZE);
				return -EMSGSIZE;
			}
			return count;
		}
		k = (size_t)(nl - c->in);
		r = instantd_handle_line(c, c->in, k);
		memmove(c->in, nl + 1, c->in_len - k - 1);
		c->in_len -= k + 1;
		c->in_scan = 0;
		if (r < 0) {
			instantd_mark_closed(c, r);
			return r;
		}
		count++;
	}
}

static bool
instantd_has_line(const struct instantd_client *c)
{
	return c->in_scan < c->in_len && memchr(c->in + c->in_scan, '\n', c->in_len - c->in_scan);
}

bool
instantd_has_pending(const struct instantd_client *c)
{
	return !c->closed && instantd_has_line(c);
}

int
instantd_dispatch(struct instantd_client *c)
{
	int count = 0, r;

	if (c->in_callback)
		return -EBUSY;
	if (c->closed)
		return c->close_reason;
	/* Lines left over after a sync reply come first. */
	r = instantd_process(c);
	if (r < 0)
		return r;
	count += r;
	if (c->sync_id != NULL && c->sync_reply != NULL)
		return count;
	for (;;) {
		ssize_t n;

		if (c->in_cap - c->in_len < 65536) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
			char *nb = realloc(c->in, cap);

			if (nb == NULL)
				return -ENOMEM;
			c->in = nb;
			c->in_cap = cap;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return count;
			/* A Unix socket reports a close with our data still
			 * unread as a reset (after the data it did send): to
			 * the caller that is the daemon closing, as at EOF. */
			instantd_mark_closed(c, errno == ECONNRESET ? -EPIPE : -errno);
			return c->close_reason;
		}
		if (n == 0) {
			instantd_mark_closed(c, -EPIPE);
			return -EPIPE;
		}
		c->in_len += (size_t)n;
		r = instantd_process(c);
		if (r < 0)
			return r;
		count += r;
		if (c->sync_id != NULL && c->sync_reply != NULL)
			return count;
		/* Stop reading once a little was handled, so a flood cannot keep us here. */
		if (count > 0 && (size_t)n < c->in_cap - c->in_len)
			return count;
	}
}

int
instantd_wait(struct instantd_client *c, int timeout_ms)
{
	struct pollfd pfd;
	int r;

	if (c->in_callback)
		return -EBUSY;
	if (c->closed)
		return c->close_reason;
	if (instantd_has_line(c))
		return instantd_dispatch(c);
	pfd.fd = c->fd;
	pfd.events = POLLIN | (instantd_wants_write(c) ? POLLOUT : 0);
	pfd.revents = 0;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	if (pfd.revents & POLLOUT) {
		r = instantd_flush(c);
		if (r < 0 && r != -EAGAIN)
			return r;
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		return instantd_dispatch(c);
	return 0;
}

static int64_t
instantd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
instantd_request_sync(struct instantd_client *c, const cJSON *msg, int timeout_ms,
    cJSON **ret_reply)
{
	int64_t deadline = timeout_ms >= 0 ? instantd_now_ms() + timeout_ms : 0;
	char *id = NULL;
	int r;

	/* From a callback: the reader is in the middle of its buffer. */
	if (c->sync_id != NULL || c->in_callback)
		return -EBUSY;
	r = instantd_send(c, msg, &id);
	if (r < 0)
		return r;
	c->sync_id = id;
	for (;;) {
		int left = -1;

		if (c->sync_reply != NULL) {
			*ret_reply = c->sync_reply;
			c->sync_reply = NULL;
			r = 0;
			break;
		}
		if (timeout_ms >= 0) {
			int64_t d = deadline - instantd_now_ms();

			if (d <= 0) {
				r = -ETIMEDOUT;
				break;
			}
			left = d > INT32_MAX ? INT32_MAX : (int)d;
		}
		r = instantd_wait(c, left);
		if (r < 0)
			break;
	}
	c->sync_id = NULL;
	free(id);
	return r;
}

/* ---- request helpers ---- */

static int
instantd_build_send(struct instantd_client *c, cJSON *m, char **ret_id)
{
	int r;

	if (m == NULL)
		return -ENOMEM;
	r = instantd_send(c, m, ret_id);
	cJSON_Delete(m);
	return r;
}

static cJSON *
instantd_req(const char *op)
{
	cJSON *m = cJSON_CreateObject();

	if (m != NULL && cJSON_AddStringToObject(m, "op", op) == NULL) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/* Add key: value (a string, skipped when NULL). False on ENOMEM. */
static bool
instantd_add_str(cJSON *m, const char *key, const char *v)
{
	return v == NULL || cJSON_AddStringToObject(m, key, v) != NULL;
}

/* Add a deep copy of v (skipped when NULL). False on ENOMEM. */
static bool
instantd_add_copy(cJSON *m, const char *key, const cJSON *v)
{
	cJSON *d;

	if (v == NULL)
		return true;
	d = cJSON_Duplicate(v, 1);
	if (d == NULL)
		return false;
	if (!cJSON_AddItemToObject(m, key, d)) {
		cJSON_Delete(d);
		return false;
	}
	return true;
}

#define BUILD_OR_FAIL(m, cond) do { \
	if ((m) == NULL || !(cond)) { \
		cJSON_Delete(m); \
		return -ENOMEM; \
	} \
} while (0)

int
instantd_init(struct instantd_client *c, const char *app_id, const char *api_uri,
    const char *refresh_token, char **ret_id)
{
	cJSON *m = instantd_req("init");

	if (app_id == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "app-id", app_id) &&
	    instantd_add_str(m, "api-uri", api_uri) &&
	    instantd_add_str(m, "refresh-token", refresh_token));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_init_with(struct instantd_client *c, const struct instantd_init_options *o,
    char **ret_id)
{
	cJSON *m;

	if (o == NULL || (o->app_id == NULL && o->profile == NULL))
		return -EINVAL;
	m = instantd_req("init");
	BUILD_OR_FAIL(m, instantd_add_str(m, "app-id", o->app_id) &&
	    instantd_add_str(m, "profile", o->profile) &&
	    instantd_add_str(m, "server", o->server) &&
	    instantd_add_str(m, "api-uri", o->api_uri) &&
	    instantd_add_str(m, "refresh-token", o->refresh_token) &&
	    instantd_add_str(m, "client-name", o->client_name));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_uuid(char out[37])
{
	return instantd_new_id(out);
}

const cJSON *
instantd_result_data(const cJSON *msg)
{
	return cJSON_GetObjectItemCaseSensitive(msg, "data");
}

bool
instantd_result_from_cache(const cJSON *msg)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "from-cache"));
}

bool
instantd_result_has_pending_writes(const cJSON *msg)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "has-pending-writes"));
}

bool
instantd_result_partial(const cJSON *msg)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "partial"));
}

int
instantd_add_query(struct instantd_client *c, const cJSON *q, char **ret_id)
{
	cJSON *m = instantd_req("add-query");

	if (!cJSON_IsObject(q)) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_copy(m, "q", q));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_remove_query(struct instantd_client *c, const char *query_id, char **ret_id)
{
	cJSON *m = instantd_req("remove-query");

	if (query_id == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "client-event-id", query_id));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_query_once(struct instantd_client *c, const cJSON *q, const char *policy,
    char **ret_id)
{
	cJSON *m = instantd_req("query-once");

	if (!cJSON_IsObject(q)) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_copy(m, "q", q) && instantd_add_str(m, "policy", policy));
	return instantd_build_send(c, m, ret_id);
}

static int
instantd_transact_key(struct instantd_client *c, const char *key, const cJSON *arr,
    char **ret_id)
{
	cJSON *m = instantd_req("transact");

	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_copy(m, key, arr));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_transact(struct instantd_client *c, const cJSON *ops, char **ret_id)
{
	return instantd_transact_key(c, "ops", ops, ret_id);
}

int
instantd_transact_steps(struct instantd_client *c, const cJSON *steps, char **ret_id)
{
	return instantd_transact_key(c, "tx-steps", steps, ret_id);
}

int
instantd_list_mutations(struct instantd_client *c, char **ret_id)
{
	return instantd_build_send(c, instantd_req("list-mutations"), ret_id);
}

static int
instantd_mutation_op(struct instantd_client *c, const char *op, const char *mutation_id,
    char **ret_id)
{
	cJSON *m = instantd_req(op);

	if (mutation_id == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "mutation-id", mutation_id));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_retry_mutation(struct instantd_client *c, const char *mutation_id, char **ret_id)
{
	return instantd_mutation_op(c, "retry-mutation", mutation_id, ret_id);
}

int
instantd_discard_mutation(struct instantd_client *c, const char *mutation_id, char **ret_id)
{
	return instantd_mutation_op(c, "discard-mutation", mutation_id, ret_id);
}

int
instantd_join_room(struct instantd_client *c, const char *room_id, const char *room_type,
    const cJSON *presence, char **ret_id)
{
	cJSON *m = instantd_req("join-room");

	if (room_id == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "room-id", room_id) &&
	    instantd_add_str(m, "room-type", room_type) && instantd_add_copy(m, "data", presence));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_leave_room(struct instantd_client *c, const char *room_id, char **ret_id)
{
	cJSON *m = instantd_req("leave-room");

	if (room_id == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "room-id", room_id));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_set_presence(struct instantd_client *c, const char *room_id, const cJSON *data,
    char **ret_id)
{
	cJSON *m = instantd_req("set-presence");

	if (room_id == NULL || !cJSON_IsObject(data)) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "room-id", room_id) &&
	    instantd_add_copy(m, "data", data));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_broadcast(struct instantd_client *c, const char *room_id, const char *topic,
    const cJSON *data, char **ret_id)
{
	cJSON *m = instantd_req("client-broadcast");

	if (room_id == NULL || topic == NULL || data == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "room-id", room_id) &&
	    instantd_add_str(m, "topic", topic) && instantd_add_copy(m, "data", data));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_status(struct instantd_client *c, char **ret_id)
{
	return instantd_build_send(c, instantd_req("status"), ret_id);
}

int
instantd_watch_status(struct instantd_client *c, bool enabled, char **ret_id)
{
	cJSON *m = instantd_req("watch-status");

	BUILD_OR_FAIL(m, cJSON_AddBoolToObject(m, "enabled", enabled) != NULL);
	return instantd_build_send(c, m, ret_id);
}

int
instantd_send_magic_code(struct instantd_client *c, const char *email, char **ret_id)
{
	cJSON *m = instantd_req("send-magic-code");

	if (email == NULL) {
		cJSON_Delete(m);
		return -EINVAL;
	}
	BUILD_OR_FAIL(m, instantd_add_str(m, "email", email));
	return instantd_build_send(c, m, ret_id);
}

static int
instantd_sign_in(struct instantd_client *c, const char *method, const char *email,
    const char *code, const char *token, char **ret_id)
{
	cJSON *m = instantd_req("sign-in");

	BUILD_OR_FAIL(m, instantd_add_str(m, "method", method) &&
	    instantd_add_str(m, "email", email) && instantd_add_str(m, "code", code) &&
	    instantd_add_str(m, "refresh-token", token));
	return instantd_build_send(c, m, ret_id);
}

int
instantd_sign_in_magic_code(struct instantd_client *c, const char *email, const char *code,
    char **ret_id)
{
	if (email == NULL || code == NULL)
		return -EINVAL;
	return instantd_sign_in(c, "magic-code", email, code, NULL, ret_id);
}

int
instantd_sign_in_guest(struct instantd_client *c, char **ret_id)
{
	return instantd_sign_in(c, "guest", NULL, NULL, NULL, ret_id);
}

int
instantd_sign_in_token(struct instantd_client *c, const char *refresh_token, char **ret_id)
{
	if (refresh_token == NULL)
		return -EINVAL;
	return instantd_sign_in(c, "token", NULL, NULL, refresh_token, ret_id);
}

int
instantd_sign_out(struct instantd_client *c, char **ret_id)
{
	return instantd_build_send(c, instantd_req("sign-out"), ret_id);
}

int
instantd_whoami(struct instantd_client *c, char **ret_id)
{
	return instantd_build_send(c, instantd_req("whoami"), ret_id);
}
