/* ops-store: summaries, export, cache clearing and removal of one profile's
 * stored data, for the ops that manage what is stored (see ops-store.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ops-store.h"
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
