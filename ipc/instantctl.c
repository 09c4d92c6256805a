/* instantctl: a command-line client of the instantd daemon, built on
 * libinstantd: status, queries, subscriptions, writes, the outbox, rooms. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc/instantctl-doctor.h"
#include "ipc/instantd.h"
#include "ipc/instantctl.h"

struct ctl_options opt = { .timeout_ms = 30000 };

/* How long query waits for the server by default: long enough for a fresh
 * daemon to connect, short enough that a person is not left guessing. */
#define CTL_QUERY_WAIT_MS 10000
/* The daemon answers a query-once that timed out itself (naming why): wait
 * this much longer for that answer than the daemon waits for the server. */
#define CTL_QUERY_MARGIN_MS 2000

volatile sig_atomic_t ctl_interrupted;
/* The timeout-ms the last query asked the daemon to wait for the server; 0: none. */
static int ctl_server_wait_ms;

static void
ctl_on_signal(int sig)
{
	ctl_interrupted = 1;
}

static const char ctl_usage_main[] =
"Usage: instantctl [OPTIONS] COMMAND [ARGS...]\n"
"\n"
"Talk to instantd, the local InstantDB cache daemon.\n"
"\n"
"Commands:\n"
"  status [--watch]            Each profile's state, since when, server, user, queue\n"
"  profiles                    Every profile with its database size, queries, queue\n"
"  forget [--discard-queued] PROFILE\n"
"                              Remove a profile's stored data\n"
"  cache export|clear PROFILE  Write the mirrored data as JSON, or drop it\n"
"  query [--policy P] QUERY    Run an InstaQL query once and print the result\n"
"  watch [--count N] QUERY     Subscribe to a query and print every new result\n"
"  transact [--steps] [--wait] [OPS]\n"
"                              Queue a write (InstaML ops JSON, or stdin)\n"
"  mutations [list]            Show each queued or failed write and what it does\n"
"  mutations retry ID          Send a failed write again\n"
"  mutations discard ID        Drop a pending or failed write\n"
"  rooms join ROOM [--presence JSON] [--count N]\n"
"                              Join a room and print presence and broadcasts\n"
"  rooms broadcast ROOM TOPIC JSON\n"
"                              Send a broadcast to a room\n"
"  login --email ADDRESS [--code C] | --guest | --token-file FILE\n"
"                              Sign the app's profile in\n"
"  logout                      Sign out on the server and forget the token\n"
"  whoami                      Who the profile is signed in as\n"
"  auth send-code EMAIL | sign-in ... | sign-out | whoami\n"
"                              Sign the app's profile in or out\n"
"  doctor [PROFILE...]         Check the setup step by step; say what is wrong\n"
"                              and the command that fixes it\n"
"  log-level LEVEL             Set the daemon's log level now (error, warning,\n"
"                              notice, info, debug)\n"
"\n"
"Options:\n"
"  -s, --socket PATH     Daemon socket (default $INSTANTD_SOCKET, else\n"
"                        $XDG_RUNTIME_DIR/instantd/socket)\n"
"  -a, --app APP_ID      InstantDB app id (default $INSTANT_APP_ID)\n"
"  -p, --profile NAME    A profile from the daemon's configuration (instead of\n"
"                        --app)\n"
"  -u, --api-uri URL     The Instant server's HTTP API, e.g. https://api.instantdb.com\n"
"                        or a self-hosted one (default: the daemon's configuration)\n"
"      --server URL      Its sync WebSocket, e.g. wss://api.instantdb.com/runtime/session\n"
"      --token-env VAR   Take a refresh token from environment variable VAR\n"
"  -j, --json            Machine output: each daemon message as one JSON line\n"
"  -t, --timeout MS      How long to wait for an answer (default 30000; for\n"
"                        query, how long the daemon waits for the server: 10000)\n"
"  -h, --help            This text; COMMAND --help for a command's own\n"
"\n"
"Exit status: 0 ok, 1 the daemon reported an error, 2 usage error,\n"
"3 daemon unreachable, 4 timed out.\n";

int
ctl_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "instantctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'instantctl --help'.\n");
	return EXIT_USAGE;
}

static cJSON *
ctl_parse_json(const char *what, const char *text)
{
	cJSON *j = cJSON_Parse(text);

	if (j == NULL)
		fprintf(stderr, "instantctl: %s is not valid JSON\n", what);
	return j;
}

static char *
ctl_read_stdin(void)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	for (;;) {
		size_t n;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		n = fread(buf + len, 1, cap - len - 1, stdin);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = '\0';
	return buf;
}


void
ctl_print_json_line(const cJSON *msg)
{
	char *s = cJSON_PrintUnformatted(msg);

	if (s != NULL) {
		puts(s);
		cJSON_free(s);
	}
	fflush(stdout);
}

void
ctl_print_pretty(const cJSON *v)
{
	char *s = cJSON_Print(v);

	if (s != NULL) {
		puts(s);
		cJSON_free(s);
	}
	fflush(stdout);
}

/* ---- errors that name the cause and the fix ---- */

/* What each error type of PROTOCOL.md means to a person, and what to do. The
 * daemon's own message comes first; these add the cause and the fix. */
static const struct {
	const char *type;
	const char *cause;	/* NULL: the daemon's message says it all */
	const char *fix;	/* NULL: nothing to run */
} ctl_error_texts[] = {
	{ "invalid-json", "the daemon could not read the request as JSON",
	  "a bug in the program that sent it (instantctl: please report it)" },
	{ "too-large", "the request is longer than the daemon's message limit "
	  "(max-message-bytes, 16 MiB unless configured)",
	  "send less at once, or raise max-message-bytes in instantd.conf and reload "
	  "(systemctl --user reload instantd)" },
	{ "too-deep", "the JSON nests deeper than the daemon's limit (max-json-depth, 64 "
	  "unless configured)",
	  "nest less, or raise max-json-depth in instantd.conf and reload "
	  "(systemctl --user reload instantd)" },
	{ "invalid-utf8", "the request is not valid UTF-8", "send UTF-8 text" },
	{ "too-many-connections", "the daemon already serves its connection limit "
	  "(max-connections)",
	  "close idle programs, or raise max-connections in instantd.conf" },
	{ "invalid-op", NULL, "see instantctl --help and the protocol reference (PROTOCOL.md)" },
	{ "invalid-request", NULL, NULL },
	{ "not-initialized", "the request needs an app first", "pass --app APP_ID or --profile NAME" },
	{ "invalid-query", "the query is not valid InstaQL", NULL },
	{ "invalid-transaction", "the write cannot be turned into a valid transaction; "
	  "nothing was queued", NULL },
	{ "storage-full", "the disk of the daemon's state directory is full (or "
	  "max-database-bytes is reached); nothing was queued",
	  "free disk space (df -h ~/.local/state), or raise max-database-bytes" },
	{ "offline", "the daemon cannot reach the server now",
	  "writes stay queued and go out when it is back; instantctl doctor tells why" },
	{ "not-found", NULL, NULL },
	{ "permission-denied", "the server's permission rules refused it",
	  "check the app's permission rules, or sign in as a user they allow (instantctl login)" },
	{ "server-error", "the server refused the request", NULL },
	{ "auth-failed", "the server did not accept the sign-in or the profile's refresh token",
	  "sign in again: instantctl --app APP_ID login --email ADDRESS (or --guest)" },
	{ "rate-limited", "the server refuses sign-in calls this often", "wait a minute, then try again" },
	{ "app-not-found", "the server does not know this app id",
	  "check the app id (--app, INSTANT_APP_ID or app-id in instantd.conf) and the server" },
	{ "app-read-only", "the app accepts no writes now (for example an expired hosted app)",
	  "queued writes wait; renew the app or point the profile at another server" },
	{ "too-many-subscriptions", "this connection has the maximum number of subscriptions "
	  "(max-subscriptions-per-connection)", "remove some, or raise the limit in instantd.conf" },
	{ "timeout", "the server did not answer in time; a write stays queued",
	  "instantctl status shows the connection; instantctl doctor tells why" },
	{ "internal", "an unexpected failure inside the daemon",
	  "see its log: journalctl --user -u instantd" },
};

