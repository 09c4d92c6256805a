/* The fakes test-core links instead of libwebsockets, daemon/upstream.c,
 * ipc/ipc-server.c and daemon/auth.c: everything runs when the test says so. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/frame.h"
#include "ipc/ipc-protocol.h"
#include "store/util.h"
#include "tests/core/fakes.h"

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		abort();
	return p;
}

static char *
xstrdup0(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		abort();
	return d;
}

/* vasprintf, aborting on failure like the helpers above; the caller frees. */
static char * __attribute__((format(printf, 1, 0)))
xvasprintf(const char *fmt, va_list ap)
{
	char *text;

	if (vasprintf(&text, fmt, ap) < 0)
		abort();
	return text;
}

static cJSON *
parse_or_die(const char *json)
{
	cJSON *j = cJSON_Parse(json);

	if (j == NULL) {
		fprintf(stderr, "fakes: not JSON: %s\n", json);
		abort();
	}
	return j;
}

/* ---- the clock: lws_sul_* over a list of (due, order) entries ---- */

struct timer {
	lws_sorted_usec_list_t *sul;	/* borrowed: the core's */
	int64_t due;
	uint64_t order;
};

static struct timer *timers;		/* owned array */
static size_t ntimers, captimers;
static uint64_t timer_order;
static int64_t now_us;
/* A non-NULL owner is what lws_dll2_is_detached() tests; the list itself is ours. */
static struct lws_dll2_owner fake_owner;

int64_t
fake_now_us(void)
{
	return now_us;
}

/* Far from 0, as a monotonic clock is. */
#define MONO_BASE_US ((int64_t)1000000 * 1000000)

static int64_t read_cost_us;

void
fake_clock_cost(int64_t us)
{
	read_cost_us = us;
}

int64_t
__wrap_mono_us(void)
{
	now_us += read_cost_us;
	return MONO_BASE_US + now_us;
}

size_t
fake_clock_pending(void)
{
	return ntimers;
}

void
lws_sul_cancel(lws_sorted_usec_list_t *sul)
{
	for (size_t i = 0; i < ntimers; i++)
		if (timers[i].sul == sul) {
			memmove(&timers[i], &timers[i + 1], (ntimers - i - 1) * sizeof(*timers));
			ntimers--;
			break;
		}
	sul->list.owner = NULL;
	sul->list.prev = sul->list.next = NULL;
}

void
lws_sul_schedule(struct lws_context *ctx, int tsi, lws_sorted_usec_list_t *sul, sul_cb_t cb,
    lws_usec_t us)
{
	(void)ctx;
	(void)tsi;
	lws_sul_cancel(sul);
	if (us == LWS_SET_TIMER_USEC_CANCEL)
		return;
	if (ntimers == captimers) {
		captimers = captimers ? 2 * captimers : 32;
		timers = realloc(timers, captimers * sizeof(*timers));
		if (timers == NULL)
			abort();
	}
	sul->cb = cb;
	sul->us = now_us + us;
	sul->list.owner = &fake_owner;
	timers[ntimers++] = (struct timer){ .sul = sul, .due = now_us + us, .order = timer_order++ };
}

/* The earliest timer due at or before limit, or -1. */
static ssize_t
timer_next(int64_t limit)
{
	ssize_t best = -1;

	for (size_t i = 0; i < ntimers; i++) {
		if (timers[i].due > limit)
			continue;
		if (best < 0 || timers[i].due < timers[best].due ||
		    (timers[i].due == timers[best].due && timers[i].order < timers[best].order))
			best = (ssize_t)i;
	}
	return best;
}

void
fake_clock_advance(int64_t us)
{
	int64_t target = now_us + us;
	ssize_t i;

	while ((i = timer_next(target)) >= 0) {
		lws_sorted_usec_list_t *sul = timers[i].sul;

		if (timers[i].due > now_us)
			now_us = timers[i].due;
		lws_sul_cancel(sul);
		sul->cb(sul);
	}
	now_us = target;
}

void
fake_turn(void)
{
	fake_clock_advance(1000);
}

/* ---- the upstream session ---- */

static struct upstream *sessions;

static const char *const state_names[] = {
	[UPSTREAM_DISCONNECTED] = "disconnected",
	[UPSTREAM_RESOLVING] = "resolving",
	[UPSTREAM_CONNECTING] = "connecting",
	[UPSTREAM_OPENED] = "opened",
	[UPSTREAM_AUTHENTICATED] = "authenticated",
	[UPSTREAM_BACKOFF] = "backoff",
	[UPSTREAM_AUTH_FAILED] = "auth-failed",
	[UPSTREAM_APP_NOT_FOUND] = "app-not-found",
	[UPSTREAM_STOPPED] = "stopped",
};

