/* ops-store: the ops that manage stored profiles (list-profiles,
 * forget-profile, export-cache, clear-cache) and what they do with one
 * profile's files: summaries, export, cache clearing, removal (see ops-store.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/fsutil.h"
#include "daemon/log.h"
#include "daemon/ops-store.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "store/util.h"

static const char *const store_sidecars[] = { "", "-wal", "-shm", ".token" };

static int64_t
file_bytes(const char *path, const char *suffix)
{
	_cleanup_free_ char *p = NULL;
	struct stat st;

	if (asprintf(&p, "%s%s", path, suffix) < 0)
		return 0;
	return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

int
store_summary(struct db *db, const char *path, cJSON *o)
{
	_cleanup_json_ cJSON *list = NULL;
	size_t counts[DB_MUT_STATE_MAX] = { 0 };
	int64_t bytes = 0, newest = 0;
	const cJSON *e;
	int r;

	cJSON_AddNumberToObject(o, "database-bytes", (double)(file_bytes(path, "") +
	    file_bytes(path, "-wal") + file_bytes(path, "-shm")));
	if (db == NULL) {
		cJSON_AddNumberToObject(o, "queries", 0);
		cJSON_AddNumberToObject(o, "cache-bytes", 0);
		cJSON_AddNullToObject(o, "last-stored");
		return 0;
	}
	if ((r = db_query_list(db, &list)) < 0 || (r = db_query_bytes(db, &bytes)) < 0 ||
	    (r = db_outbox_counts(db, counts)) < 0)
		return r;
	cJSON_ArrayForEach(e, list) {
		int64_t t;

		if (json_get_int64(json_get(e, "last-used"), &t) == 0 && t > newest)
			newest = t;
	}
	cJSON_AddNumberToObject(o, "queries", cJSON_GetArraySize(list));
	cJSON_AddNumberToObject(o, "cache-bytes", (double)bytes);
	{
		/* As status counts them: "pending" includes the sent ones. */
		cJSON *q = cJSON_AddObjectToObject(o, "queue");

		cJSON_AddNumberToObject(q, "pending", (double)(counts[DB_MUT_PENDING] + counts[DB_MUT_SENT]));
		cJSON_AddNumberToObject(q, "sent", (double)counts[DB_MUT_SENT]);
		cJSON_AddNumberToObject(q, "confirmed", (double)counts[DB_MUT_CONFIRMED]);
		cJSON_AddNumberToObject(q, "failed", (double)counts[DB_MUT_FAILED]);
	}
	if (newest)
		cJSON_AddNumberToObject(o, "last-stored", (double)newest);
	else
		cJSON_AddNullToObject(o, "last-stored");
	return 0;
}

int
store_export(struct db *db, cJSON **ret)
{
	_cleanup_json_ cJSON *out = cJSON_CreateObject(), *list = NULL, *attrs = NULL;
	cJSON *queries;
	const cJSON *e;
	int r;

	if (out == NULL)
		return -ENOMEM;
	if ((r = db_attrs_load(db, &attrs)) < 0 || (r = db_query_list(db, &list)) < 0)
		return r;
	cJSON_AddItemToObject(out, "attrs", TAKE_PTR(attrs));
	queries = cJSON_AddArrayToObject(out, "queries");
	cJSON_ArrayForEach(e, list) {
		cJSON *q = NULL, *triples = NULL, *page = NULL, *o;
		int64_t ptx = 0;

		r = db_query_get(db, json_get_string(e, "key"), &q, &triples, &page, &ptx);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "q", q);
		cJSON_AddItemToObject(o, "triples", triples);
		if (page)
			cJSON_AddItemToObject(o, "page-info", page);
		cJSON_AddItemToObject(o, "processed-tx-id", json_new_int64(ptx));
		cJSON_AddItemToArray(queries, o);
	}
	*ret = TAKE_PTR(out);
	return 0;
}

int
store_clear_cache(struct db *db, int *ret_removed)
{
	_cleanup_json_ cJSON *list = NULL;
	const cJSON *e;
	int r, n = 0;

	if ((r = db_query_list(db, &list)) < 0)
		return r;
	cJSON_ArrayForEach(e, list) {
		r = db_query_remove(db, json_get_string(e, "key"));
		if (r < 0 && r != -ENOENT)
			return r;
		n += r == 0;
	}
	*ret_removed = n;
	return 0;
}

int
store_remove_files(const char *path)
{
	for (size_t i = 0; i < sizeof(store_sidecars) / sizeof(store_sidecars[0]); i++) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s%s", path, store_sidecars[i]) < 0)
			return -ENOMEM;
		if (unlink(p) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

/* ---- the ops ---- */

void
stored_free(struct stored *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].app_id);
		free(v[i].server);
		free(v[i].path);
	}
	free(v);
}

