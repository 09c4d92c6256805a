/* instantd: entry point. Parses the command line and configuration, sets up the
 * libwebsockets loop with the IPC socket, signals and the watchdog, and runs it. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libwebsockets.h>

#include "daemon/auth.h"
#include "daemon/endpoint.h"
#include "daemon/fsutil.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/sync.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "ipc/ipc-protocol.h"
#include "ipc/ipc-server.h"
#include "store/util.h"

struct daemon {
	struct lws_context *ctx;	/* owned */
	struct lws_vhost *vh;		/* owned by ctx */
	SSL_CTX *tls;			/* owned: the vhost's TLS client context (lws borrows it) */
	struct instantd_config *cfg;	/* owned */
	const char *config_path;	/* borrowed from argv */
	const char *opt_socket, *opt_state, *opt_server;	/* borrowed from argv */
	int verbose;
	struct sync *sync;		/* owned */
	struct ipc_server *ipc;		/* owned */
	struct endpoint *ep;		/* owned: the Instant endpoint */
	struct ipc_callbacks ipc_cb;	/* sync's, with the daemon's own ops in front */
	int sigfd;			/* owned by lws once adopted */
	lws_sorted_usec_list_t watchdog;
	lws_sorted_usec_list_t status;
	lws_sorted_usec_list_t stop_deadline;
	uint64_t watchdog_usec;
	bool stopping, stopped;
	char last_status[512];
};

static struct daemon D = { .sigfd = -1 };

static void
usage(FILE *f)
{
	fprintf(f,
	    "Usage: instantd [OPTION]...\n"
	    "A local-first offline cache for InstantDB apps: one per user, serving every\n"
	    "local program over a Unix socket, mirroring their queries in SQLite, queueing\n"
	    "their writes durably while offline and replaying them in order.\n"
	    "\n"
	    "Options:\n"
	    "  -c, --config FILE     read FILE instead of $XDG_CONFIG_HOME/instantd/instantd.conf\n"
	    "  -s, --socket PATH     listen on PATH (default $XDG_RUNTIME_DIR/instantd/socket)\n"
	    "  -d, --state-dir DIR   keep profile databases in DIR (default $XDG_STATE_HOME/instantd)\n"
	    "  -S, --server URL      default sync server, ws:// or wss:// URL of /runtime/session\n"
	    "                        (default wss://api.instantdb.com/runtime/session)\n"
	    "  -v, --verbose         log more; repeat for more detail\n"
	    "      --check-config    read the configuration, print it as resolved (defaults,\n"
	    "                        paths and overrides applied) and exit: 0 when it is\n"
	    "                        valid, 1 with FILE:LINE: the problem when not\n"
	    "  -f, --foreground      accepted for compatibility: instantd never forks\n"
	    "  -h, --help            show this help and exit\n"
	    "  -V, --version         show the version and exit\n"
	    "\n"
	    "Programs talk to it with newline-delimited JSON on the socket: see instantctl(1),\n"
	    "libinstantd and the protocol reference. Unmodified @instantdb/core apps connect to\n"
	    "instant.sock beside the socket (or instant-listen) with the Instant protocol.\n"
	    "Under systemd it runs as the user unit\n"
	    "instantd.service with socket activation (instantd.socket).\n"
	    "\n"
	    "Signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP reloads the configuration.\n"
	    "Exit status: 0 clean stop, 1 start-up failure, 2 usage error.\n");
}

/* --check-config: the configuration as the daemon would run with it, in the
 * file's own syntax, so a user sees what each line resolved to. */
