/* Rooms for local programs: presence and broadcast. Each program that joins a
 * room gets an upstream session of its own, so it is its own peer to the room. */
#ifndef INSTANTD_ROOMS_H
#define INSTANTD_ROOMS_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "daemon/upstream.h"
#include "ipc/ipc-server.h"

/* One program's rooms and its presence session; owns both. */
struct rooms;

/* What the presence session needs to reach the server; strings are copied. */
struct rooms_config {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	const char *server, *app_id, *token, *ca_file;
	int backoff_base_ms, backoff_cap_ms, ping_interval_s, idle_timeout_s;
	int connect_timeout_s;	/* 0: upstream's default */
};

/* rooms for the program behind conn (borrowed; must outlive the rooms). */
int rooms_new(const struct rooms_config *cfg, struct ipc_conn *conn, struct rooms **ret);
/* Leaves every room (the presence session closes) and frees. NULL-safe. */
void rooms_free(struct rooms *r);

/* The local ops join-room, leave-room, set-presence and client-broadcast;
 * each answers the program itself. */
void rooms_request(struct rooms *r, const char *op, const cJSON *msg, const char *ceid);

/* Apply patch-presence edits ([path, "+"|"-"|"r", value?]...) to a peers map
 * in place, as the JS client does. 0, -EINVAL (a malformed edit; earlier
 * edits stay applied), -ENOMEM. */
int rooms_apply_edits(cJSON *peers, const cJSON *edits);

#endif
