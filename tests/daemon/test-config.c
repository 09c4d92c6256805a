/* Unit tests of daemon/config.c: defaults, every key, size and duration
 * syntax, line-numbered errors, overrides and token-file checks. */
#include "daemon/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "store/util.h"
#include "tests/tap.h"

static char tmp[256];

/* An app id that passes the UUID check. */
#define U "0d7d6bda-5c5c-4f3c-9a0f-2b8d6f0a9a11"

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(99);
	}
	fputs(text, f);
	fclose(f);
	if (chmod(path, mode) < 0) {
		perror(path);
		exit(99);
	}
}

static char *
path_in_tmp(const char *name)
{
	static char buf[4][512];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 512, "%s/%s", tmp, name);
	return p;
}

/* Load a file with the given text; return the error (or NULL) and free the config. */
static int
load_text(const char *text, char **ret_err)
{
	struct instantd_config *c = NULL;
	const char *p = path_in_tmp("t.conf");
	int r;

	write_file(p, text, 0644);
	r = config_load(p, &c, ret_err);
	config_free(c);
	return r;
}

/* The message must end with ":LINE: what" after the file name. */
static void
check_error(const char *text, unsigned line, const char *what)
{
	char *err = NULL, want[512];
	int r = load_text(text, &err);

	CHECK(r < 0);
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%u: %s", path_in_tmp("t.conf"), line, what);
	else
		snprintf(want, sizeof(want), "%s: %s", path_in_tmp("t.conf"), what);
	if (err == NULL || strncmp(err, want, strlen(want)) != 0) {
		tap_failed++;
		fprintf(stderr, "FAIL: error for %s\n  got  '%s'\n  want '%s...'\n", text,
		    err ? err : "(null)", want);
	}
	tap_count++;
	free(err);
}