static void
print_config(FILE *f, const struct instantd_config *c)
{
	const struct { const char *key; const char *val; } strs[] = {
		{ "socket", c->socket_path }, { "state-dir", c->state_dir },
		{ "server", c->server }, { "api-uri", c->api_uri }, { "ca-file", c->ca_file },
		{ "log-level", log_level_to_string(c->log_level) },
		{ "instant-listen", c->instant_listen },
		{ "instant-allowed-origins", c->instant_allowed_origins },
	};
	const struct { const char *key; long long val; const char *unit; } nums[] = {
		{ "max-message-bytes", (long long)c->max_message_bytes, "" },
		{ "max-json-depth", c->max_json_depth, "" },
		{ "max-output-bytes", (long long)c->max_output_bytes, "" },
		{ "max-connections", c->max_connections, "" },
		{ "max-subscriptions-per-connection", (long long)c->max_subscriptions_per_connection, "" },
		{ "cache-budget-bytes", (long long)c->cache_budget_bytes, "" },
		{ "max-database-bytes", (long long)c->max_database_bytes, "" },
		{ "backoff-base-ms", c->backoff_base_ms, "" },
		{ "backoff-cap-ms", c->backoff_cap_ms, "" },
		{ "ping-interval", c->ping_interval_s, "s" },
		{ "idle-timeout", c->idle_timeout_s, "s" },
		{ "transact-timeout", c->transact_timeout_s, "s" },
		{ "unsubscribe-grace-ms", c->unsubscribe_grace_ms, "" },
	};

	fprintf(f, "# instantd %s: configuration from %s\n", PACKAGE_VERSION,
	    c->path != NULL ? c->path : "built-in defaults (no file)");
	for (size_t i = 0; i < ELEMENTSOF(strs); i++)
		if (strs[i].val != NULL)
			fprintf(f, "%s = %s\n", strs[i].key, strs[i].val);
	for (size_t i = 0; i < ELEMENTSOF(nums); i++)
		fprintf(f, "%s = %lld%s\n", nums[i].key, nums[i].val, nums[i].unit);
	for (size_t i = 0; i < c->n_profiles; i++) {
		const struct profile_config *p = &c->profiles[i];

		fprintf(f, "\n[profile %s]\napp-id = %s\n", p->name, p->app_id);
		fprintf(f, "server = %s\n", p->server != NULL ? p->server : c->server);
		fprintf(f, "api-uri = %s\n", p->api_uri != NULL ? p->api_uri : c->api_uri);
		if (p->token_file != NULL)
			fprintf(f, "token-file = %s\n", p->token_file);
		else
			fprintf(f, "# no token-file: a guest unless a program signs in\n");
		if (p->ca_file != NULL || c->ca_file != NULL)
			fprintf(f, "ca-file = %s\n", p->ca_file != NULL ? p->ca_file : c->ca_file);
	}
}

static void
send_status(void)
{
	char line[512];

	if (D.sync == NULL)
		return;
	sync_status_line(D.sync, line, sizeof(line));
	if (strcmp(line, D.last_status) != 0) {
		notify_status("%s", line);
		snprintf(D.last_status, sizeof(D.last_status), "%s", line);
	}
}

static void
status_cb(lws_sorted_usec_list_t *sul)
{
	send_status();
	lws_sul_schedule(D.ctx, 0, &D.status, status_cb, LWS_US_PER_SEC);
}

/* The ping comes from the loop itself, so a wedged loop is what trips it. */
static void
watchdog_cb(lws_sorted_usec_list_t *sul)
{
	notify_watchdog_ping();
	lws_sul_schedule(D.ctx, 0, &D.watchdog, watchdog_cb, (lws_usec_t)(D.watchdog_usec / 2));
}

static void
stopped(void *ud)
{
	D.stopped = true;
	lws_cancel_service(D.ctx);
}

static void
stop_deadline_cb(lws_sorted_usec_list_t *sul)
{
	stopped(NULL);
}

static void
begin_stop(void)
{
	if (D.stopping)
		return;
	D.stopping = true;
	log_info("stopping");
	notify_stopping();
	/* Close 1000 upstream, but never take more than 2 s in total. */
	lws_sul_schedule(D.ctx, 0, &D.stop_deadline, stop_deadline_cb, 1900 * LWS_US_PER_MS);
	sync_shutdown(D.sync, stopped, NULL);
}