/* The cause and fix of an error type (both NULL when the table has no entry). */
static void
ctl_error_text(const char *type, const char **ret_cause, const char **ret_fix)
{
	*ret_cause = *ret_fix = NULL;
	for (size_t i = 0; i < sizeof(ctl_error_texts) / sizeof(ctl_error_texts[0]); i++)
		if (strcmp(type, ctl_error_texts[i].type) == 0) {
			*ret_cause = ctl_error_texts[i].cause;
			*ret_fix = ctl_error_texts[i].fix;
		}
}

static const char ctl_fix_start[] = "systemctl --user enable --now instantd.socket";

/* The first framing error that answered no request (too-large, too-deep, ...):
 * the daemon sends it and closes, so it explains the end of the stream. */
static cJSON *ctl_fatal;

static void
ctl_on_error(struct instantd_client *c, const char *id, const char *type, const char *message,
    const cJSON *msg, void *ud)
{
	static const char *const fatal[] = { "invalid-json", "too-large", "too-deep",
	    "invalid-utf8", "too-many-connections" };

	for (size_t i = 0; id == NULL && ctl_fatal == NULL && type != NULL &&
	    i < sizeof(fatal) / sizeof(fatal[0]); i++)
		if (strcmp(type, fatal[i]) == 0)
			ctl_fatal = cJSON_Duplicate(msg, 1);
}

const char *
ctl_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