const char *
upstream_state_name(enum upstream_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]) || state_names[s] == NULL)
		return "unknown";
	return state_names[s];
}

int
upstream_new(struct lws_context *ctx, struct lws_vhost *vh, const struct upstream_config *cfg,
    const struct upstream_callbacks *cb, void *ud, struct upstream **ret)
{
	struct upstream *u;

	(void)ctx;
	(void)vh;
	if (cfg->url == NULL || cfg->app_id == NULL ||
	    (strncmp(cfg->url, "ws://", 5) != 0 && strncmp(cfg->url, "wss://", 6) != 0))
		return -EINVAL;
	u = xcalloc(1, sizeof(*u));
	u->url = xstrdup0(cfg->url);
	u->app_id = xstrdup0(cfg->app_id);
	u->token = xstrdup0(cfg->refresh_token);
	u->cb = *cb;
	u->ud = ud;
	u->state = UPSTREAM_DISCONNECTED;
	if ((u->sent = cJSON_CreateArray()) == NULL)
		abort();
	u->next = sessions;
	sessions = u;
	*ret = u;
	return 0;
}

int
upstream_start(struct upstream *u)
{
	if (u->state == UPSTREAM_STOPPED)
		return -ESHUTDOWN;
	if (u->started)
		return -EALREADY;
	u->started = true;
	/* The real session reports RESOLVING from the loop too; the test moves it on. */
	u->state = UPSTREAM_RESOLVING;
	return 0;
}

int
upstream_send(struct upstream *u, const cJSON *msg)
{
	cJSON *copy;

	if (u->state != UPSTREAM_OPENED && u->state != UPSTREAM_AUTHENTICATED)
		return -ENOTCONN;
	if (!cJSON_IsObject(msg))
		return -EINVAL;
	if ((copy = cJSON_Duplicate(msg, 1)) == NULL)
		return -ENOMEM;
	cJSON_AddItemToArray(u->sent, copy);
	return 0;
}

size_t
upstream_queued_bytes(const struct upstream *u)
{
	(void)u;
	return 0;
}

void
upstream_pause_rx(struct upstream *u, bool pause)
{
	(void)u;
	(void)pause;
}

int
upstream_set_token(struct upstream *u, const char *refresh_token)
{
	free(u->token);
	u->token = xstrdup0(refresh_token);
	return 0;
}

void
upstream_reconnect_now(struct upstream *u)
{
	u->reconnects++;
}

static void
close_cb(lws_sorted_usec_list_t *sul)
{
	struct upstream *u = lws_container_of(sul, struct upstream, close_sul);

	u->state = UPSTREAM_STOPPED;
	if (u->cb.on_state)
		u->cb.on_state(u->ud, UPSTREAM_STOPPED, NULL);
	if (u->close_done)
		u->close_done(u->close_ud);
}

void
upstream_close(struct upstream *u, void (*done)(void *ud), void *ud)
{
	u->close_done = done;
	u->close_ud = ud;
	lws_sul_schedule(NULL, 0, &u->close_sul, close_cb, 1);
}

void
upstream_free(struct upstream *u)
{
	struct upstream **pp;

	if (u == NULL)
		return;
	lws_sul_cancel(&u->close_sul);
	for (pp = &sessions; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	free(u->url);
	free(u->app_id);
	free(u->token);
	free(u->app_status);
	cJSON_Delete(u->sent);
	free(u);
}

enum upstream_state
upstream_get_state(const struct upstream *u)
{
	return u->state;
}

cJSON *
upstream_status_json(const struct upstream *u)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "state", upstream_state_name(u->state));
	cJSON_AddStringToObject(o, "server", u->url);
	cJSON_AddStringToObject(o, "app-id", u->app_id);
	cJSON_AddBoolToObject(o, "guest", u->token == NULL);
	return o;
}

const char *
upstream_app_status(const struct upstream *u)
{
	return u->app_status;
}

void
upstream_transact_watch(struct upstream *u, int timeout_s)
{
	u->transact_watch_s = timeout_s;
}

int
upstream_backoff_delay_ms(unsigned attempt, int base_ms, int cap_ms, uint32_t rnd)
{
	(void)attempt;
	(void)base_ms;
	(void)cap_ms;
	(void)rnd;
	return 0;
}

void
upstream_redact(cJSON *v, const char *token)
{
	cJSON *c;

	if (v == NULL || token == NULL || *token == '\0')
		return;
	cJSON_ArrayForEach(c, v) {
		if (cJSON_IsString(c) && (strstr(c->valuestring, token) ||
		    (c->string && strcmp(c->string, "refresh-token") == 0)))
			cJSON_SetValuestring(c, "[redacted]");
		else
			upstream_redact(c, token);
	}
}

