/* Rooms for local programs: one presence session per program, re-joined with
 * the program's latest presence after every reconnect. Ephemeral data is
 * never queued: a broadcast while offline is refused. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "daemon/log.h"
#include "daemon/rooms.h"
#include "ipc/ipc-protocol.h"
#include "store/util.h"

struct room {
	LIST_ENTRY(room) entry;
	char *id;		/* owned */
	char *type;		/* owned, may be NULL */
	cJSON *presence;	/* owned: the program's latest presence */
	cJSON *peers;		/* owned: peer id -> record, as the server last said */
	char *join_ceid;	/* owned: the program's join-room, until answered */
	cJSON *broadcasts;	/* owned: {upstream client-event-id: the program's} awaiting the server */
	bool joined;		/* join-room-ok on the current session */
};

struct rooms {
	struct ipc_conn *conn;	/* borrowed */
	struct upstream *up;	/* owned: the program's presence session */
	char *app_id;		/* owned */
	LIST_HEAD(, room) list;
};

static struct room *
room_find(struct rooms *r, const char *id)
{
	struct room *rm;

	if (id == NULL)
		return NULL;
	LIST_FOREACH(rm, &r->list, entry)
		if (strcmp(rm->id, id) == 0)
			return rm;
	return NULL;
}

static void
room_free(struct room *rm)
{
	LIST_REMOVE(rm, entry);
	free(rm->id);
	free(rm->type);
	cJSON_Delete(rm->presence);
	cJSON_Delete(rm->peers);
	free(rm->join_ceid);
	cJSON_Delete(rm->broadcasts);
	free(rm);
}

static bool
online(struct rooms *r)
{
	return upstream_get_state(r->up) == UPSTREAM_AUTHENTICATED;
}

static bool
connecting(struct rooms *r)
{
	switch (upstream_get_state(r->up)) {
	case UPSTREAM_DISCONNECTED:
	case UPSTREAM_RESOLVING:
	case UPSTREAM_CONNECTING:
	case UPSTREAM_OPENED:
		return true;
	default:
		return false;
	}
}

static void
reply(struct rooms *r, const char *op, const char *ceid, const char *room_id, bool connected)
{
	_cleanup_json_ cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "op", op);
	if (ceid)
		cJSON_AddStringToObject(m, "client-event-id", ceid);
	cJSON_AddStringToObject(m, "room-id", room_id);
	cJSON_AddBoolToObject(m, "connected", connected);
	(void)ipc_conn_send(r->conn, m);
}

static void
send_up(struct rooms *r, const char *op, struct room *rm, const char *key, const cJSON *data)
{
	_cleanup_json_ cJSON *m = cJSON_CreateObject();
	char ceid[37];

	if (uuid_v4(ceid) < 0)
		return;
	cJSON_AddStringToObject(m, "op", op);
	cJSON_AddStringToObject(m, "client-event-id", ceid);
	cJSON_AddStringToObject(m, "room-id", rm->id);
	if (rm->type && strcmp(op, "join-room") == 0)
		cJSON_AddStringToObject(m, "room-type", rm->type);
	if (key && data)
		cJSON_AddItemToObject(m, key, cJSON_Duplicate(data, 1));
	(void)upstream_send(r->up, m);
}

static void
join(struct rooms *r, struct room *rm)
{
	send_up(r, "join-room", rm, "data", rm->presence);
}

/* The program sees the peers map with its own peer marked. */
static void
push_presence(struct rooms *r, struct room *rm)
{
	_cleanup_json_ cJSON *m = cJSON_CreateObject();
	cJSON *peers = cJSON_Duplicate(rm->peers, 1), *p;
	cJSON *st = upstream_status_json(r->up);
	const char *self = json_get_string(st, "session-id");

	cJSON_AddStringToObject(m, "op", "refresh-presence");
	cJSON_AddStringToObject(m, "room-id", rm->id);
	if (self)
		cJSON_AddStringToObject(m, "peer-id", self);
	cJSON_ArrayForEach(p, peers)
		if (cJSON_IsObject(p))
			cJSON_AddBoolToObject(p, "self", self && strcmp(p->string, self) == 0);
	cJSON_AddItemToObject(m, "peers", peers);
	cJSON_Delete(st);
	(void)ipc_conn_send(r->conn, m);
}