double
ctl_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The daemon's status of the profile this command names, asked on a fresh
 * connection (the command's own may be gone); NULL when it cannot be had
 * within timeout_ms. *ret_alive tells whether the daemon answered at all. */
static cJSON *
ctl_probe_profile(int timeout_ms, bool *ret_alive)
{
	struct instantd_client *c = NULL;
	cJSON *req, *reply = NULL, *found = NULL;
	const cJSON *list, *e;

	*ret_alive = false;
	if (instantd_connect(opt.socket, &c) < 0)
		return NULL;
	req = ctl_req("status");
	if (instantd_request_sync(c, req, timeout_ms, &reply) == 0 && !instantd_is_error(reply)) {
		*ret_alive = true;
		list = cJSON_GetObjectItemCaseSensitive(reply, "profiles");
		cJSON_ArrayForEach(e, list) {
			const char *app = ctl_str(e, "app-id"), *name = ctl_str(e, "profile");
			const char *server = ctl_str(e, "server");

			if ((opt.profile != NULL && name != NULL && strcmp(opt.profile, name) == 0) ||
			    (opt.profile == NULL && opt.app_id != NULL && app != NULL &&
			    strcmp(opt.app_id, app) == 0 && (opt.server == NULL ||
			    (server != NULL && strcmp(opt.server, server) == 0)))) {
				found = cJSON_Duplicate(e, 1);
				break;
			}
		}
	}
	cJSON_Delete(req);
	cJSON_Delete(reply);
	instantd_free(c);
	return found;
}

/* Why a profile is not online, in words, from its status: the type a person
 * should read (not "offline" when the server refused us), the cause and the fix.
 * False when the profile looks fine. */
static bool
ctl_explain_profile(const cJSON *st, const char **ret_type, char *cause, size_t n,
    const char **ret_fix)
{
	const char *state = ctl_str(st, "state"), *err = ctl_str(st, "last-error");
	const char *server = ctl_str(st, "server"), *app = ctl_str(st, "app-id");

	if (state == NULL || strcmp(state, "authenticated") == 0)
		return false;
	server = server != NULL ? server : "the server";
	if (strcmp(state, "app-not-found") == 0) {
		*ret_type = "app-not-found";
		snprintf(cause, n, "%s does not know app %s (%s)", server, app ? app : "?",
		    err ? err : "init rejected");
		*ret_fix = "check the app id (--app, INSTANT_APP_ID or app-id in instantd.conf) "
		    "and the server it belongs to";
	} else if (strcmp(state, "auth-failed") == 0 || strcmp(state, "signed-out") == 0) {
		*ret_type = "auth-failed";
		snprintf(cause, n, "%s refused this profile's refresh token (%s)", server,
		    err ? err : "signed out");
		*ret_fix = "sign in again: instantctl --app APP_ID login --email ADDRESS "
		    "(or --guest, or --token-file FILE)";
	} else if (err != NULL && strstr(err, "TLS") != NULL) {
		*ret_type = "tls-failed";
		snprintf(cause, n, "the TLS connection to %s failed: %s", server, err);
		*ret_fix = "for a server with a private CA set ca-file = /path/to/ca.pem in "
		    "instantd.conf; otherwise fix the server's certificate (or its host name)";
	} else if (err != NULL && strstr(err, "DNS") != NULL) {
		*ret_type = "offline";
		snprintf(cause, n, "the server's name does not resolve: %s", err);
		*ret_fix = "check the server URL (server = in instantd.conf) and the network";
	} else {
		*ret_type = "offline";
		if (err != NULL)
			snprintf(cause, n, "cannot reach %s: %s", server, err);
		else
			snprintf(cause, n, "cannot reach %s (%s)", server, state);
		*ret_fix = "writes stay queued and go out when it is back; check the server "
		    "URL and the network (instantctl doctor)";
	}
	return true;
}

static void
ctl_print_cause(const char *type, const char *message, const char *cause, const char *fix)
{
	fprintf(stderr, "instantctl: %s: %s\n", type, message);
	if (cause != NULL && strcmp(cause, message) != 0)
		fprintf(stderr, "cause: %s\n", cause);
	if (fix != NULL)
		fprintf(stderr, "fix: %s\n", fix);
}

/* Report an error reply; returns EXIT_FAILED. */
int
ctl_report_error(const cJSON *msg)
{
	const char *type = ctl_str(msg, "type"), *m = ctl_str(msg, "message");
	const char *cause = NULL, *fix = NULL;
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(msg, "hint");
	char why[1024];

	if (opt.json) {
		ctl_print_json_line(msg);
		return EXIT_FAILED;
	}
	type = type != NULL ? type : "error";
	m = m != NULL ? m : "(no message)";
	ctl_error_text(type, &cause, &fix);
	/* The daemon was connected and waited for the server: say so, as when
	 * instantctl's own wait ends (ctl_exit_for). */
	if (strcmp(type, "timeout") == 0 && ctl_server_wait_ms > 0) {
		fprintf(stderr, "instantctl: timeout: no answer from the server within %d ms "
		    "(the daemon is up and connected)\ncause: %s\nfix: try again with a longer "
		    "--timeout; queued writes are kept\n", ctl_server_wait_ms, m);
		return EXIT_FAILED;
	}
	/* "offline" is what the daemon sees; the profile's state says whether the
	 * server refused us (unknown app, token) or TLS failed. For a refusal it
	 * names the server and app the daemon asked. */
	if (strcmp(type, "offline") == 0 ||
	    strcmp(type, "app-not-found") == 0 || strcmp(type, "auth-failed") == 0) {
		bool alive;
		cJSON *st = ctl_probe_profile(2000, &alive);
		const char *t2;

		if (st != NULL && ctl_explain_profile(st, &t2, why, sizeof(why), &fix) &&
		    (strcmp(type, "offline") == 0 || strcmp(type, "timeout") == 0 ||
		    strcmp(type, t2) == 0)) {
			if (strcmp(type, "offline") == 0)
				type = t2;
			cause = why;
		}
		cJSON_Delete(st);
	}
	ctl_print_cause(type, m, cause, fix);
	if (cJSON_IsObject(h)) {
		char *hs = cJSON_PrintUnformatted(h);

		if (hs != NULL)
			fprintf(stderr, "hint: %s\n", hs);
		cJSON_free(hs);
	} else if (cJSON_IsString(h))
		fprintf(stderr, "hint: %s\n", h->valuestring);
	return EXIT_FAILED;
}

/* A request failed without an answer: the daemon closed, broke, or was silent. */
int
ctl_exit_for(int r)
{
	char why[1024];
	bool alive;
	cJSON *st;

	if (ctl_fatal != NULL) {
		/* The daemon said why before it closed. */
		int e = ctl_report_error(ctl_fatal);

		cJSON_Delete(ctl_fatal);
		ctl_fatal = NULL;
		return e;
	}
	if (r == -ETIMEDOUT) {
		const char *type, *fix = NULL;

		st = ctl_probe_profile(1000, &alive);
		if (!alive) {
			fprintf(stderr, "instantctl: timeout: the daemon did not answer within %d ms\n"
			    "cause: instantd is stuck or overloaded\n"
			    "fix: see its log (journalctl --user -u instantd), then "
			    "systemctl --user restart instantd\n", opt.timeout_ms);
		} else if (st != NULL && ctl_explain_profile(st, &type, why, sizeof(why), &fix)) {
			fprintf(stderr, "instantctl: timeout: no answer from the server within %d ms "
			    "(the daemon is up)\ncause: %s\nfix: %s\n", opt.timeout_ms, why, fix);
		} else {
			fprintf(stderr, "instantctl: timeout: no answer from the server within %d ms "
			    "(the daemon is up and connected)\nfix: try again with a longer "
			    "--timeout; queued writes are kept\n", opt.timeout_ms);
		}
		cJSON_Delete(st);
		return EXIT_TIMEOUT;
	}
	/* EPIPE is the daemon closing: its name would only mislead. */
	fprintf(stderr, "instantctl: the daemon closed the connection%s%s%s\n"
	    "cause: instantd stopped or restarted meanwhile\n"
	    "fix: systemctl --user status instantd; to start it: %s\n", r == -EPIPE ? "" : " (",
	    r == -EPIPE ? "" : strerror(-r), r == -EPIPE ? "" : ")", ctl_fix_start);
	return EXIT_UNREACHABLE;
}

/* Print fields as "key: value" lines, nested objects as "key.sub: value". */
static void
ctl_print_fields_prefix(const cJSON *obj, const char *prefix)
{
	for (const cJSON *f = obj ? obj->child : NULL; f != NULL; f = f->next) {
		char name[256];

		if (prefix[0] == '\0' && (strcmp(f->string, "op") == 0 ||
		    strcmp(f->string, "client-event-id") == 0))
			continue;
		/* A lone "status" object (the daemon's status reply) needs no prefix. */
		if (prefix[0] == '\0' && strcmp(f->string, "status") == 0 && cJSON_IsObject(f))
			snprintf(name, sizeof(name), "%s", "");
		else
			snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", f->string);
		if (cJSON_IsObject(f) && f->child != NULL) {
			ctl_print_fields_prefix(f, name);
		} else if (cJSON_IsArray(f) && strcmp(f->string, "profiles") == 0) {
			if (f->child == NULL)
				printf("profiles: none (no program has sent init yet)\n");
			for (const cJSON *e = f->child; e != NULL; e = e->next) {
				ctl_print_fields_prefix(e, "");
				printf("\n");
			}
		} else if (cJSON_IsString(f)) {
			printf("%s: %s\n", name, f->valuestring);
		} else {
			char *s = cJSON_PrintUnformatted(f);

			printf("%s: %s\n", name, s != NULL ? s : "?");
			cJSON_free(s);
		}
	}
}

static void
ctl_print_fields(const cJSON *msg)
{
	ctl_print_fields_prefix(msg, "");
	fflush(stdout);
}

/* Connect and send init; *ret is ready for requests. */
int
ctl_connect_opt(struct instantd_client **ret, bool allow_no_app)
{
	struct instantd_client *c;
	const char *token = NULL;
	cJSON *m, *reply = NULL;
	int r;

	bool have_app = (opt.app_id != NULL && opt.app_id[0] != '\0') || opt.profile != NULL;

	if (!have_app && !allow_no_app) {
		fprintf(stderr, "instantctl: no app id: pass --app APP_ID (or --profile NAME) "
		    "or set INSTANT_APP_ID\n");
		return EXIT_USAGE;
	}
	if (opt.token != NULL) {
		token = getenv(opt.token);
		if (token == NULL) {
			fprintf(stderr, "instantctl: environment variable %s is not set\n", opt.token);
			return EXIT_USAGE;
		}
	}
	r = instantd_connect(opt.socket, &c);
	if (r < 0) {
		char *path = NULL;

		if (opt.socket == NULL && instantd_default_socket_path(&path) < 0) {
			fprintf(stderr, "instantctl: no socket: set XDG_RUNTIME_DIR or "
			    "INSTANTD_SOCKET, or pass --socket\n");
			return EXIT_UNREACHABLE;
		}
		if (r == -EPERM)
			fprintf(stderr, "instantctl: refusing %s: it is served by another user, not by "
			    "you (uid %u); start your own instantd or pass --socket with your daemon's "
			    "socket\n", opt.socket != NULL ? opt.socket : path, (unsigned)geteuid());
		else if (r == -ENOENT || r == -ECONNREFUSED)
			fprintf(stderr, "instantctl: instantd is not running: nothing listens on %s (%s)\n"
			    "fix: %s (or run instantd by hand)\n", opt.socket != NULL ? opt.socket : path,
			    strerror(-r), ctl_fix_start);
		else
			fprintf(stderr, "instantctl: cannot reach instantd at %s: %s%s\n",
			    opt.socket != NULL ? opt.socket : path, strerror(-r),
			    r == -EACCES ? " (the socket belongs to another user?)" : "");
		free(path);
		return EXIT_UNREACHABLE;
	}
	instantd_set_callbacks(c, &(const struct instantd_callbacks){ .on_error = ctl_on_error }, NULL);
	if (!have_app) {
		*ret = c;	/* status of every profile, no init */
		return EXIT_OK;
	}
	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "op", "init");
	if (opt.app_id != NULL && opt.app_id[0] != '\0')
		cJSON_AddStringToObject(m, "app-id", opt.app_id);
	if (opt.profile != NULL)
		cJSON_AddStringToObject(m, "profile", opt.profile);
	if (opt.api_uri != NULL)
		cJSON_AddStringToObject(m, "api-uri", opt.api_uri);
	if (opt.server != NULL)
		cJSON_AddStringToObject(m, "server", opt.server);
	if (token != NULL)
		cJSON_AddStringToObject(m, "refresh-token", token);
	cJSON_AddStringToObject(m, "client-name", "instantctl");
	r = instantd_request_sync(c, m, opt.timeout_ms, &reply);
	cJSON_Delete(m);
	if (r < 0) {
		instantd_free(c);
		return ctl_exit_for(r);
	}
	if (instantd_is_error(reply)) {
		r = ctl_report_error(reply);
		cJSON_Delete(reply);
		instantd_free(c);
		return r;
	}
	cJSON_Delete(reply);
	*ret = c;
	return EXIT_OK;
}