static void
test_defaults(void)
{
	struct instantd_config *c = NULL;
	char *err = NULL, want[600];

	setenv("XDG_CONFIG_HOME", path_in_tmp("noconfig"), 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
	setenv("XDG_STATE_HOME", "/home/u/.st", 1);
	CHECK_INT(config_load(NULL, &c, &err), 0);
	CHECK(err == NULL);
	if (c == NULL)
		return;
	CHECK(c->path == NULL);
	CHECK_STR(c->socket_path, "/run/user/4242/instantd/socket");
	CHECK_STR(c->state_dir, "/home/u/.st/instantd");
	CHECK_STR(c->server, "wss://api.instantdb.com/runtime/session");
	CHECK_STR(c->api_uri, "https://api.instantdb.com");
	CHECK(c->ca_file == NULL);
	CHECK_INT(c->log_level, LOG_NOTICE);
	CHECK_INT(c->max_message_bytes, 16 << 20);
	CHECK_INT(c->max_json_depth, 64);
	CHECK_INT(c->max_output_bytes, 64 << 20);
	CHECK_INT(c->max_connections, 4096);
	CHECK_INT(c->max_subscriptions_per_connection, 1000);
	CHECK_INT(c->cache_budget_bytes, 256 << 20);
	CHECK_INT(c->backoff_base_ms, 500);
	CHECK_INT(c->backoff_cap_ms, 30000);
	CHECK_INT(c->ping_interval_s, 20);
	CHECK_INT(c->idle_timeout_s, 35);
	CHECK_INT(c->transact_timeout_s, 30);
	CHECK_INT(c->connect_timeout_s, 20);
	CHECK_INT(c->unsubscribe_grace_ms, 2000);
	CHECK_INT(c->n_profiles, 0);
	config_free(c);

	/* Relative XDG values are ignored (XDG spec); HOME is the fallback. */
	setenv("XDG_STATE_HOME", "relative", 1);
	setenv("HOME", "/home/someone", 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_RUNTIME_DIR");
	CHECK_INT(config_load(NULL, &c, &err), 0);
	if (c != NULL) {
		CHECK_STR(c->state_dir, "/home/someone/.local/state/instantd");
		snprintf(want, sizeof(want), "/run/user/%u/instantd/socket", (unsigned)getuid());
		CHECK_STR(c->socket_path, want);
	}
	c = config_free(c);
	CHECK(c == NULL);

	char *def = NULL;
	CHECK_INT(config_default_path(&def), 0);
	CHECK_STR(def, "/home/someone/.config/instantd/instantd.conf");
	free(def);
	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	CHECK_INT(config_default_path(&def), 0);
	CHECK_STR(def, "/cfg/instantd/instantd.conf");
	free(def);

	/* The default file is read when present. */
	mkdir(path_in_tmp("cfg"), 0700);
	mkdir(path_in_tmp("cfg/instantd"), 0700);
	write_file(path_in_tmp("cfg/instantd/instantd.conf"), "log-level = debug\n", 0644);
	setenv("XDG_CONFIG_HOME", path_in_tmp("cfg"), 1);
	CHECK_INT(config_load(NULL, &c, &err), 0);
	if (c != NULL) {
		CHECK_INT(c->log_level, LOG_DEBUG);
		CHECK_STR(c->path, path_in_tmp("cfg/instantd/instantd.conf"));
	}
	config_free(c);
	setenv("XDG_CONFIG_HOME", path_in_tmp("noconfig"), 1);

	/* An explicit file that does not exist is an error naming it. */
	c = NULL;
	CHECK_INT(config_load(path_in_tmp("missing.conf"), &c, &err), -ENOENT);
	CHECK(c == NULL);
	CHECK(err != NULL && strstr(err, "missing.conf: cannot open") != NULL);
	free(err);
}

static void
test_every_key(void)
{
	struct instantd_config *c = NULL;
	const struct profile_config *p;
	char *err = NULL, text[4096];

	write_file(path_in_tmp("tok"), "  abc-refresh-token-123\n\n", 0600);
	write_file(path_in_tmp("ca.pem"), "pem\n", 0644);
	write_file(path_in_tmp("work.pem"), "pem\n", 0644);
	snprintf(text, sizeof(text),
	    "# instantd.conf test\n"
	    "; another comment\n"
	    "\n"
	    "socket = /tmp/x/sock\n"
	    "state-dir=/var/tmp/state\n"
	    "server = ws://127.0.0.1:8888/runtime/session\n"
	    "api-uri = http://127.0.0.1:8888\n"
	    "ca-file = ca.pem\n"
	    "log-level = info\n"
	    "max-message-bytes = 1M\n"
	    "max-json-depth = 32\n"
	    "max-output-bytes = 2MiB\n"
	    "max-connections = 10\n"
	    "max-subscriptions-per-connection = 7\n"
	    "cache-budget-bytes = 1G\n"
	    "backoff-base-ms = 100\n"
	    "backoff-cap-ms = 2s\n"
	    "ping-interval = 5\n"
	    "idle-timeout = 1min\n"
	    "transact-timeout = 9s\n"
	    "unsubscribe-grace-ms = 0\n"
	    "\n"
	    "[profile work]\n"
	    "app-id = 11111111-2222-3333-4444-555555555555\n"
	    "server = wss://instant.example.org/runtime/session\n"
	    "api-uri = https://instant.example.org\n"
	    "token-file = %s\n"
	    "ca-file = %s\n"
	    "[ profile  guest ]\n"
	    "  app-id=22222222-3333-4444-5555-666666666666  \n",
	    path_in_tmp("tok"), path_in_tmp("work.pem"));
	write_file(path_in_tmp("all.conf"), text, 0644);
	CHECK_INT(config_load(path_in_tmp("all.conf"), &c, &err), 0);
	if (err != NULL)
		fprintf(stderr, "error: %s\n", err);
	if (c == NULL)
		return;
	CHECK_STR(c->socket_path, "/tmp/x/sock");
	CHECK_STR(c->state_dir, "/var/tmp/state");
	CHECK_STR(c->server, "ws://127.0.0.1:8888/runtime/session");
	CHECK_STR(c->api_uri, "http://127.0.0.1:8888");
	CHECK_STR(c->ca_file, path_in_tmp("ca.pem"));	/* relative to the file */
	CHECK_INT(c->log_level, LOG_INFO);
	CHECK_INT(c->max_message_bytes, 1 << 20);
	CHECK_INT(c->max_json_depth, 32);
	CHECK_INT(c->max_output_bytes, 2 << 20);
	CHECK_INT(c->max_connections, 10);
	CHECK_INT(c->max_subscriptions_per_connection, 7);
	CHECK_INT(c->cache_budget_bytes, 1 << 30);
	CHECK_INT(c->backoff_base_ms, 100);
	CHECK_INT(c->backoff_cap_ms, 2000);
	CHECK_INT(c->ping_interval_s, 5);
	CHECK_INT(c->idle_timeout_s, 60);
	CHECK_INT(c->transact_timeout_s, 9);
	CHECK_INT(config_set(c, "connect-timeout", "3s", &err), 0);
	CHECK_INT(c->connect_timeout_s, 3);
	/* The Instant endpoint's TCP listener: off by default, loopback only. */
	CHECK(c->instant_listen == NULL && c->instant_allowed_origins == NULL);
	CHECK_INT(config_set(c, "instant-listen", "127.0.0.1:8765", &err), 0);
	CHECK_STR(c->instant_listen, "127.0.0.1:8765");
	CHECK_INT(config_set(c, "instant-listen", "[::1]:0", &err), 0);
	CHECK_STR(c->instant_listen, "[::1]:0");
	CHECK(config_set(c, "instant-listen", "0.0.0.0:8765", &err) < 0);
	CHECK(err != NULL && strstr(err, "not a loopback address") != NULL);
	free(err);
	err = NULL;
	CHECK(config_set(c, "instant-listen", "10.0.0.1:8765", &err) < 0);
	free(err);
	err = NULL;
	CHECK(config_set(c, "instant-listen", "localhost:8765", &err) < 0);
	free(err);
	err = NULL;
	CHECK(config_set(c, "instant-listen", "127.0.0.1:65536", &err) < 0);
	free(err);
	err = NULL;
	CHECK(config_set(c, "instant-listen", "127.0.0.1", &err) < 0);
	free(err);
	err = NULL;
	CHECK_STR(c->instant_listen, "[::1]:0");	/* a refused value changes nothing */
	CHECK_INT(config_set(c, "instant-allowed-origins", "http://localhost:5173 app://x", &err), 0);
	CHECK_STR(c->instant_allowed_origins, "http://localhost:5173 app://x");
	CHECK_INT(c->unsubscribe_grace_ms, 0);
	CHECK_INT(c->n_profiles, 2);
	p = config_find_profile(c, "work");
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_STR(p->app_id, "11111111-2222-3333-4444-555555555555");
		CHECK_STR(p->server, "wss://instant.example.org/runtime/session");
		CHECK_STR(p->api_uri, "https://instant.example.org");
		CHECK_STR(p->token_file, path_in_tmp("tok"));
		CHECK_STR(p->ca_file, path_in_tmp("work.pem"));
		CHECK_INT(p->line, 23);
	}
	p = config_find_profile(c, "guest");
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_STR(p->app_id, "22222222-3333-4444-5555-666666666666");
		CHECK(p->server == NULL && p->api_uri == NULL && p->token_file == NULL &&
		    p->ca_file == NULL);
	}
	CHECK(config_find_profile(c, "nope") == NULL);
	CHECK_STR(c->profiles[0].name, "work");
	CHECK_STR(c->profiles[1].name, "guest");

	/* Overrides as main applies them. */
	CHECK_INT(config_set(c, "socket", "/run/other/sock", &err), 0);
	CHECK_STR(c->socket_path, "/run/other/sock");
	CHECK_INT(config_set(c, "state-dir", "/srv/st", &err), 0);
	CHECK_STR(c->state_dir, "/srv/st");
	CHECK(config_set(c, "socket", "relative/sock", &err) < 0);
	CHECK(err != NULL && strstr(err, "must be absolute") != NULL);
	free(err);
	CHECK(config_set(c, "app-id", "x", &err) < 0);
	CHECK_STR(err, "unknown key 'app-id'");
	free(err);
	CHECK(config_set(c, "max-connections", "0", &err) < 0);
	free(err);
	CHECK_INT(c->max_connections, 10);
	c->log_level = LOG_NOTICE;
	config_raise_log_level(c);
	CHECK_INT(c->log_level, LOG_INFO);
	config_raise_log_level(c);
	config_raise_log_level(c);
	CHECK_INT(c->log_level, LOG_DEBUG);
	config_free(c);

	/* A repeated key takes the later value; --server goes through config_set. */
	write_file(path_in_tmp("twice.conf"), "log-level = info\nlog-level = debug\n", 0644);
	CHECK_INT(config_load(path_in_tmp("twice.conf"), &c, &err), 0);
	if (c != NULL) {
		CHECK_INT(c->log_level, LOG_DEBUG);
		CHECK_INT(config_set(c, "server", "ws://127.0.0.1:9/runtime/session", &err), 0);
		CHECK_STR(c->server, "ws://127.0.0.1:9/runtime/session");
		CHECK_INT(config_set(c, "server", "http://x", &err), -EINVAL);
		CHECK_STR(c->server, "ws://127.0.0.1:9/runtime/session");
		free(err);
	}
	config_free(c);

	/* A '#' after a blank starts a comment; one inside a word does not. */
	write_file(path_in_tmp("comment.conf"), "server = ws://127.0.0.1:9/x#frag # the mock\n"
	    "log-level = debug\t# more\n[profile p]   # the section\n"
	    "app-id = 8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b # an app\n", 0644);
	CHECK_INT(config_load(path_in_tmp("comment.conf"), &c, &err), 0);
	if (c != NULL) {
		CHECK_STR(c->server, "ws://127.0.0.1:9/x#frag");
		CHECK_INT(c->log_level, LOG_DEBUG);
		CHECK_INT(c->n_profiles, 1);
		if (c->n_profiles == 1)
			CHECK_STR(c->profiles[0].app_id, "8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b");
	}
	config_free(c);

	/* "~/" expands to HOME. */
	setenv("HOME", "/home/tilde", 1);
	write_file(path_in_tmp("tilde.conf"), "state-dir = ~/st\n", 0644);
	CHECK_INT(config_load(path_in_tmp("tilde.conf"), &c, &err), 0);
	if (c != NULL)
		CHECK_STR(c->state_dir, "/home/tilde/st");
	config_free(c);
}