struct upstream *
fake_up_find(const char *app_id)
{
	for (struct upstream *u = sessions; u; u = u->next)
		if (app_id == NULL || strcmp(u->app_id, app_id) == 0)
			return u;
	return NULL;
}

size_t
fake_up_count(void)
{
	size_t n = 0;

	for (struct upstream *u = sessions; u; u = u->next)
		n++;
	return n;
}

void
fake_up_state(struct upstream *u, enum upstream_state st, const char *detail)
{
	u->state = st;
	if (u->cb.on_state)
		u->cb.on_state(u->ud, st, detail);
}

void
fake_up_deliver(struct upstream *u, const char *json)
{
	/* Parsed as the real session parses a frame (a large refresh-ok's
	 * computations stay text, daemon/frame.h). */
	_cleanup_free_ char *text = strdup(json);
	cJSON *msg = NULL;

	if (text == NULL || frame_parse(text, strlen(text), &msg) < 0) {
		fprintf(stderr, "fakes: not JSON: %s\n", json);
		abort();
	}
	if (u->cb.on_message)
		u->cb.on_message(u->ud, msg);
	cJSON_Delete(msg);
}

void
fake_up_deliverf(struct upstream *u, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	fake_up_deliver(u, text);
	free(text);
}

void
fake_up_connect(struct upstream *u, const char *attrs_json)
{
	fake_up_state(u, UPSTREAM_CONNECTING, NULL);
	fake_up_state(u, UPSTREAM_OPENED, NULL);
	fake_up_state(u, UPSTREAM_AUTHENTICATED, NULL);
	fake_up_deliverf(u, "{\"op\":\"init-ok\",\"session-id\":\"s-%d\",\"attrs\":%s,"
	    "\"app-status\":{\"status\":\"active\"},\"auth\":{\"user\":null}}", u->reconnects,
	    attrs_json ? attrs_json : "[]");
}

void
fake_up_drop(struct upstream *u)
{
	fake_up_state(u, UPSTREAM_BACKOFF, "the server closed the connection");
}

static bool
op_is(const cJSON *m, const char *op)
{
	const char *o = json_get_string(m, "op");

	return op == NULL || (o && strcmp(o, op) == 0);
}

const cJSON *
fake_up_take(struct upstream *u, const char *op)
{
	int n = cJSON_GetArraySize(u->sent);

	for (int i = u->taken; i < n; i++) {
		const cJSON *m = cJSON_GetArrayItem(u->sent, i);

		if (op_is(m, op)) {
			u->taken = i + 1;
			return m;
		}
	}
	return NULL;
}

int
fake_up_count_unread(struct upstream *u, const char *op)
{
	int n = cJSON_GetArraySize(u->sent), k = 0;

	for (int i = u->taken; i < n; i++)
		k += op_is(cJSON_GetArrayItem(u->sent, i), op);
	return k;
}

void
fake_up_skip(struct upstream *u)
{
	u->taken = cJSON_GetArraySize(u->sent);
}

/* ---- programs: the ipc conns ---- */

struct ipc_conn {
	const struct ipc_callbacks *cb;	/* borrowed */
	void *ud;			/* borrowed: the core */
	void *data;			/* borrowed: the core's client */
	cJSON *rx;			/* owned: every message the core sent, in order */
	bool *read;			/* owned: per message of rx */
	size_t nread_cap;
	bool closed;
	uint64_t id;
};

struct fake_conn {
	struct ipc_conn c;
};

static uint64_t conn_ids;

struct fake_conn *
fake_conn_open(const struct ipc_callbacks *cb, void *ud)
{
	struct fake_conn *fc = xcalloc(1, sizeof(*fc));

	fc->c.cb = cb;
	fc->c.ud = ud;
	fc->c.id = ++conn_ids;
	if ((fc->c.rx = cJSON_CreateArray()) == NULL)
		abort();
	if (cb->on_open)
		cb->on_open(ud, &fc->c);
	return fc;
}

static void
conn_record(struct ipc_conn *c, cJSON *msg)
{
	size_t n = (size_t)cJSON_GetArraySize(c->rx);

	if (n == c->nread_cap) {
		size_t cap = c->nread_cap ? 2 * c->nread_cap : 32;

		if ((c->read = realloc(c->read, cap * sizeof(*c->read))) == NULL)
			abort();
		c->nread_cap = cap;
	}
	c->read[n] = false;
	cJSON_AddItemToArray(c->rx, msg);
}