static int
ctl_connect(struct instantd_client **ret)
{
	return ctl_connect_opt(ret, false);
}

/* One request, one reply: print it (fields, or JSON). */
int
ctl_simple_opt(cJSON *req, void (*print)(const cJSON *reply), bool allow_no_app)
{
	struct instantd_client *c;
	cJSON *reply = NULL;
	int r;

	r = ctl_connect_opt(&c, allow_no_app);
	if (r != EXIT_OK) {
		cJSON_Delete(req);
		return r;
	}
	r = instantd_request_sync(c, req, opt.timeout_ms, &reply);
	cJSON_Delete(req);
	if (r < 0) {
		instantd_free(c);
		return ctl_exit_for(r);
	}
	if (instantd_is_error(reply)) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(reply, "type");

		r = ctl_report_error(reply);
		if (cJSON_IsString(t) && strcmp(t->valuestring, "timeout") == 0)
			r = EXIT_TIMEOUT;	/* the daemon timed out waiting for the server */
	} else {
		if (opt.json)
			ctl_print_json_line(reply);
		else
			print(reply);
		r = EXIT_OK;
	}
	cJSON_Delete(reply);
	instantd_free(c);
	return r;
}

static int
ctl_simple(cJSON *req, void (*print)(const cJSON *reply))
{
	return ctl_simple_opt(req, print, false);
}

cJSON *
ctl_req(const char *op)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "op", op);
	return m;
}

/* Command-local option parsing: only --help plus what `longopts` adds. */
bool
ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

/* ---- query ---- */

static const char ctl_usage_query[] =
"Usage: instantctl [OPTIONS] query [--policy POLICY] [--no-partial] QUERY\n"
"\n"
"Run an InstaQL query once and print its result tree.\n"
"QUERY is JSON, e.g. '{\"goals\":{\"todos\":{}}}'; '-' reads it from stdin.\n"
"\n"
"  -p, --policy POLICY   cache-first (default): the mirror if it has the query,\n"
"                        else the server; network-only: always ask the server;\n"
"                        cache-only: never ask the server\n"
"      --no-partial      fail with 'offline' (cache-only: 'not-found') instead of\n"
"                        a partial answer for a query the mirror does not hold\n"
"\n"
"A query that needs the server waits while the daemon connects, up to --timeout\n"
"(default 10000 ms here), or with 'timeout' (exit status 4) when the time passes.\n"
"Once the daemon knows the server cannot be reached (and with cache-only), a\n"
"query the mirror does not hold is answered from every cached triple: a partial\n"
"result, said so on stderr, that may miss what only the server has.\n";

static void
ctl_print_result(const cJSON *reply)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(reply, "data");
	bool cache = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "from-cache"));
	bool pending = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "has-pending-writes"));
	bool partial = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "partial"));

	if (cache || pending)
		printf("# %s%s%s%s\n", cache ? "from cache" : "", cache && pending ? ", " : "",
		    pending ? "has pending writes" : "", partial ? ", partial" : "");
	if (partial)
		fprintf(stderr, "instantctl: partial result: this query is not cached, so it was "
		    "answered from every cached triple; the server was not reached, and what only "
		    "the server has is missing\n");
	ctl_print_pretty(data != NULL ? data : reply);
}

static cJSON *
ctl_query_arg(const char *arg)
{
	cJSON *q;
	char *text = NULL;

	if (strcmp(arg, "-") == 0) {
		text = ctl_read_stdin();
		if (text == NULL)
			return NULL;
		arg = text;
	}
	q = ctl_parse_json("QUERY", arg);
	free(text);
	if (q != NULL && !cJSON_IsObject(q)) {
		fprintf(stderr, "instantctl: QUERY must be a JSON object\n");
		cJSON_Delete(q);
		return NULL;
	}
	return q;
}