static void
on_state(void *ud, enum upstream_state st, const char *detail)
{
	struct rooms *r = ud;
	struct room *rm;

	if (st == UPSTREAM_AUTHENTICATED)
		return;		/* init-ok re-joins, see on_message */
	LIST_FOREACH(rm, &r->list, entry) {
		cJSON *b;

		rm->joined = false;
		/* Broadcasts the server did not confirm are lost with the session: say so. */
		cJSON_ArrayForEach(b, rm->broadcasts)
			ipc_conn_send_error(r->conn, b->valuestring, IPC_ERR_OFFLINE,
			    "the connection to the server was lost before it took the broadcast");
		cJSON_Delete(rm->broadcasts);
		rm->broadcasts = NULL;
		/* A join waiting for the session gets its answer: not connected (yet). */
		if (rm->join_ceid && !connecting(r)) {
			reply(r, "join-room-ok", rm->join_ceid, rm->id, false);
			free(rm->join_ceid);
			rm->join_ceid = NULL;
		}
	}
}

static void
on_message(void *ud, const cJSON *msg)
{
	struct rooms *r = ud;
	const char *op = json_get_string(msg, "op");
	struct room *rm = room_find(r, json_get_string(msg, "room-id"));

	if (op == NULL)
		return;
	if (strcmp(op, "init-ok") == 0) {
		LIST_FOREACH(rm, &r->list, entry)
			join(r, rm);
		return;
	}
	if (rm == NULL)
		return;		/* a room the program has left */
	if (strcmp(op, "join-room-ok") == 0) {
		rm->joined = true;
		if (rm->join_ceid) {
			reply(r, "join-room-ok", rm->join_ceid, rm->id, true);
			free(rm->join_ceid);
			rm->join_ceid = NULL;
		}
		/* Presence set while joining, as the JS client re-sends it. */
		send_up(r, "set-presence", rm, "data", rm->presence);
	} else if (strcmp(op, "refresh-presence") == 0) {
		const cJSON *data = json_get(msg, "data");

		if (!cJSON_IsObject(data))
			return;
		cJSON_Delete(rm->peers);
		rm->peers = cJSON_Duplicate(data, 1);
		push_presence(r, rm);
	} else if (strcmp(op, "patch-presence") == 0) {
		if (rooms_apply_edits(rm->peers, json_get(msg, "edits")) < 0)
			log_debug("ignoring a malformed presence patch for room %s", rm->id);
		push_presence(r, rm);
	} else if (strcmp(op, "client-broadcast-ok") == 0) {
		const char *bceid = json_get_string(msg, "client-event-id");
		cJSON *b = bceid ? cJSON_DetachItemFromObjectCaseSensitive(rm->broadcasts, bceid) : NULL;

		if (b) {
			reply(r, "client-broadcast-ok", b->valuestring, rm->id, true);
			cJSON_Delete(b);
		}
	} else if (strcmp(op, "server-broadcast") == 0) {
		_cleanup_json_ cJSON *m = cJSON_Duplicate(msg, 1);

		cJSON_DeleteItemFromObjectCaseSensitive(m, "trace-id");
		(void)ipc_conn_send(r->conn, m);
	} else if (strcmp(op, "error") == 0 && rm->join_ceid) {
		ipc_conn_send_error(r->conn, rm->join_ceid, IPC_ERR_SERVER_ERROR,
		    json_get_string(msg, "message") ? json_get_string(msg, "message") :
		    "the server refused the room");
	}
}

static const struct upstream_callbacks rooms_up_cb = {
	.on_state = on_state,
	.on_message = on_message,
};

int
rooms_new(const struct rooms_config *cfg, struct ipc_conn *conn, struct rooms **ret)
{
	struct upstream_config uc = {
		.url = cfg->server, .app_id = cfg->app_id, .refresh_token = cfg->token,
		.ca_file = cfg->ca_file, .backoff_base_ms = cfg->backoff_base_ms,
		.backoff_cap_ms = cfg->backoff_cap_ms, .ping_interval_s = cfg->ping_interval_s,
		.idle_timeout_s = cfg->idle_timeout_s, .connect_timeout_s = cfg->connect_timeout_s,
	};
	struct rooms *r = calloc(1, sizeof(*r));
	int e;

	if (r == NULL)
		return -ENOMEM;
	r->conn = conn;
	LIST_INIT(&r->list);
	e = upstream_new(cfg->ctx, cfg->vh, &uc, &rooms_up_cb, r, &r->up);
	if (e < 0) {
		free(r);
		return e;
	}
	e = upstream_start(r->up);
	if (e < 0) {
		upstream_free(r->up);
		free(r);
		return e;
	}
	*ret = r;
	return 0;
}

void
rooms_free(struct rooms *r)
{
	struct room *rm;

	if (r == NULL)
		return;
	while ((rm = LIST_FIRST(&r->list)))
		room_free(rm);
	upstream_free(r->up);
	free(r);
}