static void free_options(struct sync_profile_option *popts, size_t n);
static int check_config_dir(char **ret_err);

/* The core's view of a configuration; token files are read here. *ret_popts
 * (tokens inside: free with free_options) backs so->profiles. */
static int
build_options(const struct instantd_config *cfg, struct sync_options *so,
    struct sync_profile_option **ret_popts)
{
	struct sync_profile_option *popts = calloc(cfg->n_profiles ? cfg->n_profiles : 1, sizeof(*popts));

	if (popts == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_profiles; i++) {
		const struct profile_config *pc = &cfg->profiles[i];
		_cleanup_free_ char *err = NULL;
		char *token = NULL;
		int r;

		if (pc->token_file) {
			r = config_read_token(pc->token_file, &token, &err);
			if (r < 0) {
				log_error("profile %s: %s", pc->name, err ? err : strerror(-r));
				free_options(popts, i);
				return r;
			}
			(void)log_add_secret(token);
		}
		popts[i] = (struct sync_profile_option){
			.name = pc->name, .app_id = pc->app_id, .server = pc->server,
			.api_uri = pc->api_uri, .token = token, .ca_file = pc->ca_file,
		};
	}
	*so = (struct sync_options){
		.state_dir = cfg->state_dir,
		.default_server = cfg->server,
		.default_api_uri = cfg->api_uri,
		.ca_file = cfg->ca_file,
		.backoff_base_ms = cfg->backoff_base_ms,
		.backoff_cap_ms = cfg->backoff_cap_ms,
		.ping_interval_s = cfg->ping_interval_s,
		.idle_timeout_s = cfg->idle_timeout_s,
		.transact_timeout_s = cfg->transact_timeout_s,
		.connect_timeout_s = cfg->connect_timeout_s,
		.unsubscribe_grace_ms = cfg->unsubscribe_grace_ms,
		.cache_budget_bytes = cfg->cache_budget_bytes,
		.max_database_bytes = cfg->max_database_bytes,
		.max_subs_per_conn = cfg->max_subscriptions_per_connection,
		.profiles = popts,
		.n_profiles = cfg->n_profiles,
	};
	*ret_popts = popts;
	return 0;
}

static void
free_options(struct sync_profile_option *popts, size_t n)
{
	for (size_t i = 0; popts && i < n; i++)
		if (popts[i].token) {
			explicit_bzero((char *)popts[i].token, strlen(popts[i].token));
			free((char *)popts[i].token);
		}
	free(popts);
}

/* Command-line options win over the file, on start and on every reload. */
static int
apply_overrides(struct instantd_config *cfg, char **ret_err)
{
	int r = 0;

	if ((D.opt_socket && (r = config_set(cfg, "socket", D.opt_socket, ret_err)) < 0) ||
	    (D.opt_state && (r = config_set(cfg, "state-dir", D.opt_state, ret_err)) < 0) ||
	    (D.opt_server && (r = config_set(cfg, "server", D.opt_server, ret_err)) < 0))
		return r;
	for (int i = 0; i < D.verbose; i++)
		config_raise_log_level(cfg);
	return 0;
}

/* Keys a reload cannot apply to the running daemon: the socket and the IPC
 * limits are fixed when the listener is made, the state directory holds the
 * open databases, and the global ca-file belongs to the network vhost. */
