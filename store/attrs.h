/* The attr registry: the attr objects of one profile (server attrs plus
 * locally created, unsynced ones) with lookups by id and by identity.
 * Used by the engine (tstore, instaql), the InstaML transform and the daemon. */
#ifndef INSTANTD_ATTRS_H
#define INSTANTD_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* Owns deep copies of every attr object it holds. */
struct attrs;

struct attrs *attrs_new(void);                 /* NULL on ENOMEM */
void attrs_free(struct attrs *a);              /* NULL-safe */
int attrs_dup(const struct attrs *a, struct attrs **ret);
/* Replace everything with copies of `list`: a JSON array of attr objects or an
 * object mapping id -> attr (the movies data set's shape). -EINVAL on a bad shape. */
int attrs_set_all(struct attrs *a, const cJSON *list);
/* Add a copy of `attr`, replacing any attr with the same id. */
int attrs_add(struct attrs *a, const cJSON *attr);
/* Merge the keys of `partial` (which has an "id") into that attr: update-attr. -ENOENT if unknown. */
int attrs_update(struct attrs *a, const cJSON *partial);
int attrs_remove(struct attrs *a, const char *id);     /* -ENOENT if unknown */

size_t attrs_count(const struct attrs *a);
const cJSON *attrs_at(const struct attrs *a, size_t i); /* borrowed, valid until the next change */
const cJSON *attrs_by_id(const struct attrs *a, const char *id);
/* By forward identity [_, etype, label] or reverse identity [_, etype, label]. */
const cJSON *attrs_by_fwd(const struct attrs *a, const char *etype, const char *label);
const cJSON *attrs_by_rev(const struct attrs *a, const char *etype, const char *label);
/* A new JSON array of copies of all attrs; NULL on ENOMEM. */
cJSON *attrs_to_json(const struct attrs *a);

/* Field accessors of one attr object (NULL / false when absent). */
const char *attr_id(const cJSON *attr);
const char *attr_fwd_etype(const cJSON *attr);
const char *attr_fwd_label(const cJSON *attr);
const char *attr_rev_etype(const cJSON *attr);
const char *attr_rev_label(const cJSON *attr);
bool attr_is_ref(const cJSON *attr);       /* value-type == "ref" */
bool attr_card_one(const cJSON *attr);     /* cardinality == "one" */
bool attr_unique(const cJSON *attr);       /* unique? */
bool attr_indexed(const cJSON *attr);      /* index? */
bool attr_unsynced(const cJSON *attr);     /* isUnsynced: created locally, unknown to the server */

#endif