static void
test_sizes(void)
{
	uint64_t v = 7;

	CHECK_INT(config_parse_size("0", &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(config_parse_size("1234", &v), 0);
	CHECK_INT(v, 1234);
	CHECK_INT(config_parse_size("4K", &v), 0);
	CHECK_INT(v, 4096);
	CHECK_INT(config_parse_size("4k", &v), 0);
	CHECK_INT(v, 4096);
	CHECK_INT(config_parse_size("16M", &v), 0);
	CHECK_INT(v, 16 << 20);
	CHECK_INT(config_parse_size("16MiB", &v), 0);
	CHECK_INT(v, 16 << 20);
	CHECK_INT(config_parse_size("2G", &v), 0);
	CHECK_INT(v, 2LL << 30);
	CHECK_INT(config_parse_size("100B", &v), 0);
	CHECK_INT(v, 100);
	v = 7;
	CHECK_INT(config_parse_size("", &v), -EINVAL);
	CHECK_INT(config_parse_size("-1", &v), -EINVAL);
	CHECK_INT(config_parse_size("1T", &v), -EINVAL);
	CHECK_INT(config_parse_size("1 M", &v), -EINVAL);
	CHECK_INT(config_parse_size("M", &v), -EINVAL);
	CHECK_INT(config_parse_size("99999999999999999999", &v), -ERANGE);
	CHECK_INT(config_parse_size("17179869184G", &v), -ERANGE);
	CHECK_INT(v, 7);	/* untouched on failure */
}

static void
test_errors(void)
{
	check_error("log-level = info\nfoo = 1\n", 2, "unknown key 'foo'");
	check_error("server = ws://h/x#not-a-comment   more\n", 1, "server: 'ws://h/x#not-a-comment   more' is not a URL");
	check_error("\n\n\nmax-message-bytes = 12X\n", 4, "max-message-bytes: invalid size '12X'");
	check_error("max-json-depth = 0\n", 1, "max-json-depth: invalid number '0'");
	check_error("max-connections = ten\n", 1, "max-connections: invalid number 'ten'");
	check_error("ping-interval = 1500ms\n", 1, "ping-interval: invalid duration '1500ms'");
	check_error("backoff-base-ms = 3h\n", 1, "backoff-base-ms: invalid duration '3h'");
	check_error("log-level = loud\n", 1, "log-level: unknown level 'loud'");
	check_error("server = https://x/runtime/session\n", 1,
	    "server: 'https://x/runtime/session' is not a wss:// or ws:// URL");
	check_error("api-uri = ftp://x\n", 1, "api-uri: 'ftp://x' is not a https:// or http:// URL");
	check_error("just words\n", 1, "expected 'key = value', got 'just words'");
	check_error("socket =\n", 1, "missing value for 'socket'");
	check_error("= 3\n", 1, "missing key before '='");
	check_error("[global]\n", 1, "unknown section '[global]'");
	check_error("[profile a\n", 1, "malformed section header '[profile a'");
	check_error("[profile a/b]\napp-id = " U "\n", 1, "invalid profile name 'a/b'");
	check_error("[profile a]\napp-id = " U "\n[profile a]\napp-id = " U "\n", 3, "duplicate profile 'a'");
	check_error("app-id = " U "\n", 1, "key 'app-id' belongs in a [profile NAME] section");
	check_error("[profile a]\napp-id = " U "\nlog-level = debug\n", 3,
	    "key 'log-level' is global: put it before the first [profile] section");
	check_error("[profile a]\napp-id = " U "\nbogus = 1\n", 3, "unknown key 'bogus'");
	check_error("# c\n[profile a]\nserver = ws://h/runtime/session\n", 2, "profile 'a' has no app-id");
	/* app-id is exactly the dashed UUID form (not the 32-digit form libsystemd
	 * also accepts, not braces, not a prefix). */
	check_error("[profile a]\napp-id = abc\n", 2, "app-id: 'abc' is not a UUID");
	check_error("[profile a]\napp-id = 0d7d6bda5c5c4f3c9a0f2b8d6f0a9a11\n", 2,
	    "app-id: '0d7d6bda5c5c4f3c9a0f2b8d6f0a9a11' is not a UUID");
	check_error("[profile a]\napp-id = {" U "}\n", 2, "app-id: '{" U "}' is not a UUID");
	check_error("[profile a]\napp-id = " U "0\n", 2, "app-id: '" U "0' is not a UUID");
	check_error("[profile a]\napp-id = 0d7d6bda-5c5c-4f3c-9a0f-2b8d6f0a9a1g\n", 2, "app-id: '");
	/* A CA file that is not there fails the load, naming its line. */
	check_error("log-level = info\nca-file = /nonexistent/ca.pem\n", 2,
	    "ca-file: cannot read '/nonexistent/ca.pem': No such file or directory");
	check_error("[profile a]\napp-id = " U "\nca-file = missing-ca.pem\n", 3,
	    "ca-file: cannot read '");
	check_error("ca-file = /\n", 1, "ca-file: '/' is not a regular file");
	check_error("backoff-base-ms = 5000\nbackoff-cap-ms = 1000\n", 0,
	    "backoff-cap-ms (1000) is less than backoff-base-ms (5000)");
	check_error("ping-interval = 40\n", 0, "idle-timeout (35 s) must be longer than ping-interval (40 s)");

	char *long_line = malloc(6000);
	memset(long_line, 'a', 5998);
	long_line[5998] = '\n';
	long_line[5999] = '\0';
	check_error(long_line, 1, "line is longer than");
	free(long_line);

	/* A NULL ret_err is allowed. */
	CHECK(load_text("foo = 1\n", NULL) < 0);
}

static void
test_tokens(void)
{
	char *tok = NULL, *err = NULL, text[1024], tf[512];

	snprintf(tf, sizeof(tf), "%s", path_in_tmp("token"));

	write_file(tf, "secret-refresh-token\n", 0600);
	CHECK_INT(config_read_token(tf, &tok, &err), 0);
	CHECK_STR(tok, "secret-refresh-token");
	CHECK(err == NULL);
	free(tok);
	tok = NULL;

	write_file(tf, "secret-refresh-token\n", 0400);
	CHECK_INT(config_read_token(tf, &tok, &err), 0);
	free(tok);
	tok = NULL;

	/* Group- or world-accessible files are refused with a clear message. */
	static const mode_t bad[] = { 0640, 0604, 0660, 0644, 0602, 0610 };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		write_file(tf, "secret-refresh-token\n", bad[i]);
		CHECK_INT(config_read_token(tf, &tok, &err), -EPERM);
		CHECK(tok == NULL);
		CHECK(err != NULL && strstr(err, "must not be accessible by group or others") != NULL);
		CHECK(err != NULL && strstr(err, "chmod 600") != NULL);
		CHECK(err != NULL && strstr(err, "secret-refresh-token") == NULL);
		free(err);
		err = NULL;
	}

	write_file(tf, " \n\t\n", 0600);
	CHECK_INT(config_read_token(tf, &tok, &err), -EINVAL);
	CHECK(err != NULL && strstr(err, "token file is empty") != NULL);
	free(err);
	write_file(tf, "two words\n", 0600);
	CHECK_INT(config_read_token(tf, &tok, &err), -EINVAL);
	CHECK(err != NULL && strstr(err, "two") == NULL);
	free(err);
	CHECK_INT(config_read_token(path_in_tmp("no-token"), &tok, &err), -ENOENT);
	CHECK(err != NULL && strstr(err, "no-token: cannot open token file") != NULL);
	free(err);
	CHECK_INT(config_read_token(tmp, &tok, &err), -EINVAL);	/* a directory */
	free(err);

	/* The same refusal at load time, naming the profile's section line. */
	write_file(tf, "secret-refresh-token\n", 0644);
	snprintf(text, sizeof(text), "\n[profile p]\napp-id = " U "\ntoken-file = %s\n", tf);
	check_error(text, 2, "profile 'p': ");
	err = NULL;
	CHECK(load_text(text, &err) == -EPERM);
	CHECK(err != NULL && strstr(err, "chmod 600") != NULL);
	free(err);
	write_file(tf, "secret-refresh-token\n", 0600);
	CHECK_INT(load_text(text, NULL), 0);
}

/* contrib/instantd.conf.example parses as shipped (all commented out), and
 * again with every commented-out setting ("#key" without a space) enabled. */
static void
test_example(void)
{
	struct instantd_config *c = NULL;
	const char *top = getenv("top_srcdir");
	char path[1024], line[1024], *err = NULL;
	FILE *in, *out;

	snprintf(path, sizeof(path), "%s/contrib/instantd.conf.example", top ? top : "..");
	in = fopen(path, "r");
	CHECK(in != NULL);
	if (in == NULL)
		return;
	CHECK_INT(config_load(path, &c, &err), 0);
	if (err != NULL)
		fprintf(stderr, "%s\n", err);
	if (c != NULL)
		CHECK_INT(c->max_message_bytes, 16 << 20);
	c = config_free(c);

	out = fopen(path_in_tmp("example.conf"), "w");
	while (fgets(line, sizeof(line), in) != NULL)
		fputs(line[0] == '#' && line[1] != ' ' && line[1] != '\n' ? line + 1 : line, out);
	fclose(in);
	fclose(out);
	setenv("HOME", tmp, 1);
	mkdir(path_in_tmp(".config"), 0700);
	mkdir(path_in_tmp(".config/instantd"), 0700);
	write_file(path_in_tmp(".config/instantd/notes.token"), "t0ken\n", 0600);
	write_file(path_in_tmp(".config/instantd/private-ca.pem"), "pem\n", 0644);
	CHECK_INT(config_load(path_in_tmp("example.conf"), &c, &err), 0);
	if (err != NULL)
		fprintf(stderr, "%s\n", err);
	free(err);
	if (c == NULL)
		return;
	CHECK_STR(c->socket_path, "/run/user/1000/instantd/socket");
	CHECK_INT(c->idle_timeout_s, 35);
	CHECK_INT(c->cache_budget_bytes, 256 << 20);
	CHECK_INT(c->n_profiles, 1);
	CHECK_STR(c->profiles[0].app_id, "8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b");
	CHECK_STR(c->profiles[0].token_file, path_in_tmp(".config/instantd/notes.token"));
	config_free(c);
}

int
main(void)
{
	char cmd[300];

	snprintf(tmp, sizeof(tmp), "%s/test-config.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_defaults();
	test_every_key();
	test_sizes();
	test_errors();
	test_tokens();
	test_example();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", tmp);
	return tap_done();
}
