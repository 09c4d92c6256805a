/* Link-time fakes for the core's unit tests: a virtual clock behind lws_sul_*,
 * an upstream session the test drives (daemon/upstream.h), ipc conns that
 * record what the core sends (ipc/ipc-server.h), and an auth that never runs. */
#ifndef INSTANTD_TESTS_CORE_FAKES_H
#define INSTANTD_TESTS_CORE_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "daemon/upstream.h"
#include "ipc/ipc-server.h"

/* ---- the clock ---- */

/* Virtual microseconds since the test began. */
int64_t fake_now_us(void);
/* Move time forward by us, running every timer that falls due on the way, in
 * due order (equal times in the order they were scheduled), including those
 * the callbacks schedule. */
void fake_clock_advance(int64_t us);
/* One loop turn: what is due within the next millisecond (the core's
 * "after this turn" timers are 1 us). */
void fake_turn(void);
/* From now on every read of the core's clock takes us of virtual time (no
 * timer runs meanwhile): work the core times, a render say, costs that much. */
void fake_clock_cost(int64_t us);
/* Timers scheduled now. */
size_t fake_clock_pending(void);
/* The core's mono_us() (store/util.h), redirected here with -Wl,--wrap=mono_us
 * so its own time checks follow the virtual clock too. */
int64_t __wrap_mono_us(void);

/* ---- the upstream session ---- */

/* What a fake session keeps; the test reads it, the core only sees the header. */
struct upstream {
	struct upstream *next;			/* the registry */
	char *url, *app_id, *token;		/* owned */
	struct upstream_callbacks cb;
	void *ud;				/* borrowed: the core's profile */
	enum upstream_state state;
	bool started;
	cJSON *sent;				/* owned: every message upstream_send took, in order */
	int taken;				/* how many of sent fake_up_take has consumed */
	int reconnects;				/* upstream_reconnect_now calls */
	int transact_watch_s;
	char *app_status;			/* owned, may be NULL */
	void (*close_done)(void *);
	void *close_ud;
	lws_sorted_usec_list_t close_sul;
};

/* The newest live session for app_id (NULL: any app), or NULL. */
struct upstream *fake_up_find(const char *app_id);
/* Live sessions. */
size_t fake_up_count(void);
/* Report a state change through the core's on_state. */
void fake_up_state(struct upstream *u, enum upstream_state st, const char *detail);
/* Deliver one server message (JSON text, which must parse) through on_message. */
void fake_up_deliver(struct upstream *u, const char *json);
/* printf-style deliver. */
void fake_up_deliverf(struct upstream *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* CONNECTING, OPENED, AUTHENTICATED, then the init-ok with attrs (JSON array text). */
void fake_up_connect(struct upstream *u, const char *attrs_json);
/* The connection dropped: BACKOFF with a detail, as the real session reports it. */
void fake_up_drop(struct upstream *u);
/* The next message sent since the last take whose op is op (NULL: any); the
 * messages before it are skipped. Borrowed from u, NULL when none. */
const cJSON *fake_up_take(struct upstream *u, const char *op);
/* Messages sent since the last take with this op (NULL: any), not consumed. */
int fake_up_count_unread(struct upstream *u, const char *op);
/* Skip everything sent so far. */
void fake_up_skip(struct upstream *u);

/* ---- programs ---- */

struct fake_conn;

/* A program connected to the core: on_open has run. */
struct fake_conn *fake_conn_open(const struct ipc_callbacks *cb, void *ud);
/* Send one request (JSON text): checked with ipc_protocol_check as the
 * server does (a failure is answered with its error), then on_request. */
void fake_conn_request(struct fake_conn *fc, const char *json);
void fake_conn_requestf(struct fake_conn *fc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The next unread message with this op (NULL: any) and client-event-id (NULL:
 * any); earlier unread ones stay unread. Borrowed, NULL when none. Marks it read. */
const cJSON *fake_conn_take(struct fake_conn *fc, const char *op, const char *ceid);
/* Unread messages with this op (NULL: any) and client-event-id (NULL: any). */
int fake_conn_count(struct fake_conn *fc, const char *op, const char *ceid);
/* Mark everything received so far read. */
void fake_conn_skip(struct fake_conn *fc);
/* Whether the core closed it (ipc_conn_close). */
bool fake_conn_closed(const struct fake_conn *fc);
/* Disconnect: on_close, then free. NULL-safe. */
void fake_conn_free(struct fake_conn *fc);
/* Forget the conn without on_close (after sync_free, which drops its clients). */
void fake_conn_abandon(struct fake_conn *fc);

/* ---- sign-in ---- */

/* auth_post calls so far (they fail with -ENETUNREACH: sign-in is not under test). */
int fake_auth_calls(void);

#endif
