/* ops-store: the local ops that manage stored profiles (list-profiles,
 * forget-profile, export-cache, clear-cache; they name a profile, so need no
 * init) and what they do with one profile's files. */
#ifndef INSTANTD_OPS_STORE_H
#define INSTANTD_OPS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "daemon/core.h"
#include "store/db.h"

/* One profile with data or configuration, open or not. */
struct stored {
	struct profile *p;		/* borrowed: the open profile, or NULL */
	char *name, *app_id, *server, *path;	/* owned */
	bool configured;
};

/* Every profile: the open ones, the configured ones, and every database in
 * the state directory. *ret is new (free with stored_free). 0 or a negative errno. */
int stored_collect(struct sync *s, struct stored **ret, size_t *ret_n);
void stored_free(struct stored *v, size_t n);

/* Handlers of the op table (ops.c), given every stored profile (v, n borrowed). */
void op_list_profiles(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n);
void op_forget_profile(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n);
void op_export_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n);
void op_clear_cache(struct client *c, const cJSON *msg, const char *ceid, struct stored *v, size_t n);

/* Add to o (borrowed) what is stored for the profile whose database is db
 * (borrowed; NULL when there is no database file yet) at path:
 * "database-bytes" (the file with its -wal and -shm), "queries" (cached
 * results), "cache-bytes", "queue" {pending (sent ones included, as in
 * status), sent, confirmed, failed} and
 * "last-stored" (ms since the epoch of the newest cached result, or null). */
int store_summary(struct db *db, const char *path, cJSON *o);

/* A new object (caller owns): {"attrs": [...], "queries": [{"q", "triples",
 * "page-info"?, "processed-tx-id"}]}, the mirror as stored in db. */
int store_export(struct db *db, cJSON **ret);

/* Delete every cached query result of db; the outbox and attrs stay (queued
 * writes refer to the attrs by id). *ret_removed = how many went. */
int store_clear_cache(struct db *db, int *ret_removed);

/* Remove the database at path with its -wal, -shm and .token files; a file
 * that is not there is fine. The database must be closed. */
int store_remove_files(const char *path);

#endif