static int
ctl_query(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "no-partial", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *policy = NULL;
	bool no_partial = false;
	cJSON *q, *req;
	int ch, wait_ms;

	optind = 0;	/* 0: glibc re-initialises getopt for the command's own argv */
	while ((ch = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			policy = optarg;
			break;
		case 'P':
			no_partial = true;
			break;
		case 'h':
			fputs(ctl_usage_query, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (policy != NULL && strcmp(policy, "cache-first") != 0 &&
	    strcmp(policy, "network-only") != 0 && strcmp(policy, "cache-only") != 0)
		return ctl_usage_error("unknown policy '%s' (cache-first, network-only, cache-only)",
		    policy);
	if (argc - optind != 1)
		return ctl_usage_error("%s", "query needs exactly one QUERY argument");
	q = ctl_query_arg(argv[optind]);
	if (q == NULL)
		return EXIT_USAGE;
	req = ctl_req("query-once");
	cJSON_AddItemToObject(req, "q", q);
	if (policy != NULL)
		cJSON_AddStringToObject(req, "policy", policy);
	if (no_partial)
		cJSON_AddFalseToObject(req, "allow-partial");
	/* The daemon waits for the server (a fresh one may still be connecting)
	 * and says whether it gave up as offline or as timeout. */
	wait_ms = opt.timeout_set ? opt.timeout_ms : CTL_QUERY_WAIT_MS;
	ctl_server_wait_ms = wait_ms;
	cJSON_AddNumberToObject(req, "timeout-ms", wait_ms);
	opt.timeout_ms = wait_ms + CTL_QUERY_MARGIN_MS;
	return ctl_simple(req, ctl_print_result);
}

/* ---- streaming commands (watch, rooms join) ---- */

struct ctl_stream {
	int exit_code;
	bool done;
	long count;		/* stop after this many results/events; 0 = never */
	long seen;
	bool explain_wait;	/* say why when the first result is slow (watch) */
};


/* A watch whose query is not cached waits for the server: after a few seconds
 * without a result, say once why the server is not answering (when it is not). */
static void
ctl_stream_explain_wait(struct ctl_stream *st, int64_t started)
{
	const char *type, *fix = NULL;
	char why[1024];
	bool alive;
	cJSON *p;

	if (!st->explain_wait || st->seen > 0 || ctl_now_ms() - started < 3000)
		return;
	st->explain_wait = false;
	p = ctl_probe_profile(1000, &alive);
	if (p != NULL && ctl_explain_profile(p, &type, why, sizeof(why), &fix))
		fprintf(stderr, "instantctl: waiting for the first result (not cached): %s: %s\n"
		    "fix: %s\n", type, why, fix);
	cJSON_Delete(p);
}

/* The daemon said the app is unknown while the watch waits for its first result. */
static void
ctl_stream_explain_app(struct ctl_stream *st, const cJSON *msg)
{
	const char *type = "app-not-found", *cause, *fix, *m = ctl_str(msg, "message");
	char why[1024];
	bool alive;
	cJSON *p = ctl_probe_profile(1000, &alive);

	st->explain_wait = false;
	ctl_error_text(type, &cause, &fix);
	if (p == NULL || !ctl_explain_profile(p, &type, why, sizeof(why), &fix))
		snprintf(why, sizeof(why), "%s", m ? m : "the server does not know this app id");
	fprintf(stderr, "instantctl: waiting for the first result (not cached): %s: %s\n"
	    "fix: %s\n", type, why, fix ? fix : "check the app id and the server");
	cJSON_Delete(p);
}

static void
ctl_stream_message(struct instantd_client *c, const cJSON *msg, void *ud)
{
	struct ctl_stream *st = ud;
	const char *op = instantd_msg_op(msg);

	if (op == NULL)
		return;
	/* An unknown app is a notice for a subscription: the daemon keeps it in
	 * case the app appears, so the watch keeps waiting and says why. */
	if (instantd_is_error(msg) && !opt.json && st->explain_wait && ctl_str(msg, "type") &&
	    strcmp(ctl_str(msg, "type"), "app-not-found") == 0) {
		ctl_stream_explain_app(st, msg);
		return;
	}
	if (instantd_is_error(msg)) {
		st->exit_code = ctl_report_error(msg);
		st->done = true;
		return;
	}
	if (strcmp(op, "add-query-ok") == 0 || strcmp(op, "refresh-ok") == 0 ||
	    strcmp(op, "refresh-presence") == 0 || strcmp(op, "server-broadcast") == 0) {
		if (opt.json)
			ctl_print_json_line(msg);
		else if (strcmp(op, "refresh-presence") == 0) {
			const cJSON *data = cJSON_GetObjectItemCaseSensitive(msg, "peers");

			if (data == NULL)
				data = cJSON_GetObjectItemCaseSensitive(msg, "data");

			const cJSON *room = cJSON_GetObjectItemCaseSensitive(msg, "room-id");

			printf("# presence in %s\n", cJSON_IsString(room) ? room->valuestring : "room");
			ctl_print_pretty(data != NULL ? data : msg);
		} else if (strcmp(op, "server-broadcast") == 0) {
			const cJSON *topic = cJSON_GetObjectItemCaseSensitive(msg, "topic");
			const cJSON *data = cJSON_GetObjectItemCaseSensitive(msg, "data");

			printf("# broadcast %s\n", cJSON_IsString(topic) ? topic->valuestring : "");
			ctl_print_pretty(data != NULL ? data : msg);
		} else {
			printf("# %s\n", op);
			ctl_print_result(msg);
		}
		st->seen++;
		if (st->count > 0 && st->seen >= st->count)
			st->done = true;
	} else if (opt.json) {
		ctl_print_json_line(msg);
	}
}

static void
ctl_stream_disconnect(struct instantd_client *c, int reason, void *ud)
{
	struct ctl_stream *st = ud;

	if (!st->done) {
		fprintf(stderr, "instantctl: the daemon closed the connection\n"
		    "fix: systemctl --user status instantd; to start it: %s\n", ctl_fix_start);
		st->exit_code = EXIT_UNREACHABLE;
		st->done = true;
	}
}

/* Send req and stream until done, interrupted or disconnected. */
static int
ctl_stream(struct instantd_client *c, struct ctl_stream *st, cJSON *req)
{
	struct instantd_callbacks cb = {
		.on_message = ctl_stream_message,
		.on_disconnect = ctl_stream_disconnect,
	};
	int r;

	int64_t started = ctl_now_ms();

	instantd_set_callbacks(c, &cb, st);
	r = instantd_send(c, req, NULL);
	if (r < 0)
		return ctl_exit_for(r);
	while (!st->done && !ctl_interrupted) {
		r = instantd_wait(c, 1000);
		if (r < 0 && !st->done)
			return ctl_exit_for(r);
		ctl_stream_explain_wait(st, started);
	}
	return st->exit_code;
}

static const char ctl_usage_watch[] =
"Usage: instantctl [OPTIONS] watch [--count N] [--no-partial] QUERY\n"
"\n"
"Subscribe to an InstaQL query and print its result now (from the local\n"
"mirror when it has one) and again every time it changes, until interrupted.\n"
"Offline, a query the mirror does not hold is first answered partial, from\n"
"every cached triple (said so on stderr), then by the server once it is back.\n"
"QUERY is JSON; '-' reads it from stdin.\n"
"\n"
"  -n, --count N     Exit after N results\n"
"      --no-partial  Wait for the server instead of a partial first answer\n";

static int
ctl_watch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "no-partial", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ctl_stream st = { .explain_wait = true };
	struct instantd_client *c;
	bool no_partial = false;
	cJSON *q, *req;
	int ch, r;

	optind = 0;	/* 0: glibc re-initialises getopt for the command's own argv */
	while ((ch = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			st.count = strtol(optarg, NULL, 10);
			if (st.count <= 0)
				return ctl_usage_error("--count needs a positive number, not '%s'",
				    optarg);
			break;
		case 'P':
			no_partial = true;
			break;
		case 'h':
			fputs(ctl_usage_watch, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("%s", "watch needs exactly one QUERY argument");
	q = ctl_query_arg(argv[optind]);
	if (q == NULL)
		return EXIT_USAGE;
	r = ctl_connect(&c);
	if (r != EXIT_OK) {
		cJSON_Delete(q);
		return r;
	}
	req = ctl_req("add-query");
	cJSON_AddItemToObject(req, "q", q);
	if (no_partial)
		cJSON_AddFalseToObject(req, "allow-partial");
	r = ctl_stream(c, &st, req);
	cJSON_Delete(req);
	instantd_free(c);
	return r;
}

/* ---- transact ---- */

static const char ctl_usage_transact[] =
"Usage: instantctl [OPTIONS] transact [--steps] [--wait] [OPS]\n"
"\n"
"Queue a write. It is stored durably before the daemon answers, applied to\n"
"local results at once, and sent to the server when online.\n"
"OPS is a JSON array of InstaML ops, e.g.\n"
"  '[[\"update\",\"goals\",\"<uuid>\",{\"title\":\"Run\"}]]'\n"
"Without OPS (or with '-') it is read from stdin.\n"
"\n"
"  --steps   OPS are raw tx-steps, not InstaML\n"
"  --wait    Also wait until the server confirmed (or rejected) the write\n";

struct ctl_follow {
	const char *id;
	cJSON *final;		/* transact-ok or error with our id, owned */
};

static void
ctl_follow_message(struct instantd_client *c, const cJSON *msg, void *ud)
{
	struct ctl_follow *f = ud;
	const char *id = instantd_msg_id(msg);
	const char *op = instantd_msg_op(msg);

	if (f->final != NULL || id == NULL || f->id == NULL || strcmp(id, f->id) != 0 || op == NULL)
		return;
	if (strcmp(op, "transact-ok") == 0 || strcmp(op, "error") == 0)
		f->final = cJSON_Duplicate(msg, 1);
}

int64_t
ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ctl_transact(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "steps", no_argument, NULL, 's' },
		{ "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool steps = false, wait = false;
	struct instantd_client *c;
	cJSON *ops, *req, *reply = NULL;
	char *text = NULL;
	const char *arg;
	int ch, r;

	optind = 0;	/* 0: glibc re-initialises getopt for the command's own argv */
	while ((ch = getopt_long(argc, argv, "swh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			steps = true;
			break;
		case 'w':
			wait = true;
			break;
		case 'h':
			fputs(ctl_usage_transact, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return ctl_usage_error("%s", "transact takes at most one OPS argument");
	arg = argc - optind == 1 ? argv[optind] : "-";
	if (strcmp(arg, "-") == 0) {
		text = ctl_read_stdin();
		if (text == NULL)
			return EXIT_USAGE;
		arg = text;
	}
	ops = ctl_parse_json(steps ? "the tx-steps" : "OPS", arg);
	free(text);
	if (ops == NULL)
		return EXIT_USAGE;
	if (!cJSON_IsArray(ops)) {
		cJSON_Delete(ops);
		return ctl_usage_error("%s", "OPS must be a JSON array of ops");
	}
	r = ctl_connect(&c);
	if (r != EXIT_OK) {
		cJSON_Delete(ops);
		return r;
	}
	req = ctl_req("transact");
	cJSON_AddItemToObject(req, steps ? "tx-steps" : "ops", ops);
	r = instantd_request_sync(c, req, opt.timeout_ms, &reply);
	cJSON_Delete(req);
	if (r < 0) {
		instantd_free(c);
		return ctl_exit_for(r);
	}
	if (instantd_is_error(reply)) {
		r = ctl_report_error(reply);
		goto out;
	}
	if (opt.json)
		ctl_print_json_line(reply);
	else {
		const cJSON *mid = cJSON_GetObjectItemCaseSensitive(reply, "mutation-id");

		printf("queued: %s\n", cJSON_IsString(mid) ? mid->valuestring : "(no mutation id)");
		fflush(stdout);
	}
	r = EXIT_OK;
	if (wait) {
		/* The confirmation carries the same client-event-id. */
		struct ctl_follow f = { .id = instantd_msg_id(reply) };
		struct instantd_callbacks cb = { .on_message = ctl_follow_message };
		int64_t deadline = ctl_now_ms() + opt.timeout_ms;

		instantd_set_callbacks(c, &cb, &f);
		while (f.final == NULL && !ctl_interrupted) {
			int64_t left = deadline - ctl_now_ms();

			if (left <= 0) {
				r = ctl_exit_for(-ETIMEDOUT);
				goto out;
			}
			r = instantd_wait(c, (int)left);
			if (r < 0) {
				r = ctl_exit_for(r);
				goto out;
			}
		}
		if (f.final == NULL) {
			r = EXIT_FAILED;
			goto out;
		}
		r = EXIT_OK;
		if (instantd_is_error(f.final))
			r = ctl_report_error(f.final);
		else if (opt.json)
			ctl_print_json_line(f.final);
		else {
			const cJSON *tx = cJSON_GetObjectItemCaseSensitive(f.final, "tx-id");

			if (cJSON_IsNumber(tx))
				printf("confirmed: tx %.0f\n", tx->valuedouble);
			else
				printf("confirmed\n");
			fflush(stdout);
		}
		cJSON_Delete(f.final);
	}
out:
	cJSON_Delete(reply);
	instantd_free(c);
	return r;
}

/* ---- mutations ---- */

static const char ctl_usage_mutations[] =
"Usage: instantctl [OPTIONS] mutations [list]\n"
"       instantctl [OPTIONS] mutations retry MUTATION_ID\n"
"       instantctl [OPTIONS] mutations discard MUTATION_ID\n"
"\n"
"Show the writes the daemon still has to send (pending) and those the server\n"
"rejected (failed); send a failed one again; or drop one for good.\n";

static void
ctl_print_ok(const cJSON *reply)
{
	printf("ok\n");
	fflush(stdout);
}

static void
ctl_print_nothing(const cJSON *reply)
{
}

static void
ctl_print_signed_in(const cJSON *reply)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(reply, "user");
	const cJSON *email = cJSON_GetObjectItemCaseSensitive(u, "email");

	if (cJSON_IsString(email))
		printf("signed in as %s\n", email->valuestring);
	else
		printf("signed in as a guest\n");
	fflush(stdout);
}

static int
ctl_mutations(int argc, char **argv)
{
	cJSON *req;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_mutations, stdout);
		return EXIT_OK;
	}
	if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0))
		return ctl_mutations_list();
	if (argc == 3 && (strcmp(argv[1], "retry") == 0 || strcmp(argv[1], "discard") == 0)) {
		req = ctl_req(strcmp(argv[1], "retry") == 0 ? "retry-mutation" : "discard-mutation");
		cJSON_AddStringToObject(req, "mutation-id", argv[2]);
		return ctl_simple(req, ctl_print_ok);
	}
	return ctl_usage_error("%s", "usage: mutations [list] | retry ID | discard ID");
}

/* ---- rooms ---- */

static const char ctl_usage_rooms[] =
"Usage: instantctl [OPTIONS] rooms join ROOM [--type TYPE] [--presence JSON] [--count N]\n"
"       instantctl [OPTIONS] rooms broadcast ROOM TOPIC JSON\n"
"\n"
"join: join ROOM as a peer (optionally with presence data) and print the\n"
"room's presence and broadcasts until interrupted (or N events).\n"
"broadcast: send JSON to everyone in ROOM under TOPIC.\n";

static int
ctl_rooms(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "presence", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ctl_stream st = { 0 };
	struct instantd_client *c;
	const char *type = NULL, *room;
	cJSON *presence = NULL, *req;
	int ch, r;

	if (ctl_wants_help(argc, argv) || argc < 2) {
		fputs(ctl_usage_rooms, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "broadcast") == 0) {
		cJSON *data;

		if (argc != 5)
			return ctl_usage_error("%s", "usage: rooms broadcast ROOM TOPIC JSON");
		data = ctl_parse_json("the broadcast data", argv[4]);
		if (data == NULL)
			return EXIT_USAGE;
		/* The daemon relays broadcasts only from a program in the room: join
		 * on this connection first (closing it leaves again). */
		r = ctl_connect(&c);
		if (r != EXIT_OK) {
			cJSON_Delete(data);
			return r;
		}
		for (int step = 0; step < 2; step++) {
			cJSON *reply = NULL;

			req = ctl_req(step == 0 ? "join-room" : "client-broadcast");
			cJSON_AddStringToObject(req, "room-id", argv[2]);
			if (step == 1) {
				cJSON_AddStringToObject(req, "topic", argv[3]);
				cJSON_AddItemToObject(req, "data", data);
			}
			r = instantd_request_sync(c, req, opt.timeout_ms, &reply);
			cJSON_Delete(req);
			if (r < 0) {
				if (step == 0)
					cJSON_Delete(data);
				instantd_free(c);
				return ctl_exit_for(r);
			}
			if (instantd_is_error(reply)) {
				r = ctl_report_error(reply);
				cJSON_Delete(reply);
				if (step == 0)
					cJSON_Delete(data);
				instantd_free(c);
				return r;
			}
			cJSON_Delete(reply);
		}
		instantd_free(c);
		if (opt.json) {
			cJSON *ok = ctl_req("client-broadcast-ok");

			cJSON_AddStringToObject(ok, "room-id", argv[2]);
			ctl_print_json_line(ok);
			cJSON_Delete(ok);
		} else
			printf("ok\n");
		return EXIT_OK;
	}
	if (strcmp(argv[1], "join") != 0)
		return ctl_usage_error("unknown rooms command '%s' (join, broadcast)", argv[1]);
	argc--;
	argv++;
	optind = 0;	/* 0: glibc re-initialises getopt for the command's own argv */
	while ((ch = getopt_long(argc, argv, "t:p:n:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			type = optarg;
			break;
		case 'p':
			cJSON_Delete(presence);
			presence = ctl_parse_json("--presence", optarg);
			if (!cJSON_IsObject(presence)) {
				cJSON_Delete(presence);
				return ctl_usage_error("%s", "--presence needs a JSON object");
			}
			break;
		case 'n':
			st.count = strtol(optarg, NULL, 10);
			if (st.count <= 0) {
				cJSON_Delete(presence);
				return ctl_usage_error("--count needs a positive number, not '%s'",
				    optarg);
			}
			break;
		case 'h':
			fputs(ctl_usage_rooms, stdout);
			cJSON_Delete(presence);
			return EXIT_OK;
		default:
			cJSON_Delete(presence);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cJSON_Delete(presence);
		return ctl_usage_error("%s", "rooms join needs exactly one ROOM");
	}
	room = argv[optind];
	r = ctl_connect(&c);
	if (r != EXIT_OK) {
		cJSON_Delete(presence);
		return r;
	}
	req = ctl_req("join-room");
	cJSON_AddStringToObject(req, "room-id", room);
	if (type != NULL)
		cJSON_AddStringToObject(req, "room-type", type);
	if (presence != NULL)
		cJSON_AddItemToObject(req, "data", presence);
	r = ctl_stream(c, &st, req);
	cJSON_Delete(req);
	instantd_free(c);
	return r;
}

/* ---- auth ---- */

static const char ctl_usage_auth[] =
"Usage: instantctl [OPTIONS] auth send-code EMAIL\n"
"       instantctl [OPTIONS] auth sign-in code EMAIL CODE\n"
"       instantctl [OPTIONS] auth sign-in guest\n"
"       instantctl [OPTIONS] auth sign-in token      (reads the refresh token from stdin)\n"
"       instantctl [OPTIONS] auth sign-out\n"
"       instantctl [OPTIONS] auth whoami\n"
"\n"
"Sign the app's profile in or out. The daemon keeps the refresh token; it\n"
"never appears in output.\n";

static int
ctl_auth(int argc, char **argv)
{
	cJSON *req;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_auth, stdout);
		return EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "send-code") == 0) {
		req = ctl_req("send-magic-code");
		cJSON_AddStringToObject(req, "email", argv[2]);
		return ctl_simple(req, ctl_print_ok);
	}
	if (argc == 2 && strcmp(argv[1], "sign-out") == 0)
		return ctl_simple(ctl_req("sign-out"), ctl_print_ok);
	if (argc == 2 && strcmp(argv[1], "whoami") == 0)
		return ctl_simple(ctl_req("whoami"), ctl_print_fields);
	if (argc >= 3 && strcmp(argv[1], "sign-in") == 0) {
		req = ctl_req("sign-in");
		if (argc == 5 && strcmp(argv[2], "code") == 0) {
			cJSON_AddStringToObject(req, "method", "magic-code");
			cJSON_AddStringToObject(req, "email", argv[3]);
			cJSON_AddStringToObject(req, "code", argv[4]);
		} else if (argc == 3 && strcmp(argv[2], "guest") == 0) {
			cJSON_AddStringToObject(req, "method", "guest");
		} else if (argc == 3 && strcmp(argv[2], "token") == 0) {
			char *tok = ctl_read_stdin();
			size_t n = tok != NULL ? strcspn(tok, "\r\n") : 0;

			if (tok == NULL || n == 0) {
				free(tok);
				cJSON_Delete(req);
				return ctl_usage_error("%s", "auth sign-in token reads a token from stdin");
			}
			tok[n] = '\0';
			cJSON_AddStringToObject(req, "method", "token");
			cJSON_AddStringToObject(req, "refresh-token", tok);
			free(tok);
		} else {
			cJSON_Delete(req);
			return ctl_usage_error("%s", "usage: auth sign-in code EMAIL CODE | guest | token");
		}
		return ctl_simple(req, ctl_print_fields);
	}
	return ctl_usage_error("%s", "usage: auth send-code | sign-in | sign-out | whoami "
	    "(see 'instantctl auth --help')");
}

/* ---- login, logout, whoami: the sign-in story in one command each ---- */

static const char ctl_usage_login[] =
"Usage: instantctl [OPTIONS] login --email ADDRESS [--code CODE]\n"
"       instantctl [OPTIONS] login --guest\n"
"       instantctl [OPTIONS] login --token-file FILE\n"
"\n"
"Sign the app's profile in (--app or $INSTANT_APP_ID names the app).\n"
"  --email ADDRESS    the server mails a code; give it with --code, or type it\n"
"                     when asked (it is read from standard input)\n"
"  --guest            sign in as a guest; a later --email login upgrades the\n"
"                     guest and keeps its data\n"
"  --token-file FILE  adopt an existing refresh token (a file only you can\n"
"                     read) once the server has accepted it\n"
"The daemon keeps the refresh token in a 0600 file of its state directory; the\n"
"token never appears on a command line or in any output.\n";

/* A token file must be ours alone, like the daemon's own. */
static char *
ctl_read_token_file(const char *path)
{
	struct stat st;
	char buf[512];
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "instantctl: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		fprintf(stderr, "instantctl: %s must be a regular file that only you can read "
		    "(chmod 600 %s)\n", path, path);
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n \t")] = '\0';
	if (buf[0] == '\0') {
		fprintf(stderr, "instantctl: %s holds no token\n", path);
		return NULL;
	}
	return strdup(buf);
}

static int
ctl_login(int argc, char **argv)
{
	const char *email = NULL, *code = NULL, *token_file = NULL;
	bool guest = false;
	char line[64];
	cJSON *req;
	int r;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_login, stdout);
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--guest") == 0)
			guest = true;
		else if (strcmp(argv[i], "--email") == 0 && i + 1 < argc)
			email = argv[++i];
		else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc)
			code = argv[++i];
		else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc)
			token_file = argv[++i];
		else
			return ctl_usage_error("login: unexpected '%s' (see 'instantctl login --help')", argv[i]);
	}
	if ((email != NULL) + guest + (token_file != NULL) != 1 || (code && !email))
		return ctl_usage_error("%s", "login needs exactly one of --email, --guest, --token-file");
	req = ctl_req("sign-in");
	if (guest) {
		cJSON_AddStringToObject(req, "method", "guest");
	} else if (token_file) {
		char *tok = ctl_read_token_file(token_file);

		if (tok == NULL) {
			cJSON_Delete(req);
			return EXIT_USAGE;
		}
		cJSON_AddStringToObject(req, "method", "token");
		cJSON_AddStringToObject(req, "refresh-token", tok);
		explicit_bzero(tok, strlen(tok));
		free(tok);
	} else {
		if (code == NULL) {
			cJSON *send = ctl_req("send-magic-code");

			cJSON_AddStringToObject(send, "email", email);
			r = ctl_simple(send, ctl_print_nothing);
			if (r != EXIT_OK) {
				cJSON_Delete(req);
				return r;
			}
			fprintf(stderr, "A code was sent to %s. Code: ", email);
			fflush(stderr);
			if (fgets(line, sizeof(line), stdin) == NULL) {
				cJSON_Delete(req);
				return ctl_usage_error("%s", "login: no code was given");
			}
			line[strcspn(line, "\r\n \t")] = '\0';
			code = line;
		}
		cJSON_AddStringToObject(req, "method", "magic-code");
		cJSON_AddStringToObject(req, "email", email);
		cJSON_AddStringToObject(req, "code", code);
	}
	return ctl_simple(req, ctl_print_signed_in);
}