void
fake_conn_request(struct fake_conn *fc, const char *json)
{
	cJSON *msg = parse_or_die(json);
	char *err = NULL;
	int r = ipc_protocol_check(msg, &err);

	if (r < 0) {
		const cJSON *id = json_get(msg, "client-event-id");

		(void)ipc_conn_send_error(&fc->c, cJSON_IsString(id) ? id->valuestring : NULL,
		    ipc_protocol_error_type(r), err ? err : "out of memory");
		free(err);
	} else if (!fc->c.closed && fc->c.cb->on_request) {
		fc->c.cb->on_request(fc->c.ud, &fc->c, msg);
	}
	cJSON_Delete(msg);
}

void
fake_conn_requestf(struct fake_conn *fc, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	fake_conn_request(fc, text);
	free(text);
}

static bool
conn_match(const cJSON *m, const char *op, const char *ceid)
{
	const char *id = json_get_string(m, "client-event-id");

	return op_is(m, op) && (ceid == NULL || (id && strcmp(id, ceid) == 0));
}

const cJSON *
fake_conn_take(struct fake_conn *fc, const char *op, const char *ceid)
{
	int n = cJSON_GetArraySize(fc->c.rx);

	for (int i = 0; i < n; i++) {
		const cJSON *m = cJSON_GetArrayItem(fc->c.rx, i);

		if (!fc->c.read[i] && conn_match(m, op, ceid)) {
			fc->c.read[i] = true;
			return m;
		}
	}
	return NULL;
}

int
fake_conn_count(struct fake_conn *fc, const char *op, const char *ceid)
{
	int n = cJSON_GetArraySize(fc->c.rx), k = 0;

	for (int i = 0; i < n; i++)
		k += !fc->c.read[i] && conn_match(cJSON_GetArrayItem(fc->c.rx, i), op, ceid);
	return k;
}

void
fake_conn_skip(struct fake_conn *fc)
{
	int n = cJSON_GetArraySize(fc->c.rx);

	for (int i = 0; i < n; i++)
		fc->c.read[i] = true;
}

bool
fake_conn_closed(const struct fake_conn *fc)
{
	return fc->c.closed;
}

void
fake_conn_abandon(struct fake_conn *fc)
{
	if (fc == NULL)
		return;
	cJSON_Delete(fc->c.rx);
	free(fc->c.read);
	free(fc);
}

void
fake_conn_free(struct fake_conn *fc)
{
	if (fc == NULL)
		return;
	if (fc->c.cb->on_close)
		fc->c.cb->on_close(fc->c.ud, &fc->c);
	fake_conn_abandon(fc);
}

int
ipc_conn_send(struct ipc_conn *c, const cJSON *msg)
{
	cJSON *copy;

	if (c->closed)
		return -EPIPE;
	if ((copy = cJSON_Duplicate(msg, 1)) == NULL)
		return -ENOMEM;
	conn_record(c, copy);
	return 0;
}

int
ipc_conn_send_text(struct ipc_conn *c, const char *json, size_t len)
{
	cJSON *msg;

	if (c->closed)
		return -EPIPE;
	/* What the core prints must be one JSON value, as a program parses it. */
	msg = cJSON_ParseWithLength(json, len);
	if (msg == NULL) {
		fprintf(stderr, "fakes: the core sent text that is not JSON: %.*s\n", (int)len, json);
		abort();
	}
	conn_record(c, msg);
	return 0;
}

int
ipc_conn_send_error(struct ipc_conn *c, const char *client_event_id, const char *type,
    const char *message)
{
	cJSON *e = cJSON_CreateObject();
	int r;

	if (e == NULL)
		return -ENOMEM;
	cJSON_AddStringToObject(e, "op", "error");
	if (client_event_id)
		cJSON_AddStringToObject(e, "client-event-id", client_event_id);
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddStringToObject(e, "message", message);
	r = ipc_conn_send(c, e);
	cJSON_Delete(e);
	return r;
}

void
ipc_conn_close(struct ipc_conn *c)
{
	c->closed = true;
}

void
ipc_conn_close_after_flush(struct ipc_conn *c)
{
	c->closed = true;
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

uint64_t
ipc_conn_id(const struct ipc_conn *c)
{
	return c->id;
}

size_t
ipc_conn_queued(const struct ipc_conn *c)
{
	(void)c;
	return 0;
}

/* ---- sign-in ---- */

static int auth_calls;

int
fake_auth_calls(void)
{
	return auth_calls;
}

int
auth_post(struct lws_vhost *vh, const char *api_uri, const char *path, const cJSON *body,
    const char *ca_file, auth_done_fn done, void *ud, struct auth_request **ret)
{
	(void)vh;
	(void)api_uri;
	(void)path;
	(void)body;
	(void)ca_file;
	(void)done;
	(void)ud;
	*ret = NULL;
	auth_calls++;
	return -ENETUNREACH;
}

void
auth_cancel(struct auth_request *r)
{
	(void)r;
}

const char *
auth_strerror(int status)
{
	return strerror(-status);
}
