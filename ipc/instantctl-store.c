/* instantctl profiles, forget, cache export|clear and mutations: what is
 * stored, as a person reads it, and the commands that manage it. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipc/instantctl.h"

/* These ops name their profile: connect without init, whatever --app or
 * $INSTANT_APP_ID say. */
static int
connect_plain(struct instantd_client **ret)
{
	const char *app = opt.app_id, *profile = opt.profile;
	int r;

	opt.app_id = NULL;
	opt.profile = NULL;
	r = ctl_connect_opt(ret, true);
	opt.app_id = app;
	opt.profile = profile;
	return r;
}

/* One request without init; *ret_reply is the answer (not an error). */
static int
ask(cJSON *req, cJSON **ret_reply)
{
	struct instantd_client *c;
	cJSON *reply = NULL;
	int r;

	r = connect_plain(&c);
	if (r != EXIT_OK) {
		cJSON_Delete(req);
		return r;
	}
	r = instantd_request_sync(c, req, opt.timeout_ms, &reply);
	cJSON_Delete(req);
	instantd_free(c);
	if (r < 0)
		return ctl_exit_for(r);
	*ret_reply = reply;
	return EXIT_OK;
}

/* ---- profiles ---- */

static const char ctl_usage_profiles[] =
"Usage: instantctl [OPTIONS] profiles\n"
"\n"
"List every profile the daemon knows (configured, in use, or with data in its\n"
"state directory): database size, cached queries, queued writes and when a\n"
"result last arrived.\n";

int
ctl_profiles(int argc, char **argv)
{
	const cJSON *list, *e;
	cJSON *reply = NULL;
	int r;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_profiles, stdout);
		return EXIT_OK;
	}
	if (argc > 1)
		return ctl_usage_error("profiles takes no arguments (got '%s')", argv[1]);
	r = ask(ctl_req("list-profiles"), &reply);
	if (r != EXIT_OK)
		return r;
	if (instantd_is_error(reply)) {
		r = ctl_report_error(reply);
		cJSON_Delete(reply);
		return r;
	}
	if (opt.json) {
		ctl_print_json_line(reply);
		cJSON_Delete(reply);
		return EXIT_OK;
	}
	list = cJSON_GetObjectItemCaseSensitive(reply, "profiles");
	if (cJSON_GetArraySize(list) == 0)
		printf("No profiles: none is configured and nothing is stored yet.\n");
	else
		printf("%-16s %-10s %10s %8s  %-26s %s\n", "PROFILE", "IN USE", "DATABASE",
		    "QUERIES", "QUEUE", "LAST SYNC");
	cJSON_ArrayForEach(e, list) {
		const cJSON *q = cJSON_GetObjectItemCaseSensitive(e, "queue");
		bool open = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "open"));
		double sync = ctl_num(e, "last-sync") > 0 ? ctl_num(e, "last-sync") : ctl_num(e, "last-stored");
		char size[32], queue[64], ago[64], n1[24], n2[24];

		if (ctl_num(e, "database-bytes") > 0)
			ctl_words_bytes(size, sizeof(size), ctl_num(e, "database-bytes"));
		else
			snprintf(size, sizeof(size), "no data");
		if (cJSON_IsObject(q))
			snprintf(queue, sizeof(queue), "%s pending, %s failed",
			    ctl_words_count(n1, sizeof(n1), ctl_num(q, "pending")),
			    ctl_words_count(n2, sizeof(n2), ctl_num(q, "failed")));
		else
			snprintf(queue, sizeof(queue), "-");
		printf("%-16s %-10s %10s %8.0f  %-26s %s\n", ctl_str(e, "profile") ? ctl_str(e, "profile") : "?",
		    open ? "yes" : "no", size, ctl_num(e, "queries"), queue,
		    ctl_words_ago(ago, sizeof(ago), (int64_t)sync));
		if (ctl_str(e, "error"))
			printf("  cannot read its database: %s\n", ctl_str(e, "error"));
	}
	fflush(stdout);
	cJSON_Delete(reply);
	return EXIT_OK;
}

/* ---- forget ---- */

static const char ctl_usage_forget[] =
"Usage: instantctl [OPTIONS] forget [--discard-queued] PROFILE\n"
"\n"
"Remove everything the daemon stores for PROFILE: its database (cached\n"
"results, attrs, queued writes) and its refresh token. The daemon first\n"
"closes the profile's server session and disconnects the programs using it.\n"
"It refuses while the profile has writes the server has not taken, unless\n"
"--discard-queued is given. A configured profile stays in the configuration.\n";

