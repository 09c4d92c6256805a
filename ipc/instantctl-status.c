/* instantctl status: each profile's state as a person reads it (state in
 * words, since when, server, user, queue, replay progress), and --watch. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipc/instantctl.h"

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
ctl_words_duration(char *buf, size_t len, int64_t ms)
{
	int64_t s = ms < 0 ? 0 : ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%" PRId64 " s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 " min", s / 60);
	else if (s < 48 * 3600)
		snprintf(buf, len, "%" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRId64 " days", s / 86400);
	return buf;
}

const char *
ctl_words_count(char *buf, size_t len, double n)
{
	char digits[32];
	size_t nd, o = 0;

	snprintf(digits, sizeof(digits), "%.0f", n < 0 ? 0 : n);
	nd = strlen(digits);
	for (size_t i = 0; i < nd && o + 2 < len; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

const char *
ctl_words_bytes(char *buf, size_t len, double b)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	if (b < 1024) {
		snprintf(buf, len, "%.0f B", b);
		return buf;
	}
	while (b >= 1024 && u < 3) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", b, units[u]);
	return buf;
}

const char *
ctl_words_time(char *buf, size_t len, int64_t epoch_ms)
{
	time_t t = (time_t)(epoch_ms / 1000), now = time(NULL);
	struct tm tm, tnow;

	localtime_r(&t, &tm);
	localtime_r(&now, &tnow);
	/* Today's times need no date. */
	if (tm.tm_year == tnow.tm_year && tm.tm_yday == tnow.tm_yday)
		strftime(buf, len, "%H:%M:%S", &tm);
	else
		strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
	return buf;
}

const char *
ctl_words_ago(char *buf, size_t len, int64_t epoch_ms)
{
	char d[48];

	if (epoch_ms <= 0)
		snprintf(buf, len, "never");
	else
		snprintf(buf, len, "%s ago", ctl_words_duration(d, sizeof(d), wall_ms() - epoch_ms));
	return buf;
}

/* The daemon's state names, as a person says them; `fix` is what to do. */
static const struct {
	const char *state, *words, *fix;
} ctl_states[] = {
	{ "authenticated", "online", NULL },
	{ "opened", "connected, starting the session", NULL },
	{ "connecting", "connecting", NULL },
	{ "resolving", "looking up the server", NULL },
	{ "backoff", "offline, retrying", NULL },
	{ "disconnected", "offline", NULL },
	{ "stopped", "stopped", NULL },
	{ "auth-failed", "refused by the server",
	  "sign in again: instantctl login" },
	{ "signed-out", "signed out by the server",
	  "sign in again: instantctl login; queued writes wait until then" },
	{ "app-not-found", "the server does not know this app",
	  "check app-id in the configuration" },
	{ "unopened", "not in use",
	  NULL },
};

static const char *
state_words(const char *state, const char **fix)
{
	*fix = NULL;
	for (size_t i = 0; i < sizeof(ctl_states) / sizeof(ctl_states[0]); i++)
		if (strcmp(ctl_states[i].state, state) == 0) {
			*fix = ctl_states[i].fix;
			return ctl_states[i].words;
		}
	return state;
}

/* "online for 3 min (since 14:02:11)" */
static void
print_state_line(const cJSON *st)
{
	const char *state = ctl_str(st, "state"), *fix;
	const char *words = state_words(state ? state : "unknown", &fix);
	int64_t since = (int64_t)ctl_num(st, "state-since");
	char d[48], t[48];

	if (state != NULL && strcmp(state, "unopened") == 0) {
		printf("  state:      not in use (no program has used it since the daemon started)\n");
		return;
	}
	if (since > 0)
		printf("  state:      %s for %s (since %s)\n", words,
		    ctl_words_duration(d, sizeof(d), wall_ms() - since),
		    ctl_words_time(t, sizeof(t), since));
	else
		printf("  state:      %s\n", words);
	if (fix != NULL)
		printf("  fix:        %s\n", fix);
}

static void
print_profile_block(const cJSON *st)
{
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(st, "user");
	const cJSON *queue = cJSON_GetObjectItemCaseSensitive(st, "queue");
	const cJSON *replay = cJSON_GetObjectItemCaseSensitive(st, "replay");
	const char *name = ctl_str(st, "profile"), *err = ctl_str(st, "last-error");
	char a[48], b[48], c[48];

	printf("%s\n", name != NULL ? name : "(unnamed profile)");
	print_state_line(st);
	printf("  server:     %s\n", ctl_str(st, "server") ? ctl_str(st, "server") : "?");
	printf("  app:        %s\n", ctl_str(st, "app-id") ? ctl_str(st, "app-id") : "?");
	if (ctl_str(st, "state") != NULL && strcmp(ctl_str(st, "state"), "unopened") == 0)
		return;
	if (cJSON_IsObject(user)) {
		const char *email = ctl_str(user, "email");

		printf("  user:       %s\n", email != NULL ? email : "a guest");
	} else
		printf("  user:       not signed in\n");
	if (cJSON_IsObject(queue)) {
		/* The daemon's "pending" counts the sent ones too. */
		double pending = ctl_num(queue, "pending"), sent = ctl_num(queue, "sent");

		printf("  queue:      %s pending, %s sent, %s failed\n",
		    ctl_words_count(a, sizeof(a), pending - sent), ctl_words_count(b, sizeof(b), sent),
		    ctl_words_count(c, sizeof(c), ctl_num(queue, "failed")));
	}
	if (cJSON_IsObject(replay))
		printf("  replay:     replaying %s of %s\n",
		    ctl_words_count(a, sizeof(a), ctl_num(replay, "done")),
		    ctl_words_count(b, sizeof(b), ctl_num(replay, "total")));
	printf("  last sync:  %s\n", ctl_words_ago(a, sizeof(a), (int64_t)ctl_num(st, "last-sync")));
	printf("  cache:      %s, %s subscribed\n",
	    ctl_words_bytes(a, sizeof(a), ctl_num(st, "cache-bytes")),
	    ctl_words_count(b, sizeof(b), ctl_num(st, "subscriptions")));
	if (err != NULL)
		printf("  last error: %s\n", err);
	if (ctl_str(st, "recovered-from") != NULL)
		printf("  recovered:  the database was damaged and moved to %s\n",
		    ctl_str(st, "recovered-from"));
}