enum key_kind { KEY_STR, KEY_SIZE, KEY_INT };
static const struct restart_key {
	const char *key;
	enum key_kind kind;
	size_t offset;
} restart_keys[] = {
	{ "socket", KEY_STR, offsetof(struct instantd_config, socket_path) },
	{ "state-dir", KEY_STR, offsetof(struct instantd_config, state_dir) },
	{ "ca-file", KEY_STR, offsetof(struct instantd_config, ca_file) },
	{ "instant-listen", KEY_STR, offsetof(struct instantd_config, instant_listen) },
	{ "instant-allowed-origins", KEY_STR, offsetof(struct instantd_config, instant_allowed_origins) },
	{ "max-message-bytes", KEY_SIZE, offsetof(struct instantd_config, max_message_bytes) },
	{ "max-output-bytes", KEY_SIZE, offsetof(struct instantd_config, max_output_bytes) },
	{ "max-json-depth", KEY_INT, offsetof(struct instantd_config, max_json_depth) },
	{ "max-connections", KEY_INT, offsetof(struct instantd_config, max_connections) },
};

/* Log each restart-only key that the new configuration changes, by name, and
 * keep the running value in it, so what the daemon reports stays what it does. */
static void
keep_restart_keys(const struct instantd_config *old, struct instantd_config *cfg)
{
	for (size_t i = 0; i < ELEMENTSOF(restart_keys); i++) {
		const struct restart_key *k = &restart_keys[i];
		const char *o = (const char *)old + k->offset;
		char *n = (char *)cfg + k->offset;
		bool differs;

		switch (k->kind) {
		case KEY_STR: {
			char **ns = (char **)n, *const *os = (char *const *)o;

			differs = (*os == NULL) != (*ns == NULL) || (*os && strcmp(*os, *ns) != 0);
			if (differs) {
				free(*ns);
				*ns = *os ? strdup(*os) : NULL;
			}
			break;
		}
		case KEY_SIZE:
			differs = memcmp(o, n, sizeof(size_t)) != 0;
			memcpy(n, o, sizeof(size_t));
			break;
		default:
			differs = memcmp(o, n, sizeof(int)) != 0;
			memcpy(n, o, sizeof(int));
			break;
		}
		if (differs)
			log_warn("reload: '%s' changed; it takes effect only when instantd restarts", k->key);
	}
}

static void
reload(void)
{
	_cleanup_free_ char *err = NULL;
	struct instantd_config *cfg = NULL;
	int r;

	notify_reloading();
	r = check_config_dir(&err);
	if (r >= 0)
		r = config_load(D.config_path, &cfg, &err);
	if (r >= 0)
		r = apply_overrides(cfg, &err);
	if (r >= 0)	/* a state-dir changed in the file gets the start-up checks too */
		r = fs_make_dir(cfg->state_dir, "state directory", &err);
	if (r < 0) {
		log_error("reload failed, keeping the old configuration: %s", err ? err : strerror(-r));
		config_free(cfg);
	} else {
		struct sync_profile_option *popts = NULL;
		struct sync_options so;

		/* Logging follows at once; servers, profiles and limits apply to
		 * profiles opened from now on; nobody is disconnected. */
		keep_restart_keys(D.cfg, cfg);
		r = build_options(cfg, &so, &popts);
		if (r >= 0)
			r = sync_set_options(D.sync, &so);
		free_options(popts, cfg->n_profiles);
		if (r < 0) {
			log_error("reload failed, keeping the old configuration: %s", strerror(-r));
			config_free(cfg);
		} else {
			log_set_level(cfg->log_level);
			config_free(D.cfg);
			D.cfg = cfg;
			log_notice("configuration reloaded");
		}
	}
	notify_ready(NULL);
}

/* ---- requests the daemon answers itself (no profile involved) ---- */