static void
merge_presence(struct room *rm, const cJSON *data)
{
	const cJSON *c;

	/* Partial updates merge into the program's presence, as the JS client does. */
	if (!cJSON_IsObject(rm->presence) || !cJSON_IsObject(data)) {
		cJSON_Delete(rm->presence);
		rm->presence = cJSON_Duplicate(data, 1);
		return;
	}
	cJSON_ArrayForEach(c, data) {
		cJSON *copy = cJSON_Duplicate(c, 1);

		if (cJSON_GetObjectItemCaseSensitive(rm->presence, c->string))
			cJSON_ReplaceItemInObjectCaseSensitive(rm->presence, c->string, copy);
		else
			cJSON_AddItemToObject(rm->presence, c->string, copy);
	}
}

void
rooms_request(struct rooms *r, const char *op, const cJSON *msg, const char *ceid)
{
	const char *id = json_get_string(msg, "room-id");
	struct room *rm = room_find(r, id);

	if (id == NULL) {
		ipc_conn_send_error(r->conn, ceid, IPC_ERR_INVALID_REQUEST, "room-id must be a string");
		return;
	}
	if (strcmp(op, "join-room") == 0) {
		const cJSON *data = json_get(msg, "data");

		if (rm) {
			reply(r, "join-room-ok", ceid, id, rm->joined);
			return;
		}
		rm = calloc(1, sizeof(*rm));
		if (rm == NULL || (rm->id = strdup(id)) == NULL) {
			free(rm);
			ipc_conn_send_error(r->conn, ceid, IPC_ERR_INTERNAL, "out of memory");
			return;
		}
		rm->type = json_get_string(msg, "room-type") ? strdup(json_get_string(msg, "room-type")) : NULL;
		rm->presence = cJSON_IsObject(data) ? cJSON_Duplicate(data, 1) : cJSON_CreateObject();
		rm->peers = cJSON_CreateObject();
		LIST_INSERT_HEAD(&r->list, rm, entry);
		if (online(r)) {
			rm->join_ceid = ceid ? strdup(ceid) : NULL;
			join(r, rm);
		} else if (connecting(r)) {
			/* The program's presence session is still coming up: answer
			 * when the server has joined it, or when that fails. */
			rm->join_ceid = ceid ? strdup(ceid) : NULL;
		} else {
			/* Joined for real when the session comes up. */
			reply(r, "join-room-ok", ceid, id, false);
		}
		return;
	}
	if (rm == NULL) {
		ipc_conn_send_error(r->conn, ceid, IPC_ERR_NOT_FOUND, "not in this room; send join-room first");
		return;
	}
	if (strcmp(op, "leave-room") == 0) {
		if (online(r))
			send_up(r, "leave-room", rm, NULL, NULL);
		room_free(rm);
		reply(r, "leave-room-ok", ceid, id, false);
	} else if (strcmp(op, "set-presence") == 0) {
		merge_presence(rm, json_get(msg, "data"));
		/* Offline, only the latest value is kept and sent on re-join. */
		if (online(r) && rm->joined)
			send_up(r, "set-presence", rm, "data", rm->presence);
		reply(r, "set-presence-ok", ceid, id, online(r) && rm->joined);
	} else if (strcmp(op, "client-broadcast") == 0) {
		_cleanup_json_ cJSON *m = NULL;
		char bceid[37];

		if (!online(r) || !rm->joined) {
			ipc_conn_send_error(r->conn, ceid, IPC_ERR_OFFLINE,
			    "broadcasts are not queued and the room is not connected");
			return;
		}
		if (uuid_v4(bceid) < 0)
			return;
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "op", "client-broadcast");
		cJSON_AddStringToObject(m, "client-event-id", bceid);
		cJSON_AddStringToObject(m, "room-id", rm->id);
		if (rm->type)
			cJSON_AddStringToObject(m, "roomType", rm->type);
		if (json_get_string(msg, "topic"))
			cJSON_AddStringToObject(m, "topic", json_get_string(msg, "topic"));
		if (json_get(msg, "data"))
			cJSON_AddItemToObject(m, "data", cJSON_Duplicate(json_get(msg, "data"), 1));
		/* Answered when the server has taken it (its client-broadcast-ok), so a
		 * program may disconnect right after the answer without losing it. */
		if (rm->broadcasts == NULL)
			rm->broadcasts = cJSON_CreateObject();
		if (rm->broadcasts == NULL || upstream_send(r->up, m) < 0) {
			ipc_conn_send_error(r->conn, ceid, IPC_ERR_OFFLINE, "the broadcast could not be sent");
			return;
		}
		cJSON_AddStringToObject(rm->broadcasts, bceid, ceid ? ceid : "");
	}
}

/* ---- patch-presence ---- */

/* Debian's cJSON 1.7.15 (deb12u4) refuses cJSON_InsertItemInArray in the
 * middle of a parsed array (it returns false and leaks nothing), so insert
 * by moving the tail out and back. */
