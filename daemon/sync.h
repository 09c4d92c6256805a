/* The sync core: profiles, shared query subscriptions, the outbox flow and
 * what each local-protocol op does. It glues store/, the upstream session and ipc/. */
#ifndef INSTANTD_SYNC_H
#define INSTANTD_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>

#include "ipc/ipc-server.h"

/* A profile named in the configuration file; strings are borrowed for sync_new's call. */
struct sync_profile_option {
	const char *name;
	const char *app_id;
	const char *server;	/* ws:// or wss:// URL of /runtime/session, NULL = default */
	const char *api_uri;	/* HTTP base for auth, NULL = default */
	const char *token;	/* refresh token (already read from its 0600 file), may be NULL */
	const char *ca_file;	/* NULL = global */
};

/* Everything the core needs from the configuration; strings are copied. */
struct sync_options {
	const char *state_dir;		/* where profile databases live */
	const char *default_server;	/* ws URL used when neither init nor profile names one */
	const char *default_api_uri;
	const char *ca_file;
	int backoff_base_ms, backoff_cap_ms;
	int ping_interval_s, idle_timeout_s, transact_timeout_s;
	int connect_timeout_s;		/* 0: upstream's default */
	int unsubscribe_grace_ms;
	int64_t cache_budget_bytes;
	int64_t max_database_bytes;	/* 0: unlimited */
	size_t max_subs_per_conn;
	const struct sync_profile_option *profiles;
	size_t n_profiles;
};

/* Owns every profile, its database and upstream session, and the per-program state. */
struct sync;

int sync_new(struct lws_context *ctx, struct lws_vhost *vh, const struct sync_options *opt,
    struct sync **ret);
/* Opens the profiles that have queued writes (so they replay without any program) and
 * the configured ones. Call once the loop can run. */
int sync_start(struct sync *s);
void sync_free(struct sync *s);
/* New options (SIGHUP): they apply to profiles opened from now on; open
 * sessions and programs stay connected. 0 or -ENOMEM (old options kept). */
int sync_set_options(struct sync *s, const struct sync_options *opt);		/* NULL-safe; closes upstream sessions abruptly */
/* Graceful: close every upstream session (Close 1000), then call done. */
void sync_shutdown(struct sync *s, void (*done)(void *ud), void *ud);

/* The callbacks ipc-server must deliver into this core (userdata = struct sync *). */
extern const struct ipc_callbacks sync_ipc_callbacks;

/* One line for sd_notify STATUS=: connection state and queue depth of every profile. */
int sync_status_line(struct sync *s, char *buf, size_t len);

#endif