static void
print_status(const cJSON *reply)
{
	const cJSON *one = cJSON_GetObjectItemCaseSensitive(reply, "status");
	const cJSON *all = cJSON_GetObjectItemCaseSensitive(reply, "profiles");
	const cJSON *e;
	bool first = true;

	if (cJSON_IsObject(one)) {
		print_profile_block(one);
	} else if (cJSON_GetArraySize(all) == 0) {
		printf("No profiles: none is configured and no program has used the daemon yet.\n");
	} else {
		cJSON_ArrayForEach(e, all) {
			if (!first)
				printf("\n");
			first = false;
			print_profile_block(e);
		}
	}
	fflush(stdout);
}

/* One line per pushed change: "[14:05:01] notes: online; 2 pending, 0 failed". */
static void
print_status_change(const cJSON *st)
{
	const cJSON *queue = cJSON_GetObjectItemCaseSensitive(st, "queue");
	const cJSON *replay = cJSON_GetObjectItemCaseSensitive(st, "replay");
	const char *state = ctl_str(st, "state"), *fix;
	char t[48], a[48], b[48];

	printf("[%s] %s: %s; %s pending, %s failed", ctl_words_time(t, sizeof(t), wall_ms()),
	    ctl_str(st, "profile") ? ctl_str(st, "profile") : "?", state_words(state ? state : "?", &fix),
	    ctl_words_count(a, sizeof(a), ctl_num(queue, "pending")),
	    ctl_words_count(b, sizeof(b), ctl_num(queue, "failed")));
	if (cJSON_IsObject(replay))
		printf("; replaying %s of %s", ctl_words_count(a, sizeof(a), ctl_num(replay, "done")),
		    ctl_words_count(b, sizeof(b), ctl_num(replay, "total")));
	printf("\n");
	fflush(stdout);
}

struct watch_state {
	long count, seen;	/* stop after count changes; 0 = never */
	bool done;
	int exit_code;
};

static void
watch_message(struct instantd_client *c, const cJSON *msg, void *ud)
{
	struct watch_state *w = ud;
	const char *op = instantd_msg_op(msg);

	if (op == NULL || instantd_msg_id(msg) != NULL)
		return;		/* the first answer is read by request_sync */
	if (instantd_is_error(msg)) {
		w->exit_code = ctl_report_error(msg);
		w->done = true;
		return;
	}
	if (strcmp(op, "status") != 0)
		return;
	if (opt.json)
		ctl_print_json_line(msg);
	else
		print_status_change(cJSON_GetObjectItemCaseSensitive(msg, "status"));
	if (w->count > 0 && ++w->seen >= w->count)
		w->done = true;
}

static void
watch_disconnect(struct instantd_client *c, int reason, void *ud)
{
	struct watch_state *w = ud;

	if (!w->done) {
		fprintf(stderr, "instantctl: the daemon closed the connection\n");
		w->exit_code = EXIT_UNREACHABLE;
		w->done = true;
	}
}

static const char ctl_usage_status[] =
"Usage: instantctl [OPTIONS] status [--watch [--count N]]\n"
"\n"
"Show each profile: its state in words and since when, server, app,\n"
"signed-in user, queued writes (pending, sent, failed), replay progress,\n"
"last sync and cache size. Without --app or --profile it shows every\n"
"profile, configured ones that no program has used yet too.\n"
"\n"
"  -w, --watch     Keep running and print a line for every change\n"
"  -n, --count N   With --watch: exit after N changes\n"
"  --json (global) Print the daemon's messages as JSON lines instead\n";

int
ctl_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct watch_state w = { 0 };
	struct instantd_client *c;
	bool watch = false;
	cJSON *req, *reply = NULL;
	int ch, r;

	optind = 0;	/* 0: glibc re-initialises getopt for the command's own argv */
	while ((ch = getopt_long(argc, argv, "wn:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			watch = true;
			break;
		case 'n':
			w.count = strtol(optarg, NULL, 10);
			if (w.count <= 0)
				return ctl_usage_error("--count needs a positive number, not '%s'", optarg);
			break;
		case 'h':
			fputs(ctl_usage_status, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ctl_usage_error("status takes no arguments (got '%s')", argv[optind]);
	r = ctl_connect_opt(&c, true);
	if (r != EXIT_OK)
		return r;
	req = ctl_req(watch ? "watch-status" : "status");
	if (watch) {
		struct instantd_callbacks cb = {
			.on_message = watch_message,
			.on_disconnect = watch_disconnect,
		};

		instantd_set_callbacks(c, &cb, &w);
	}
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
	else
		print_status(reply);
	r = EXIT_OK;
	while (watch && !w.done && !ctl_interrupted) {
		/* Pushes that came with the first answer are buffered already. */
		int wr = instantd_has_pending(c) ? instantd_dispatch(c) : instantd_wait(c, 1000);

		if (wr < 0 && !w.done) {
			r = ctl_exit_for(wr);
			goto out;
		}
	}
	if (watch && w.exit_code)
		r = w.exit_code;
out:
	cJSON_Delete(reply);
	instantd_free(c);
	return r;
}