static void
array_insert(cJSON *arr, int idx, cJSON *item)
{
	cJSON *tail = cJSON_CreateArray();

	while (tail && cJSON_GetArraySize(arr) > idx)
		cJSON_AddItemToArray(tail, cJSON_DetachItemFromArray(arr, idx));
	cJSON_AddItemToArray(arr, item);
	while (tail && tail->child)
		cJSON_AddItemToArray(arr, cJSON_DetachItemFromArray(tail, 0));
	cJSON_Delete(tail);
}

static bool
is_index(const cJSON *k)
{
	/* Range first: converting a double outside int's range is undefined. */
	return cJSON_IsNumber(k) && k->valuedouble >= 0 && k->valuedouble <= INT_MAX &&
	    k->valuedouble == (double)(int)k->valuedouble;
}

static cJSON *
child(cJSON *parent, const cJSON *key)
{
	if (cJSON_IsString(key) && cJSON_IsObject(parent))
		return cJSON_GetObjectItemCaseSensitive(parent, key->valuestring);
	if (is_index(key) && cJSON_IsArray(parent))
		return cJSON_GetArrayItem(parent, (int)key->valuedouble);
	return NULL;
}

/* Walk to the parent of the path's last key, creating containers as needed
 * (an integer next key makes an array). */
static cJSON *
walk(cJSON *root, const cJSON *path)
{
	cJSON *cur = root;
	const cJSON *k;
	int n = cJSON_GetArraySize(path), i = 0;

	cJSON_ArrayForEach(k, path) {
		cJSON *next;

		if (++i == n)
			return cur;
		next = child(cur, k);
		if (next == NULL) {
			next = is_index(k->next) ? cJSON_CreateArray() : cJSON_CreateObject();
			if (next == NULL)
				return NULL;
			if (cJSON_IsString(k) && cJSON_IsObject(cur))
				cJSON_AddItemToObject(cur, k->valuestring, next);
			else if (cJSON_IsArray(cur))
				cJSON_AddItemToArray(cur, next);
			else {
				cJSON_Delete(next);
				return NULL;
			}
		}
		cur = next;
	}
	return cur;
}

int
rooms_apply_edits(cJSON *peers, const cJSON *edits)
{
	const cJSON *e;

	if (!cJSON_IsArray(edits) || !cJSON_IsObject(peers))
		return -EINVAL;
	cJSON_ArrayForEach(e, edits) {
		const cJSON *path = cJSON_GetArrayItem(e, 0), *opj = cJSON_GetArrayItem(e, 1);
		const cJSON *val = cJSON_GetArrayItem(e, 2), *last;
		const char *op = cJSON_IsString(opj) ? opj->valuestring : NULL;
		cJSON *parent, *copy;

		if (!cJSON_IsArray(path) || op == NULL)
			return -EINVAL;
		if (cJSON_GetArraySize(path) == 0)
			continue;	/* the JS client ignores an empty path */
		parent = walk(peers, path);
		if (parent == NULL)
			return -EINVAL;
		last = cJSON_GetArrayItem(path, cJSON_GetArraySize(path) - 1);
		if (strcmp(op, "-") == 0) {
			if (cJSON_IsString(last) && cJSON_IsObject(parent))
				cJSON_DeleteItemFromObjectCaseSensitive(parent, last->valuestring);
			else if (is_index(last) && cJSON_IsArray(parent))
				cJSON_DeleteItemFromArray(parent, (int)last->valuedouble);
			continue;
		}
		if (strcmp(op, "+") != 0 && strcmp(op, "r") != 0)
			return -EINVAL;
		copy = cJSON_Duplicate(val ? val : cJSON_GetArrayItem(e, 2), 1);
		if (copy == NULL)
			copy = cJSON_CreateNull();
		if (cJSON_IsString(last) && cJSON_IsObject(parent)) {
			if (cJSON_GetObjectItemCaseSensitive(parent, last->valuestring))
				cJSON_ReplaceItemInObjectCaseSensitive(parent, last->valuestring, copy);
			else
				cJSON_AddItemToObject(parent, last->valuestring, copy);
		} else if (is_index(last) && cJSON_IsArray(parent)) {
			int idx = (int)last->valuedouble;

			if (strcmp(op, "+") == 0 && idx < cJSON_GetArraySize(parent))
				array_insert(parent, idx, copy);
			else if (idx < cJSON_GetArraySize(parent))
				cJSON_ReplaceItemInArray(parent, idx, copy);
			else
				cJSON_AddItemToArray(parent, copy);
		} else {
			cJSON_Delete(copy);
			return -EINVAL;
		}
	}
	return 0;
}