static int
ctl_logout(int argc, char **argv)
{
	if (ctl_wants_help(argc, argv)) {
		fputs("Usage: instantctl [OPTIONS] logout\n\nSign the app's profile out on the server "
		    "and forget its token.\n", stdout);
		return EXIT_OK;
	}
	if (argc != 1)
		return ctl_usage_error("logout takes no arguments (got '%s')", argv[1]);
	return ctl_simple(ctl_req("sign-out"), ctl_print_ok);
}

static int
ctl_whoami(int argc, char **argv)
{
	if (ctl_wants_help(argc, argv)) {
		fputs("Usage: instantctl [OPTIONS] whoami\n\nWho the app's profile is signed in as.\n", stdout);
		return EXIT_OK;
	}
	if (argc != 1)
		return ctl_usage_error("whoami takes no arguments (got '%s')", argv[1]);
	return ctl_simple(ctl_req("whoami"), ctl_print_fields);
}

/* ---- log-level ---- */

static const char ctl_usage_log_level[] =
"Usage: instantctl [OPTIONS] log-level LEVEL\n"
"\n"
"Change how much the daemon logs, at once and without a restart. LEVEL is\n"
"error, warning, notice (the default), info or debug. The configuration's\n"
"log-level applies again after a reload (SIGHUP) or a restart.\n";