static void
op_set_log_level(struct ipc_conn *c, const cJSON *msg, const char *ceid)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "level"));
	int level, previous = log_get_level();
	cJSON *m;

	/* ipc_protocol_check has made sure it is one of the five names. */
	if (log_level_from_string(name, &level) < 0) {
		(void)ipc_conn_send_error(c, ceid, IPC_ERR_INVALID_REQUEST, "unknown log level");
		return;
	}
	log_set_level(level);
	lws_set_log_level(log_lws_mask(level), log_lws_emit);
	/* At notice so that the change itself shows at the default level. */
	log_notice("log level set to %s (was %s) by pid %d; a reload or restart "
	    "goes back to the configuration's", log_level_to_string(level),
	    log_level_to_string(previous), (int)ipc_conn_pid(c));
	m = cJSON_CreateObject();
	if (m == NULL || !cJSON_AddStringToObject(m, "op", IPC_REPLY_SET_LOG_LEVEL_OK) ||
	    (ceid != NULL && !cJSON_AddStringToObject(m, "client-event-id", ceid)) ||
	    !cJSON_AddStringToObject(m, "level", log_level_to_string(level)) ||
	    !cJSON_AddStringToObject(m, "previous", log_level_to_string(previous))) {
		cJSON_Delete(m);
		(void)ipc_conn_send_error(c, ceid, IPC_ERR_INTERNAL, "out of memory");
		return;
	}
	(void)ipc_conn_send(c, m);
	cJSON_Delete(m);
}

static const struct {
	const char *op;
	void (*fn)(struct ipc_conn *c, const cJSON *msg, const char *ceid);
} daemon_ops[] = {
	{ IPC_OP_NAME_SET_LOG_LEVEL, op_set_log_level },
};

static void
daemon_on_request(void *ud, struct ipc_conn *c, const cJSON *msg)
{
	const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "op"));
	const char *ceid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg,
	    "client-event-id"));

	for (size_t i = 0; op != NULL && i < ELEMENTSOF(daemon_ops); i++)
		if (strcmp(op, daemon_ops[i].op) == 0) {
			daemon_ops[i].fn(c, msg, ceid);
			return;
		}
	sync_ipc_callbacks.on_request(ud, c, msg);
}

static void
daemon_on_refused(void *ud, uid_t uid, pid_t pid)
{
	log_warn("refused a connection from uid %u (pid %d): only uid %u may use %s",
	    (unsigned)uid, (int)pid, (unsigned)geteuid(), D.cfg->socket_path);
}

static int
signal_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct signalfd_siginfo si;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	while (read(D.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			begin_stop();
			break;
		case SIGHUP:
			reload();
			break;
		}
	}
	return 0;
}

/* The directory part of path, malloc'd; NULL on ENOMEM. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

/* A socket systemd hands us needs no directory of ours; otherwise the
 * socket's directory is made 0700 if missing, and must be ours and private
 * if it exists (its mode is never changed: it may be $HOME). */
static int
open_listener(int *ret_fd)
{
	_cleanup_free_ char *dir = NULL, *err = NULL;
	int r = ipc_server_inherited_fd(ret_fd);

	if (r != -ENOENT) {
		if (r < 0)
			log_error("cannot use the socket passed by systemd: %s", strerror(-r));
		return r;
	}
	dir = dir_of(D.cfg->socket_path);
	if (dir == NULL)
		return -ENOMEM;
	r = fs_make_dir(dir, "runtime directory", &err);
	if (r < 0) {
		log_error("%s", err ? err : strerror(-r));
		return r;
	}
	r = ipc_server_open_socket(D.cfg->socket_path, ret_fd);
	if (r < 0)
		log_error("cannot listen on %s: %s", D.cfg->socket_path, strerror(-r));
	return r;
}

/* The configuration names servers and token files: it must come from a
 * directory nobody else can write. A missing default file is fine. On
 * failure *ret_err (malloc'd, may stay NULL) says why. */
static int
check_config_dir(char **ret_err)
{
	_cleanup_free_ char *def = NULL, *dir = NULL;
	const char *path = D.config_path;
	int r;

	if (path == NULL) {
		if (config_default_path(&def) < 0)
			return 0;
		path = def;
	}
	dir = dir_of(path);
	if (dir == NULL)
		return -ENOMEM;
	r = fs_check_dir(dir, "configuration directory", ret_err);
	if (r == -ENOENT && D.config_path == NULL) {
		free(*ret_err);
		*ret_err = NULL;
		return 0;
	}
	return r;
}

