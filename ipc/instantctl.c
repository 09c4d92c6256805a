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

#include "ipc/instantd.h"

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,	/* the daemon answered with an error */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,	/* no daemon, or it went away */
	EXIT_TIMEOUT = 4,
};

static struct {
	const char *socket;
	const char *app_id;
	const char *api_uri;
	const char *server;
	const char *profile;
	const char *token;
	bool json;
	int timeout_ms;
} opt = { .timeout_ms = 30000 };

static volatile sig_atomic_t ctl_interrupted;

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
"  status                      Connection state, server, queue depth, cache size\n"
"  query [--policy P] QUERY    Run an InstaQL query once and print the result\n"
"  watch [--count N] QUERY     Subscribe to a query and print every new result\n"
"  transact [--steps] [--wait] [OPS]\n"
"                              Queue a write (InstaML ops JSON, or stdin)\n"
"  mutations [list]            Show pending and failed writes\n"
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
"  -t, --timeout MS      How long to wait for an answer (default 30000)\n"
"  -h, --help            This text; COMMAND --help for a command's own\n"
"\n"
"Exit status: 0 ok, 1 the daemon reported an error, 2 usage error,\n"
"3 daemon unreachable, 4 timed out.\n";

static int
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

static int
ctl_exit_for(int r)
{
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "instantctl: timed out waiting for the daemon\n");
		return EXIT_TIMEOUT;
	}
	fprintf(stderr, "instantctl: lost the connection to the daemon: %s\n", strerror(-r));
	return EXIT_UNREACHABLE;
}

static void
ctl_print_json_line(const cJSON *msg)
{
	char *s = cJSON_PrintUnformatted(msg);

	if (s != NULL) {
		puts(s);
		cJSON_free(s);
	}
	fflush(stdout);
}

static void
ctl_print_pretty(const cJSON *v)
{
	char *s = cJSON_Print(v);

	if (s != NULL) {
		puts(s);
		cJSON_free(s);
	}
	fflush(stdout);
}

/* Report an error reply; returns EXIT_FAILED. */
static int
ctl_report_error(const cJSON *msg)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(msg, "type");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "message");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(msg, "hint");

	if (opt.json) {
		ctl_print_json_line(msg);
		return EXIT_FAILED;
	}
	fprintf(stderr, "instantctl: %s: %s\n", cJSON_IsString(t) ? t->valuestring : "error",
	    cJSON_IsString(m) ? m->valuestring : "(no message)");
	if (cJSON_IsString(h))
		fprintf(stderr, "hint: %s\n", h->valuestring);
	return EXIT_FAILED;
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
static int
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
		else
			fprintf(stderr, "instantctl: cannot reach instantd at %s: %s\n",
			    opt.socket != NULL ? opt.socket : path, strerror(-r));
		free(path);
		return EXIT_UNREACHABLE;
	}
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
static int
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
	if (instantd_is_error(reply))
		r = ctl_report_error(reply);
	else {
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

static cJSON *
ctl_req(const char *op)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "op", op);
	return m;
}

/* Command-local option parsing: only --help plus what `longopts` adds. */
static bool
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

/* ---- status ---- */

static const char ctl_usage_status[] =
"Usage: instantctl [OPTIONS] status\n"
"\n"
"Print the daemon's view of this app: connection state, server, signed-in\n"
"user, pending and failed writes, last sync, cache size. Without an app id\n"
"(--app or $INSTANT_APP_ID) it shows every profile the daemon serves.\n";

static int
ctl_status(int argc, char **argv)
{
	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_status, stdout);
		return EXIT_OK;
	}
	if (argc > 1)
		return ctl_usage_error("status takes no arguments (got '%s')", argv[1]);
	return ctl_simple_opt(ctl_req("status"), ctl_print_fields, true);
}

/* ---- query ---- */

static const char ctl_usage_query[] =
"Usage: instantctl [OPTIONS] query [--policy POLICY] QUERY\n"
"\n"
"Run an InstaQL query once and print its result tree.\n"
"QUERY is JSON, e.g. '{\"goals\":{\"todos\":{}}}'; '-' reads it from stdin.\n"
"\n"
"  -p, --policy POLICY   cache-first (default): the mirror if it has the query,\n"
"                        else the server; network-only: always ask the server;\n"
"                        cache-only: never ask the server\n";

static void
ctl_print_result(const cJSON *reply)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(reply, "data");
	bool cache = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "from-cache"));
	bool pending = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "has-pending-writes"));

	if (cache || pending)
		printf("# %s%s%s\n", cache ? "from cache" : "", cache && pending ? ", " : "",
		    pending ? "has pending writes" : "");
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
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *policy = NULL;
	cJSON *q, *req;
	int ch;

	optind = 0;	/* 0: glibc re-initialises getopt for the command's own argv */
	while ((ch = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			policy = optarg;
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
	return ctl_simple(req, ctl_print_result);
}

/* ---- streaming commands (watch, rooms join) ---- */

struct ctl_stream {
	int exit_code;
	bool done;
	long count;		/* stop after this many results/events; 0 = never */
	long seen;
};

static void
ctl_stream_message(struct instantd_client *c, const cJSON *msg, void *ud)
{
	struct ctl_stream *st = ud;
	const char *op = instantd_msg_op(msg);

	if (op == NULL)
		return;
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
		fprintf(stderr, "instantctl: the daemon closed the connection\n");
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

	instantd_set_callbacks(c, &cb, st);
	r = instantd_send(c, req, NULL);
	if (r < 0)
		return ctl_exit_for(r);
	while (!st->done && !ctl_interrupted) {
		r = instantd_wait(c, 1000);
		if (r < 0 && !st->done)
			return ctl_exit_for(r);
	}
	return st->exit_code;
}

static const char ctl_usage_watch[] =
"Usage: instantctl [OPTIONS] watch [--count N] QUERY\n"
"\n"
"Subscribe to an InstaQL query and print its result now (from the local\n"
"mirror when it has one) and again every time it changes, until interrupted.\n"
"QUERY is JSON; '-' reads it from stdin.\n"
"\n"
"  -n, --count N   Exit after N results\n";

static int
ctl_watch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ctl_stream st = { 0 };
	struct instantd_client *c;
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

static int64_t
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
ctl_print_mutation_list(const char *title, const cJSON *list)
{
	printf("%s: %d\n", title, cJSON_GetArraySize(list));
	for (const cJSON *e = list ? list->child : NULL; e != NULL; e = e->next) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "mutation-id");
		const cJSON *state = cJSON_GetObjectItemCaseSensitive(e, "state");
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "error");
		char *es = err != NULL ? cJSON_PrintUnformatted(err) : NULL;

		printf("  %s  %s%s%s\n", cJSON_IsString(id) ? id->valuestring : "?",
		    cJSON_IsString(state) ? state->valuestring : "",
		    es != NULL ? "  error: " : "", es != NULL ? es : "");
		cJSON_free(es);
	}
}

static void
ctl_print_mutations(const cJSON *reply)
{
	const cJSON *all = cJSON_GetObjectItemCaseSensitive(reply, "mutations");

	if (cJSON_IsArray(all))
		ctl_print_mutation_list("mutations", all);
	else {
		ctl_print_mutation_list("pending", cJSON_GetObjectItemCaseSensitive(reply, "pending"));
		ctl_print_mutation_list("failed", cJSON_GetObjectItemCaseSensitive(reply, "failed"));
	}
	fflush(stdout);
}

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
		return ctl_simple(ctl_req("list-mutations"), ctl_print_mutations);
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