static void
ctl_print_log_level(const cJSON *reply)
{
	const char *level = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "level"));
	const char *prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "previous"));

	printf("log level: %s (was %s)\n", level != NULL ? level : "?", prev != NULL ? prev : "?");
	fflush(stdout);
}

static int
ctl_log_level(int argc, char **argv)
{
	static const char *const levels[] = { "error", "warning", "notice", "info", "debug" };
	cJSON *req;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_log_level, stdout);
		return EXIT_OK;
	}
	if (argc != 2)
		return ctl_usage_error("%s", "log-level needs one LEVEL (error, warning, notice, "
		    "info, debug)");
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(argv[1], levels[i]) == 0) {
			req = ctl_req("set-log-level");
			cJSON_AddStringToObject(req, "level", argv[1]);
			/* A daemon-wide setting: no app, no init. */
			opt.app_id = NULL;
			opt.profile = NULL;
			return ctl_simple_opt(req, ctl_print_log_level, true);
		}
	return ctl_usage_error("unknown log level '%s' (error, warning, notice, info, debug)",
	    argv[1]);
}

/* ---- doctor (ipc/instantctl-doctor.c) ---- */

static int
ctl_doctor(int argc, char **argv)
{
	const struct ctl_doctor_options o = { .socket = opt.socket, .timeout_ms = opt.timeout_ms };

	return ctl_doctor_main(argc, argv, &o);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "app", required_argument, NULL, 'a' },
		{ "api-uri", required_argument, NULL, 'u' },
		{ "server", required_argument, NULL, 'S' },
		{ "profile", required_argument, NULL, 'p' },
		{ "token-env", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "status", ctl_status },
		{ "query", ctl_query },
		{ "watch", ctl_watch },
		{ "transact", ctl_transact },
		{ "mutations", ctl_mutations },
		{ "rooms", ctl_rooms },
		{ "auth", ctl_auth },
		{ "login", ctl_login },
		{ "logout", ctl_logout },
		{ "whoami", ctl_whoami },
		{ "profiles", ctl_profiles },
		{ "forget", ctl_forget },
		{ "cache", ctl_cache },
		{ "log-level", ctl_log_level },
		{ "doctor", ctl_doctor },
	};
	struct sigaction sa = { .sa_handler = ctl_on_signal };
	int ch;

	opt.app_id = getenv("INSTANT_APP_ID");
	while ((ch = getopt_long(argc, argv, "+s:a:p:u:jt:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
			break;
		case 'a':
			opt.app_id = optarg;
			break;
		case 'u':
			opt.api_uri = optarg;
			break;
		case 'S':
			opt.server = optarg;
			break;
		case 'p':
			opt.profile = optarg;
			break;
		case 'T':
			opt.token = optarg;
			break;
		case 'j':
			opt.json = true;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end != '\0' || v <= 0 || v > 86400000)
				return ctl_usage_error("--timeout needs milliseconds, not '%s'", optarg);
			opt.timeout_ms = (int)v;
			opt.timeout_set = true;
			break;
		}
		case 'h':
			fputs(ctl_usage_main, stdout);
			return EXIT_OK;
		case 'V':
			printf("instantctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			fputs("Try 'instantctl --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(ctl_usage_main, stderr);
		return EXIT_USAGE;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[optind], cmds[i].name) == 0)
			return cmds[i].fn(argc - optind, argv + optind);
	return ctl_usage_error("unknown command '%s'", argv[optind]);
}