static int
run(void)
{
	static struct lws_protocols protos[UPSTREAM_PROTOCOL_COUNT + 5];
	struct lws_context_creation_info ci;
	struct sync_profile_option *popts = NULL;
	struct sync_options so = { 0 };
	struct ipc_limits lim;
	lws_sock_file_fd_type fdu;
	sigset_t mask;
	int listen_fd = -1, r, n = 0;

	for (int i = 0; i < UPSTREAM_PROTOCOL_COUNT; i++)
		protos[n++] = upstream_protocols[i];
	protos[n++] = ipc_server_protocols[0];
	protos[n++] = ipc_server_protocols[1];
	protos[n++] = auth_protocol;
	protos[n++] = (struct lws_protocols){ .name = "signals", .callback = signal_cb };

	/* Signals are read from the loop; SIGPIPE never kills us. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	D.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (D.sigfd < 0) {
		log_error("signalfd: %m");
		return 1;
	}

	umask(077);
	{
		_cleanup_free_ char *err = NULL;

		r = fs_make_dir(D.cfg->state_dir, "state directory", &err);
		if (r < 0) {
			log_error("%s", err ? err : strerror(-r));
			return 1;
		}
	}

	/* lws sizes its fd table from the soft limit when the context is made. */
	ipc_raise_nofile_limit();
	lws_set_log_level(log_lws_mask(log_get_level()), log_lws_emit);
	memset(&ci, 0, sizeof(ci));
	ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	ci.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	/* lws reads every socket into this one buffer: at its 4 KiB default, a
	 * 600 KB refresh costs 150 reads and loop turns before it is whole. */
	ci.pt_serv_buf_size = 64 * 1024;
	/* lws's own client timeouts stay longer than the sessions' (see upstream.h) */
	ci.timeout_secs = (unsigned)UPSTREAM_LWS_TIMEOUT_S(D.cfg->connect_timeout_s);
	D.ctx = lws_create_context(&ci);
	if (D.ctx == NULL) {
		log_error("cannot create the event loop");
		return 1;
	}
	memset(&ci, 0, sizeof(ci));
	ci.vhost_name = "net";
	ci.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	ci.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
	ci.protocols = protos;
	ci.connect_timeout_secs = (unsigned)UPSTREAM_LWS_TIMEOUT_S(D.cfg->connect_timeout_s);
	r = tls_client_ctx_new(D.cfg->ca_file, &D.tls);
	if (r < 0) {
		log_error("cannot set up TLS with ca-file %s: %s", D.cfg->ca_file ? D.cfg->ca_file : "(none)",
		    strerror(-r));
		return 1;
	}
	ci.provided_client_ssl_ctx = D.tls;
	D.vh = lws_create_vhost(D.ctx, &ci);
	if (D.vh == NULL) {
		log_error("cannot create the network vhost");
		return 1;
	}

	r = build_options(D.cfg, &so, &popts);
	if (r < 0)
		return 1;
	r = sync_new(D.ctx, D.vh, &so, &D.sync);
	free_options(popts, D.cfg->n_profiles);
	if (r < 0) {
		log_error("cannot start: %s", strerror(-r));
		return 1;
	}

	r = open_listener(&listen_fd);
	if (r < 0)
		return 1;	/* open_listener said why */
	ipc_limits_default(&lim);
	lim.max_message = D.cfg->max_message_bytes;
	lim.max_depth = D.cfg->max_json_depth;
	lim.max_output = D.cfg->max_output_bytes;
	lim.max_conns = (size_t)D.cfg->max_connections;
	lim.max_subs_per_conn = D.cfg->max_subscriptions_per_connection;
	D.ipc_cb = sync_ipc_callbacks;
	D.ipc_cb.on_request = daemon_on_request;
	D.ipc_cb.on_refused = daemon_on_refused;
	r = ipc_server_new(D.vh, listen_fd, &lim, &D.ipc_cb, D.sync, &D.ipc);
	if (r < 0) {
		log_error("cannot serve the socket: %s", strerror(-r));
		return 1;
	}
	{
		_cleanup_free_ char *dir = dir_of(D.cfg->socket_path), *path = NULL;
		struct endpoint_options eo = {
			.tcp_listen = D.cfg->instant_listen,
			.allowed_origins = D.cfg->instant_allowed_origins,
		};

		if (dir == NULL || asprintf(&path, "%s/instant.sock", dir) < 0) {
			log_error("out of memory");
			return 1;
		}
		eo.unix_path = path;
		/* Local programs are served even without it (say, socket-activated
		 * with the "ipc" listener only and no runtime directory). */
		r = endpoint_new(D.ctx, D.ipc, &eo, &D.ep);
		if (r < 0)
			log_warn("the Instant endpoint is off (see the error above); local programs "
			    "are served");
		ipc_server_forget_inherited();
	}
	fdu.filefd = D.sigfd;
	if (!lws_adopt_descriptor_vhost(D.vh, LWS_ADOPT_RAW_FILE_DESC, fdu, "signals", NULL)) {
		log_error("cannot watch signals");
		return 1;
	}

	/* Ready means ready for local programs: the server may well be away. */
	r = sync_start(D.sync);
	if (r < 0)
		log_warn("cannot look for queued writes: %s", strerror(-r));
	notify_ready("serving local programs");
	log_info("listening on %s", D.cfg->socket_path);
	if (notify_watchdog_usec(&D.watchdog_usec) > 0)
		lws_sul_schedule(D.ctx, 0, &D.watchdog, watchdog_cb, (lws_usec_t)(D.watchdog_usec / 2));
	lws_sul_schedule(D.ctx, 0, &D.status, status_cb, LWS_US_PER_SEC);

	while (!D.stopped)
		if (lws_service(D.ctx, 0) < 0)
			break;

	lws_sul_cancel(&D.watchdog);
	lws_sul_cancel(&D.status);
	lws_sul_cancel(&D.stop_deadline);
	endpoint_free(D.ep);
	D.ep = NULL;
	ipc_server_free(D.ipc);
	D.ipc = NULL;
	sync_free(D.sync);
	D.sync = NULL;
	lws_context_destroy(D.ctx);
	D.ctx = NULL;
	SSL_CTX_free(D.tls);
	D.tls = NULL;
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "server", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "check-config", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	_cleanup_free_ char *err = NULL;
	bool check_only = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:s:d:S:vfhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': D.config_path = optarg; break;
		case 's': D.opt_socket = optarg; break;
		case 'd': D.opt_state = optarg; break;
		case 'S': D.opt_server = optarg; break;
		case 'v': D.verbose++; break;
		case 'f': break;	/* always in the foreground; systemd does the rest */
		case 'C': check_only = true; break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("instantd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'instantd --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "instantd: unexpected argument '%s'\n"
		    "Try 'instantd --help' for more information.\n", argv[optind]);
		return 2;
	}
	r = check_config_dir(&err);
	if (r >= 0)
		r = config_load(D.config_path, &D.cfg, &err);
	if (r < 0) {
		fprintf(stderr, "instantd: %s\n", err ? err : strerror(-r));
		return 1;
	}
	r = apply_overrides(D.cfg, &err);
	if (r < 0) {
		fprintf(stderr, "instantd: %s\n", err ? err : strerror(-r));
		return check_only ? 1 : 2;
	}
	if (check_only) {
		print_config(stdout, D.cfg);
		config_free(D.cfg);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	r = log_init("instantd", D.cfg->log_level);
	if (r < 0)
		return 1;
	r = run();
	config_free(D.cfg);
	log_forget_secrets();
	return r;
}