int
ctl_forget(int argc, char **argv)
{
	const char *name = NULL;
	bool discard = false;
	cJSON *req, *reply = NULL;
	int r;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_forget, stdout);
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--discard-queued") == 0)
			discard = true;
		else if (argv[i][0] == '-' || name != NULL)
			return ctl_usage_error("forget: unexpected '%s' (see 'instantctl forget --help')",
			    argv[i]);
		else
			name = argv[i];
	}
	if (name == NULL)
		return ctl_usage_error("%s", "forget needs a PROFILE (instantctl profiles lists them)");
	req = ctl_req("forget-profile");
	cJSON_AddStringToObject(req, "profile", name);
	if (discard)
		cJSON_AddBoolToObject(req, "discard-queued", true);
	r = ask(req, &reply);
	if (r != EXIT_OK)
		return r;
	if (instantd_is_error(reply)) {
		double queued = ctl_num(reply, "queued");
		char n[24];

		if (queued > 0 && !opt.json) {
			fprintf(stderr, "instantctl: %s has %s %s the server has not taken; forgetting it "
			    "would lose them.\nSee them with 'instantctl --profile %s mutations'; let the "
			    "daemon send them, or run 'instantctl forget --discard-queued %s' to drop "
			    "them.\n", name, ctl_words_count(n, sizeof(n), queued),
			    queued == 1 ? "write" : "writes", name, name);
			r = EXIT_FAILED;
		} else
			r = ctl_report_error(reply);
		cJSON_Delete(reply);
		return r;
	}
	if (opt.json)
		ctl_print_json_line(reply);
	else {
		double d = ctl_num(reply, "discarded");
		char n[24];

		printf("Forgot %s: its database and token are removed", name);
		if (d > 0)
			printf(", %s queued %s dropped", ctl_words_count(n, sizeof(n), d),
			    d == 1 ? "write" : "writes");
		printf(".\n");
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "configured")))
			printf("It is still in the configuration; remove its [profile %s] section to stop "
			    "using it.\n", name);
	}
	fflush(stdout);
	cJSON_Delete(reply);
	return EXIT_OK;
}

/* ---- cache ---- */

static const char ctl_usage_cache[] =
"Usage: instantctl [OPTIONS] cache export PROFILE\n"
"       instantctl [OPTIONS] cache clear PROFILE\n"
"\n"
"export: write PROFILE's mirrored data to standard output as one JSON object:\n"
"        {\"profile\", \"attrs\": [...], \"queries\": [{\"q\", \"triples\", ...}]}.\n"
"clear:  drop PROFILE's cached query results. Queued writes and the attrs they\n"
"        refer to are kept; results are fetched again when next subscribed.\n";

int
ctl_cache(int argc, char **argv)
{
	bool clear;
	cJSON *req, *reply = NULL;
	int r;

	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_usage_cache, stdout);
		return EXIT_OK;
	}
	if (argc != 3 || (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "clear") != 0))
		return ctl_usage_error("%s", "usage: cache export PROFILE | cache clear PROFILE");
	clear = strcmp(argv[1], "clear") == 0;
	req = ctl_req(clear ? "clear-cache" : "export-cache");
	cJSON_AddStringToObject(req, "profile", argv[2]);
	r = ask(req, &reply);
	if (r != EXIT_OK)
		return r;
	if (instantd_is_error(reply)) {
		r = ctl_report_error(reply);
	} else if (clear && !opt.json) {
		printf("Cleared the cache of %s: %.0f query %s removed; queued writes are kept.\n",
		    argv[2], ctl_num(reply, "removed"), ctl_num(reply, "removed") == 1 ? "result" : "results");
		fflush(stdout);
	} else {
		/* The export is data, not a protocol message. */
		cJSON_DeleteItemFromObjectCaseSensitive(reply, "op");
		cJSON_DeleteItemFromObjectCaseSensitive(reply, "client-event-id");
		if (opt.json)
			ctl_print_json_line(reply);
		else
			ctl_print_pretty(reply);
	}
	cJSON_Delete(reply);
	return r;
}

/* ---- mutations ---- */

static void
ago_words(char *buf, size_t len, double created_ms)
{
	struct timespec ts;
	int64_t now;
	char d[48];

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	snprintf(buf, len, "%s ago", ctl_words_duration(d, sizeof(d), now - (int64_t)created_ms));
}

/* Append to a growing line; silently stops at the end of the buffer. */
static void
add(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	size_t o = strlen(buf);

	if (o < len)
		snprintf(buf + o, len - o, fmt, a ? a : "", b ? b : "");
}

/* InstaML ops: "update goals 8f1a…: title, done; link …". */
static void
describe_ops(char *buf, size_t len, const cJSON *ops)
{
	const cJSON *op;
	int i = 0, n = cJSON_GetArraySize(ops);

	cJSON_ArrayForEach(op, ops) {
		const cJSON *args = cJSON_GetArrayItem(op, 3);
		const char *action = cJSON_IsString(cJSON_GetArrayItem(op, 0)) ?
		    cJSON_GetArrayItem(op, 0)->valuestring : "?";
		const char *etype = cJSON_IsString(cJSON_GetArrayItem(op, 1)) ?
		    cJSON_GetArrayItem(op, 1)->valuestring : "?";
		const cJSON *id = cJSON_GetArrayItem(op, 2);
		const cJSON *k;
		bool first = true;

		if (i == 3) {
			char more[24];

			snprintf(more, sizeof(more), "%d", n - i);
			add(buf, len, "; and %s more%s", more, NULL);
			break;
		}
		if (i++ > 0)
			add(buf, len, "; %s%s", NULL, NULL);
		add(buf, len, "%s %s", action, etype);
		if (cJSON_IsString(id))
			add(buf, len, " %s%s", id->valuestring, NULL);
		if (cJSON_IsObject(args))
			cJSON_ArrayForEach(k, args) {
				add(buf, len, first ? ": %s%s" : ", %s%s", k->string, NULL);
				first = false;
			}
	}
}

