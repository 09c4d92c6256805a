/* config.h: instantd's configuration: built-in defaults, the instantd.conf file
 * (a global section and [profile NAME] sections) and the refresh-token files.
 *
 * Files in daemon/ that write #include "config.h" get this header (a quoted
 * include looks in the including file's directory first), so it pulls in
 * autoconf's config.h itself: PACKAGE_VERSION and friends stay available. */
#ifndef INSTANTD_DAEMON_CONFIG_H
#define INSTANTD_DAEMON_CONFIG_H

#if defined(HAVE_CONFIG_H) && !defined(PACKAGE_VERSION)
#include "../config.h"
#endif

#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_SERVER	"wss://api.instantdb.com/runtime/session"
#define CONFIG_DEFAULT_API_URI	"https://api.instantdb.com"

/* One [profile NAME] section. All strings are owned by the enclosing
 * struct instantd_config. NULL means "use the global value" (server, api_uri,
 * ca_file) or "guest" (token_file). */
struct profile_config {
	char *name;
	char *app_id;		/* required */
	char *server;
	char *api_uri;
	char *token_file;	/* file of mode 0600 holding the refresh token */
	char *ca_file;
	unsigned line;		/* line of the section header, for messages */
};

/* The whole configuration. Every string is owned by this struct and freed by
 * config_free(). After config_load() every global field holds a usable value
 * (defaults filled in), except ca_file which may be NULL (= system CA store). */
struct instantd_config {
	char *path;		/* the file that was read; NULL when none existed */
	char *socket_path;	/* socket: default $XDG_RUNTIME_DIR/instantd/socket */
	char *state_dir;	/* state-dir: default $XDG_STATE_HOME/instantd */
	char *server;		/* server: ws(s) URL of /runtime/session */
	char *api_uri;		/* api-uri: HTTP base for auth */
	char *ca_file;		/* ca-file: NULL = system store */
	int log_level;		/* log-level as a syslog priority, LOG_ERR..LOG_DEBUG */
	char *instant_listen;	/* instant-listen: loopback "HOST:PORT" for the Instant endpoint, NULL = off */
	char *instant_allowed_origins;	/* instant-allowed-origins: Origin values let in, NULL = none */

	size_t max_message_bytes;		/* 16 MiB */
	int max_json_depth;			/* 64 */
	size_t max_output_bytes;		/* 64 MiB */
	int max_connections;			/* 4096 */
	size_t max_subscriptions_per_connection;	/* 1000 */
	int64_t cache_budget_bytes;		/* 256 MiB */
	int64_t max_database_bytes;		/* 0: no limit but the disk's */
	int backoff_base_ms;			/* 500 */
	int backoff_cap_ms;			/* 30000 */
	int ping_interval_s;			/* 20 */
	int idle_timeout_s;			/* 35 */
	int transact_timeout_s;			/* 30 */
	int connect_timeout_s;			/* 20: TCP + TLS + WebSocket upgrade */
	int unsubscribe_grace_ms;		/* 2000 */

	struct profile_config *profiles;	/* n_profiles entries, in file order */
	size_t n_profiles;
};

/* The default configuration file: $XDG_CONFIG_HOME/instantd/instantd.conf, or
 * $HOME/.config/instantd/instantd.conf. *ret is malloc'd (caller frees).
 * -ENOENT when neither variable is set, -ENOMEM. */
int config_default_path(char **ret);

/* Load the configuration. path NULL = the default file, which may be missing
 * (then only defaults apply); an explicit path that cannot be read is an error.
 * Defaults depend on XDG_RUNTIME_DIR, XDG_STATE_HOME and HOME; when
 * XDG_RUNTIME_DIR is unset the socket defaults to /run/user/UID/instantd/socket.
 * On success *ret (free with config_free) is written. On failure returns a
 * negative errno and, if ret_err is not NULL, a malloc'd message naming file
 * and line, e.g. "instantd.conf:12: unknown key 'foo'". */
int config_load(const char *path, struct instantd_config **ret, char **ret_err);

/* Set one global key as if it appeared in the file (same syntax and checks).
 * This is how the caller applies command-line and environment overrides; main
 * applies, in this order after config_load:
 *   --socket PATH      -> config_set(c, "socket", PATH)
 *   --state-dir DIR    -> config_set(c, "state-dir", DIR)
 *   --verbose (each)   -> config_raise_log_level(c)
 * 0, or negative errno and *ret_err (malloc'd, may be NULL). */
int config_set(struct instantd_config *c, const char *key, const char *value, char **ret_err);
/* One step more verbose (error -> warning -> notice -> info -> debug). */
void config_raise_log_level(struct instantd_config *c);

/* The profile named name, or NULL. */
const struct profile_config *config_find_profile(const struct instantd_config *c, const char *name);

/* NULL-safe; returns NULL. */
struct instantd_config *config_free(struct instantd_config *c);

/* Read a refresh token from token_file. Refuses a symbolic link (-ELOOP: it is
 * opened with O_NOFOLLOW), and (-EPERM) a file that the group or others may
 * read or write, or that is not a regular file owned by us;
 * surrounding whitespace is stripped; an empty file is -EINVAL. *ret_token is
 * malloc'd; the caller clears it (explicit_bzero) and frees it. Errors: negative
 * errno and *ret_err (malloc'd, never contains the token). */
int config_read_token(const char *token_file, char **ret_token, char **ret_err);

/* "16M", "512K", "1G", "100" -> bytes (K = 1024). -EINVAL, -ERANGE. */
int config_parse_size(const char *s, uint64_t *ret);

#endif