static int
stored_add(struct stored **v, size_t *n, struct profile *p, const char *name, const char *app_id,
    const char *server, char *path, bool configured)
{
	struct stored *nv;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].path, path) == 0) {
			(*v)[i].configured |= configured;
			free(path);
			return 0;
		}
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL) {
		free(path);
		return -ENOMEM;
	}
	*v = nv;
	nv[*n] = (struct stored){ .p = p, .name = xstrdup(name ? name : app_id),
	    .app_id = xstrdup(app_id), .server = xstrdup(server), .path = path,
	    .configured = configured };
	(*n)++;
	return nv[*n - 1].name && nv[*n - 1].app_id && nv[*n - 1].server ? 0 : -ENOMEM;
}

/* Every profile: the open ones, the configured ones, and every database in
 * the state directory (named by what it recorded when it was last open). */
int
stored_collect(struct sync *s, struct stored **ret, size_t *ret_n)
{
	struct stored *v = NULL;
	size_t n = 0;
	struct profile *p;
	DIR *d;
	int r = 0;

	TAILQ_FOREACH(p, &s->profiles_list, entry)
		if (r == 0)
			r = stored_add(&v, &n, p, p->name, p->app_id, p->server, xstrdup(p->db_path), false);
	for (size_t i = 0; r == 0 && i < s->opt.n_profiles; i++) {
		const struct sync_profile_option *po = &s->profiles[i];
		const char *server = po->server ? po->server : s->opt.default_server;
		char *path = NULL;

		r = profile_db_path(s, po->name, po->app_id, server, &path);
		if (r == 0)
			r = stored_add(&v, &n, NULL, po->name, po->app_id, server, path, true);
	}
	d = r == 0 ? opendir(s->opt.state_dir) : NULL;
	for (struct dirent *de; d && r == 0 && (de = readdir(d));) {
		_cleanup_free_ char *server = NULL, *app = NULL, *name = NULL;
		size_t len = strlen(de->d_name);
		struct db *db = NULL;
		char *path = NULL;
		bool known = false;

		if (len < 8 || strcmp(de->d_name + len - 7, ".sqlite") != 0)
			continue;
		if (asprintf(&path, "%s/%s", s->opt.state_dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(v[i].path, path) == 0;
		/* Someone else's file is not a profile of ours (as at start-up). */
		if (!known) {
			_cleanup_free_ char *err = NULL;

			if (fs_check_file(path, false, &err) < 0)
				known = true;
		}
		if (known || db_open(path, &db) < 0) {
			free(path);
			continue;
		}
		(void)db_meta_get(db, "server", &server);
		(void)db_meta_get(db, "app-id", &app);
		(void)db_meta_get(db, "name", &name);
		db_close(db);
		if (server && app)
			r = stored_add(&v, &n, NULL, name, app, server, path, false);
		else
			free(path);
	}
	if (d)
		closedir(d);
	if (r < 0) {
		stored_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The entry a request's "profile" names (a name, else an app id); NULL after
 * answering the request with the error. */
static struct stored *
stored_find(struct client *c, struct stored *v, size_t n, const char *ceid, const char *name)
{
	struct stored *hit = NULL;
	size_t hits = 0;

	for (int pass = 0; pass < 2 && hits == 0; pass++)
		for (size_t i = 0; i < n; i++)
			if (strcmp(pass == 0 ? v[i].name : v[i].app_id, name) == 0) {
				hit = &v[i];
				hits++;
			}
	if (hits == 1)
		return hit;
	if (hits == 0)
		client_error(c, ceid, "not-found", "no profile named %s (instantctl profiles lists them)",
		    name);
	else
		client_error(c, ceid, "invalid-request", "%zu profiles are named %s; name one by its "
		    "app id", hits, name);
	return NULL;
}

/* The database of v: the open profile's, or *tmp opened for this request
 * (NULL when there is no file). */
static int
stored_db(const struct stored *v, struct db **tmp, struct db **ret)
{
	struct stat st;
	int r;

	*tmp = NULL;
	if (v->p) {
		*ret = v->p->db;
		return 0;
	}
	*ret = NULL;
	if (stat(v->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	r = db_open(v->path, tmp);
	if (r < 0)
		return r;
	*ret = *tmp;
	return 0;
}

void
op_list_profiles(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	_cleanup_json_ cJSON *out = reply_new("profiles", ceid);
	cJSON *arr = cJSON_AddArrayToObject(out, "profiles");

	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		struct db *tmp = NULL, *db = NULL;
		int r;

		cJSON_AddStringToObject(o, "profile", v[i].name);
		cJSON_AddStringToObject(o, "app-id", v[i].app_id);
		cJSON_AddStringToObject(o, "server", v[i].server);
		cJSON_AddStringToObject(o, "database", v[i].path);
		cJSON_AddBoolToObject(o, "open", v[i].p != NULL);
		cJSON_AddBoolToObject(o, "configured", v[i].configured);
		r = stored_db(&v[i], &tmp, &db);
		if (r == 0)
			r = store_summary(db, v[i].path, o);
		if (r < 0)
			cJSON_AddStringToObject(o, "error", strerror(-r));
		db_close(tmp);
		if (v[i].p) {
			/* The loop's view is newer than the database's. */
			cJSON_DeleteItemFromObjectCaseSensitive(o, "queue");
			cJSON_AddItemToObject(o, "queue", profile_queue_json(v[i].p));
			if (v[i].p->last_sync_ms)
				cJSON_AddNumberToObject(o, "last-sync", (double)v[i].p->last_sync_ms);
		}
		cJSON_AddItemToArray(arr, o);
	}
	client_send(c, out);
}

void
op_forget_profile(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	struct stored *t = stored_find(c, v, n, ceid, json_get_string(msg, "profile"));
	_cleanup_json_ cJSON *out = NULL;
	size_t queued = 0;
	int r;

	if (t == NULL)
		return;
	if (t->p && c->p == t->p) {
		client_error(c, ceid, "invalid-request", "this connection uses %s; forget it from "
		    "a connection that did not init it", t->name);
		return;
	}
	if (t->p) {
		struct mutation *m;
		struct pending_write *w;

		TAILQ_FOREACH(m, &t->p->outbox, entry)
			queued += m->m->state != DB_MUT_CONFIRMED;
		TAILQ_FOREACH(w, &t->p->writes, entry)
			queued++;
	} else {
		struct db *tmp = NULL, *db = NULL;
		size_t counts[DB_MUT_STATE_MAX] = { 0 };

		r = stored_db(t, &tmp, &db);
		if (r == 0 && db)
			r = db_outbox_counts(db, counts);
		db_close(tmp);
		if (r < 0) {
			client_error(c, ceid, "internal", "cannot read %s: %s", t->path, strerror(-r));
			return;
		}
		queued = counts[DB_MUT_PENDING] + counts[DB_MUT_SENT] + counts[DB_MUT_FAILED];
	}
	if (queued && !cJSON_IsTrue(json_get(msg, "discard-queued"))) {
		out = reply_new("error", ceid);
		cJSON_AddStringToObject(out, "type", "invalid-request");
		cJSON_AddStringToObject(out, "message", "the profile has writes the server has not "
		    "taken; they would be lost (pass discard-queued to drop them)");
		cJSON_AddNumberToObject(out, "queued", (double)queued);
		client_send(c, out);
		return;
	}
	if (t->p) {
		profile_close(t->p);
		t->p = NULL;
	}
	r = store_remove_files(t->path);
	if (r < 0) {
		client_error(c, ceid, "internal", "cannot remove %s: %s", t->path, strerror(-r));
		return;
	}
	log_notice("%s: its stored data was removed on request (%zu queued writes dropped)",
	    t->name, queued);
	out = reply_new("forget-profile-ok", ceid);
	cJSON_AddStringToObject(out, "profile", t->name);
	cJSON_AddNumberToObject(out, "discarded", (double)queued);
	cJSON_AddBoolToObject(out, "configured", t->configured);
	client_send(c, out);
}

static void
op_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n,
    bool clear)
{
	struct stored *t = stored_find(c, v, n, ceid, json_get_string(msg, "profile"));
	_cleanup_json_ cJSON *out = NULL, *data = NULL;
	struct db *tmp = NULL, *db = NULL;
	int r, removed = 0;

	if (t == NULL)
		return;
	if (t->p) {
		struct query *q;

		/* Results waiting for the write-behind belong in the export and must
		 * not come back after a clear. */
		TAILQ_FOREACH(q, &t->p->queries, entry) {
			if (!clear)
				query_persist(q);
			q->dirty = false;
		}
	}
	r = stored_db(t, &tmp, &db);
	if (r == 0 && db)
		r = clear ? store_clear_cache(db, &removed) : store_export(db, &data);
	db_close(tmp);
	if (r < 0) {
		client_error(c, ceid, "internal", "cannot read %s: %s", t->path, strerror(-r));
		return;
	}
	out = reply_new(clear ? "clear-cache-ok" : "cache", ceid);
	cJSON_AddStringToObject(out, "profile", t->name);
	if (clear) {
		cJSON_AddNumberToObject(out, "removed", removed);
	} else {
		cJSON_AddItemToObject(out, "attrs", data ? cJSON_DetachItemFromObject(data, "attrs") :
		    cJSON_CreateArray());
		cJSON_AddItemToObject(out, "queries", data ? cJSON_DetachItemFromObject(data, "queries") :
		    cJSON_CreateArray());
	}
	client_send(c, out);
}

void
op_export_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	op_cache(c, msg, ceid, v, n, false);
}

void
op_clear_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n)
{
	op_cache(c, msg, ceid, v, n, true);
}
