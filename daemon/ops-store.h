/* ops-store: what the local ops that manage stored profiles (list-profiles,
 * forget-profile, export-cache, clear-cache) do with one profile's files. */
#ifndef INSTANTD_OPS_STORE_H
#define INSTANTD_OPS_STORE_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/db.h"

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