/* Raw tx-steps: the entity ids and attrs they touch, attr ids as names. */
static void
describe_steps(char *buf, size_t len, const cJSON *steps, const cJSON *names)
{
	const cJSON *st;
	const char *last_eid = NULL;
	int shown = 0, n = cJSON_GetArraySize(steps), i = 0;

	cJSON_ArrayForEach(st, steps) {
		const char *action = cJSON_IsString(cJSON_GetArrayItem(st, 0)) ?
		    cJSON_GetArrayItem(st, 0)->valuestring : "?";
		const cJSON *eid = cJSON_GetArrayItem(st, 1), *aid = cJSON_GetArrayItem(st, 2);
		const char *attr = NULL;

		i++;
		if (strcmp(action, "add-attr") == 0 || strcmp(action, "update-attr") == 0)
			continue;	/* schema, not data */
		if (shown == 4) {
			char more[24];

			snprintf(more, sizeof(more), "%d", n - i + 1);
			add(buf, len, "; and %s more steps%s", more, NULL);
			break;
		}
		if (cJSON_IsString(aid)) {
			attr = ctl_str(names, aid->valuestring);
			if (attr == NULL)
				attr = aid->valuestring;
		}
		if (cJSON_IsString(eid) && last_eid != NULL && strcmp(last_eid, eid->valuestring) == 0 &&
		    attr != NULL && (strcmp(action, "add-triple") == 0 ||
		    strcmp(action, "deep-merge-triple") == 0)) {
			add(buf, len, ", %s%s", attr, NULL);
			continue;
		}
		if (shown++ > 0)
			add(buf, len, "; %s%s", NULL, NULL);
		add(buf, len, "%s%s", action, NULL);
		if (cJSON_IsString(eid))
			add(buf, len, " %s%s", eid->valuestring, NULL);
		if (attr != NULL)
			add(buf, len, ": %s%s", attr, NULL);
		else if (cJSON_IsString(aid))
			add(buf, len, " %s%s", aid->valuestring, NULL);
		last_eid = cJSON_IsString(eid) ? eid->valuestring : NULL;
	}
}

/* Whether the message already says the type ("Permission denied" for
 * permission-denied): case and '-' against ' ' do not count. */
static bool
says_type(const char *msg, const char *type)
{
	char t[64];

	snprintf(t, sizeof(t), "%s", type);
	for (char *p = t; *p; p++)
		if (*p == '-')
			*p = ' ';
	return strcasestr(msg, t) != NULL;
}

/* The server's error in words: its message, and its type when that adds. */
static void
describe_error(char *buf, size_t len, const cJSON *err)
{
	const char *msg = cJSON_IsString(err) ? err->valuestring : ctl_str(err, "message");
	const char *type = ctl_str(err, "type");

	add(buf, len, "  -- rejected: %s%s", msg ? msg : "the server gave no reason", NULL);
	if (type != NULL && (msg == NULL || !says_type(msg, type)))
		add(buf, len, " (%s)%s", type, NULL);
}

static void
print_mutations(const cJSON *reply)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "mutations");
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(reply, "attr-names");
	const cJSON *m;

	if (cJSON_GetArraySize(list) == 0)
		printf("No queued or failed writes.\n");
	cJSON_ArrayForEach(m, list) {
		const cJSON *ops = cJSON_GetObjectItemCaseSensitive(m, "ops");
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(m, "error");
		char age[64], what[1024] = "";

		ago_words(age, sizeof(age), ctl_num(m, "created"));
		if (cJSON_IsArray(ops))
			describe_ops(what, sizeof(what), ops);
		else
			describe_steps(what, sizeof(what), cJSON_GetObjectItemCaseSensitive(m, "tx-steps"),
			    names);
		if (err != NULL && strcmp(ctl_str(m, "state") ? ctl_str(m, "state") : "", "failed") == 0)
			describe_error(what, sizeof(what), err);
		printf("%s  %-12s %-9s %s\n", ctl_str(m, "mutation-id") ? ctl_str(m, "mutation-id") : "?", age,
		    ctl_str(m, "state") ? ctl_str(m, "state") : "?", what);
	}
	fflush(stdout);
}

int
ctl_mutations_list(void)
{
	cJSON *req = ctl_req("list-mutations");

	if (!opt.json)	/* the raw form stays as the daemon keeps it */
		cJSON_AddBoolToObject(req, "attr-names", true);
	return ctl_simple_opt(req, print_mutations, false);
}
