/* profile.h: the registry of profiles and each one's lifecycle: resolving
 * configuration plus a program's init to a profile, opening its database
 * and upstream session, its token file, what status shows of it, its
 * optimistic attrs, and closing it. A profile belongs to its struct sync
 * (profiles_list); open with profile_open, end with profile_close (or
 * profile_free once it is off the list). */
#ifndef INSTANTD_PROFILE_H
#define INSTANTD_PROFILE_H

#include "daemon/core.h"

/* What a profile is made of, as the configuration and a program's init
 * decide it together. Strings are borrowed from the sync's options or the
 * init message, except derived_api_uri (owned: free with profile_spec_clear). */
struct profile_spec {
	const char *name;	/* the configured profile's name; NULL = unconfigured (named by app id) */
	const char *app_id, *server, *api_uri, *token, *ca_file;
	char *derived_api_uri;	/* owned */
	char *token_name;	/* owned: name when the spec is a token's own profile (profile_bind_token) */
};


void profile_spec_clear(struct profile_spec *sp);

/* A configured profile's server: its own, else the default. */
const char *profile_option_server(const struct sync *s, const struct sync_profile_option *po);

/* Resolve configuration (plus what a program's init brings) to a profile spec;
 * the rules are at the definition. 0, -ENOENT (no such configured profile),
 * -EINVAL (a conflicting field), -ENOMEM; *ret_err is static text or NULL.
 * *ret needs profile_spec_clear whatever the result. */
int profile_resolve(const struct sync *s, const char *pname, bool by_app_id, const char *app_id,
    const char *server, const char *api_uri, const char *token, struct profile_spec *ret,
    const char **ret_err);

/* For a program whose refresh token chooses its data (the Instant
 * endpoint's apps): keep sp (resolved for the app) when token is NULL or is
 * the token that profile holds; else make sp the token's own profile, which
 * never holds another token's data (named profile_token_name; its
 * database and key follow from the name). 0 or -ENOMEM. */
int profile_bind_token(struct sync *s, struct profile_spec *sp, const char *token);
/* A token's own profile's name: "APP-ID~" and a digest of server, app id
 * and token ('~' is in no configured name). *ret is new. 0 or -ENOMEM. */
int profile_token_name(const char *server, const char *app_id, const char *token, char **ret);
bool profile_name_is_token(const char *name);

/* Open (or find, by key) the profile sp describes; db_path: the database to
 * use when start-up found it, NULL = the profile's own. *ret is borrowed
 * (owned by s). 0 or a negative errno (logged). */
int profile_open(struct sync *s, const struct profile_spec *sp, const char *db_path, struct profile **ret);

/* Close an open profile for good: its programs are disconnected, its
 * sign-in calls end, it leaves s's list and is freed. */
void profile_close(struct profile *p);

/* Free p and everything it owns; it must be off s's list already. NULL-safe. */
void profile_free(struct profile *p);

/* The database path of a profile; *ret is new (caller frees). 0 or -ENOMEM. */
int profile_db_path(struct sync *s, const char *name, const char *app_id, const char *server,
    char **ret);

/* The token stored beside db_path (0 and *ret NULL when there is none);
 * *ret is new, a secret. 0 or a negative errno (logged). */
int profile_read_token(const char *db_path, char **ret);

/* Sign p in with token (NULL: sign out), store it and reconnect. 0 or a negative errno. */
int profile_set_token(struct profile *p, const char *token);

/* A database found corrupt at open was moved aside: log it once, record it in db. */
void note_recovery(struct db *db, const char *name);

/* Rebuild p->attrs: the server's attrs plus the unsynced local ones. When
 * they come out as they were and no queued write was rewritten
 * (steps_changed false), every query keeps its stores and last render (a
 * session's init-ok resends the attrs). 0 or a negative errno. */
int profile_rebuild_attrs(struct profile *p, bool steps_changed);

/* ---- state ---- */

/* The state status shows: "disconnected", "signed-out" or the upstream state's name. */
const char *profile_state(struct profile *p);
/* Authenticated upstream. */
bool profile_online(const struct profile *p);
/* A query never seen before is answered from the whole mirror (the server
 * will not answer for now). */
bool profile_partial_mode(const struct profile *p);
/* The app takes writes (or its status is not known yet). */
bool profile_app_writable(const struct profile *p);
/* Online and the app takes writes: the outbox may be sent. */
bool profile_can_write(struct profile *p);
/* The error type (and *ret_msg, static text) for a request that needs the
 * server while it cannot have it. */
const char *profile_unreachable_error(const struct profile *p, const char **ret_msg);

/* ---- status ---- */

/* New objects (caller owns): the outbox counts, and the whole status of p. */
cJSON *profile_queue_json(struct profile *p);
cJSON *profile_status_json(struct profile *p);
/* Note a change of p's state and push status to the programs watching it. */
void profile_status_changed(struct profile *p);

#endif
