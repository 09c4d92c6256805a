/* config.c: defaults, the instantd.conf parser (global keys and [profile NAME]
 * sections) and reading refresh tokens from 0600 files. Never logs: every
 * error comes back as a message naming the file and line. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "store/util.h"

#define CONFIG_LINE_MAX		4096
#define CONFIG_TOKEN_MAX	65536

static inline void fclosep(FILE **f) { if (*f != NULL) fclose(*f); }
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Where a value came from, for messages: "FILE:LINE: " or "" for overrides. */
struct config_ctx {
	const char *file;
	unsigned line;
	const char *dir;	/* directory of the file, for relative paths; NULL = none */
	char **ret_err;
};

static int config_errorf(const struct config_ctx *x, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
config_errorf(const struct config_ctx *x, int r, const char *fmt, ...)
{
	char *msg = NULL, *full = NULL;
	va_list ap;

	if (x->ret_err == NULL)
		return r;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		return r;
	if (x->file != NULL && x->line > 0) {
		if (asprintf(&full, "%s:%u: %s", x->file, x->line, msg) < 0)
			full = NULL;
	} else if (x->file != NULL) {
		if (asprintf(&full, "%s: %s", x->file, msg) < 0)
			full = NULL;
	} else
		full = TAKE_PTR(msg);
	free(msg);
	free(*x->ret_err);
	*x->ret_err = full;
	return r;
}

/* An XDG base directory variable, ignored unless absolute (XDG spec). */
static const char *
config_xdg(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] == '/' ? v : NULL;
}

static const char *
config_home(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	return pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

int
config_default_path(char **ret)
{
	const char *x = config_xdg("XDG_CONFIG_HOME"), *home;
	char *p;
	int r;

	if (x != NULL)
		r = asprintf(&p, "%s/instantd/instantd.conf", x);
	else if ((home = config_home()) != NULL)
		r = asprintf(&p, "%s/.config/instantd/instantd.conf", home);
	else
		return -ENOENT;
	if (r < 0)
		return -ENOMEM;
	*ret = p;
	return 0;
}

static int
config_defaults(struct instantd_config *c)
{
	const char *x, *home;
	int r;

	if ((x = config_xdg("XDG_RUNTIME_DIR")) != NULL)
		r = asprintf(&c->socket_path, "%s/instantd/socket", x);
	else
		r = asprintf(&c->socket_path, "/run/user/%u/instantd/socket", (unsigned)getuid());
	if (r < 0)
		return c->socket_path = NULL, -ENOMEM;

	if ((x = config_xdg("XDG_STATE_HOME")) != NULL)
		r = asprintf(&c->state_dir, "%s/instantd", x);
	else if ((home = config_home()) != NULL)
		r = asprintf(&c->state_dir, "%s/.local/state/instantd", home);
	else
		return -ENOENT;
	if (r < 0)
		return c->state_dir = NULL, -ENOMEM;

	c->server = strdup(CONFIG_DEFAULT_SERVER);
	c->api_uri = strdup(CONFIG_DEFAULT_API_URI);
	if (c->server == NULL || c->api_uri == NULL)
		return -ENOMEM;
	c->log_level = LOG_NOTICE;
	c->max_message_bytes = 16u << 20;
	c->max_json_depth = 64;
	c->max_output_bytes = 64u << 20;
	c->max_connections = 4096;
	c->max_subscriptions_per_connection = 1000;
	c->cache_budget_bytes = 256 << 20;
	c->max_database_bytes = 0;
	c->backoff_base_ms = 500;
	c->backoff_cap_ms = 30000;
	c->ping_interval_s = 20;
	c->idle_timeout_s = 35;
	c->transact_timeout_s = 30;
	c->connect_timeout_s = 20;
	c->unsubscribe_grace_ms = 2000;
	return 0;
}

struct instantd_config *
config_free(struct instantd_config *c)
{
	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < c->n_profiles; i++) {
		struct profile_config *p = &c->profiles[i];

		free(p->name);
		free(p->app_id);
		free(p->server);
		free(p->api_uri);
		free(p->token_file);
		free(p->ca_file);
	}
	free(c->profiles);
	free(c->path);
	free(c->socket_path);
	free(c->state_dir);
	free(c->server);
	free(c->api_uri);
	free(c->ca_file);
	free(c->instant_listen);
	free(c->instant_allowed_origins);
	free(c);
	return NULL;
}

int
config_parse_size(const char *s, uint64_t *ret)
{
	unsigned long long v;
	uint64_t mult = 1;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case 'k': case 'K': mult = 1ull << 10; end++; break;
	case 'm': case 'M': mult = 1ull << 20; end++; break;
	case 'g': case 'G': mult = 1ull << 30; end++; break;
	default: break;
	}
	/* "16MiB" and "16MB" are read as the same thing as "16M". */
	if (mult != 1 && strcmp(end, "iB") == 0)
		end += 2;
	else if (strcmp(end, "B") == 0)
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

/* A duration into the field's unit (unit_ms = 1 or 1000). Accepts a plain
 * number in that unit or one with an "ms", "s" or "min" suffix. */
static int
config_parse_duration(const char *s, int unit_ms, int *ret)
{
	unsigned long long v, ms;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || v > INT_MAX)
		return -ERANGE;
	if (*end == '\0')
		ms = v * (unsigned long long)unit_ms;
	else if (strcmp(end, "ms") == 0)
		ms = v;
	else if (strcmp(end, "s") == 0)
		ms = v * 1000;
	else if (strcmp(end, "min") == 0 || strcmp(end, "m") == 0)
		ms = v * 60000;
	else
		return -EINVAL;
	if (ms % (unsigned long long)unit_ms != 0)
		return -EDOM;
	if (ms / (unsigned long long)unit_ms > INT_MAX)
		return -ERANGE;
	*ret = (int)(ms / (unsigned long long)unit_ms);
	return 0;
}

/* A path value: absolute, "~/..." (home), or relative to the configuration
 * file's directory. *ret malloc'd. */
static int
config_parse_path(const struct config_ctx *x, const char *key, const char *v, char **ret)
{
	char *p;
	int r;

	if (v[0] == '/')
		r = (p = strdup(v)) == NULL ? -1 : 0;
	else if (v[0] == '~' && v[1] == '/') {
		const char *home = config_home();

		if (home == NULL)
			return config_errorf(x, -ENOENT, "%s: cannot expand '~': HOME is not set", key);
		r = asprintf(&p, "%s%s", home, v + 1);
	} else if (x->dir != NULL)
		r = asprintf(&p, "%s/%s", x->dir, v);
	else
		return config_errorf(x, -EINVAL, "%s: path '%s' must be absolute", key, v);
	if (r < 0)
		return config_errorf(x, -ENOMEM, "out of memory");
	*ret = p;
	return 0;
}

static int
config_parse_url(const struct config_ctx *x, const char *key, const char *v,
    const char *const *schemes, char **ret)
{
	char *p;

	for (const char *q = v; *q != '\0'; q++)
		if (isspace((unsigned char)*q) || iscntrl((unsigned char)*q))
			return config_errorf(x, -EINVAL, "%s: '%s' is not a URL: it contains a "
			    "blank or a control character", key, v);
	for (size_t i = 0; schemes[i] != NULL; i++) {
		size_t n = strlen(schemes[i]);

		if (strncmp(v, schemes[i], n) == 0 && v[n] != '\0' && v[n] != '/') {
			if ((p = strdup(v)) == NULL)
				return config_errorf(x, -ENOMEM, "out of memory");
			*ret = p;
			return 0;
		}
	}
	return config_errorf(x, -EINVAL, "%s: '%s' is not a %s or %s URL", key, v,
	    schemes[0], schemes[1]);
}

/* A CA file is read when a session connects, which may be long after start-up:
 * a missing or unreadable one is reported now, with the line that names it. */
static int
config_parse_ca_file(const struct config_ctx *x, const char *v, char **ret)
{
	struct stat st;
	char *p = NULL;
	int r = config_parse_path(x, "ca-file", v, &p);

	if (r < 0)
		return r;
	if (stat(p, &st) < 0 || access(p, R_OK) < 0) {
		r = -errno;
		config_errorf(x, r, "ca-file: cannot read '%s': %s (give the PEM file of the CA "
		    "that signed the server's certificate, or remove the line)", p, strerror(-r));
		free(p);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		config_errorf(x, -EINVAL, "ca-file: '%s' is not a regular file (give a PEM file)", p);
		free(p);
		return -EINVAL;
	}
	*ret = p;
	return 0;
}

static const char *const config_ws_schemes[] = { "wss://", "ws://", NULL };
static const char *const config_http_schemes[] = { "https://", "http://", NULL };

/* instant-listen: a numeric loopback address and a port, "127.0.0.1:8765" or
 * "[::1]:8765" (0 picks a free port). Anything else would let other hosts in. */
static int
config_parse_listen(const struct config_ctx *x, const char *v, char **ret)
{
	const char *colon = strrchr(v, ':');
	char host[64], *end;
	unsigned char addr[16];
	unsigned long port;
	size_t hl;
	bool loopback = false;

	if (colon == NULL || colon == v)
		goto bad;
	hl = (size_t)(colon - v);
	if (v[0] == '[') {
		if (hl < 3 || v[hl - 1] != ']' || hl - 2 >= sizeof(host))
			goto bad;
		memcpy(host, v + 1, hl - 2);
		host[hl - 2] = '\0';
		loopback = inet_pton(AF_INET6, host, addr) == 1 &&
		    IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)addr);
	} else {
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, v, hl);
		host[hl] = '\0';
		loopback = inet_pton(AF_INET, host, addr) == 1 && addr[0] == 127;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno != 0 || port > 65535)
		goto bad;
	if (!loopback)
		return config_errorf(x, -EINVAL, "instant-listen: '%s' is not a loopback address "
		    "(the endpoint serves this machine only: use 127.0.0.1:PORT or [::1]:PORT)", host);
	if ((*ret = strdup(v)) == NULL)
		return config_errorf(x, -ENOMEM, "out of memory");
	return 0;
bad:
	return config_errorf(x, -EINVAL, "instant-listen: '%s' is not ADDRESS:PORT (for example "
	    "127.0.0.1:8765)", v);
}

/* Replace *field with a fresh value. */
static void
config_replace(char **field, char *v)
{
	free(*field);
	*field = v;
}

static int
config_set_size(const struct config_ctx *x, const char *key, const char *v,
    uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t n;
	int r = config_parse_size(v, &n);

	if (r < 0 || n < min || n > max)
		return config_errorf(x, -EINVAL, "%s: invalid size '%s' (expected %" PRIu64
		    " to %" PRIu64 " bytes; K, M and G suffixes allowed)", key, v, min, max);
	*ret = n;
	return 0;
}

static int
config_set_int(const struct config_ctx *x, const char *key, const char *v,
    long min, long max, int *ret)
{
	long n;
	char *end;

	errno = 0;
	n = strtol(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 || n < min || n > max)
		return config_errorf(x, -EINVAL, "%s: invalid number '%s' (expected %ld to %ld)",
		    key, v, min, max);
	*ret = (int)n;
	return 0;
}

static int
config_set_duration(const struct config_ctx *x, const char *key, const char *v,
    int unit_ms, int min, int max, int *ret)
{
	int n, r = config_parse_duration(v, unit_ms, &n);

	if (r < 0 || n < min || n > max)
		return config_errorf(x, -EINVAL, "%s: invalid duration '%s' (expected %d to %d%s; "
		    "ms, s and min suffixes allowed)", key, v, min, max, unit_ms == 1 ? " ms" : " s");
	*ret = n;
	return 0;
}

/* One global key. -ENOKEY for a key that is not a global key. */
static int
config_set_global(struct instantd_config *c, const struct config_ctx *x,
    const char *key, const char *v)
{
	uint64_t n = 0;
	char *s = NULL;
	int r;

	if (strcmp(key, "socket") == 0) {
		if ((r = config_parse_path(x, key, v, &s)) < 0)
			return r;
		if (strlen(s) >= 108) {	/* sizeof(sun_path) */
			free(s);
			return config_errorf(x, -ENAMETOOLONG, "socket: path is longer than 107 bytes");
		}
		config_replace(&c->socket_path, s);
	} else if (strcmp(key, "state-dir") == 0) {
		if ((r = config_parse_path(x, key, v, &s)) < 0)
			return r;
		config_replace(&c->state_dir, s);
	} else if (strcmp(key, "ca-file") == 0) {
		if ((r = config_parse_ca_file(x, v, &s)) < 0)
			return r;
		config_replace(&c->ca_file, s);
	} else if (strcmp(key, "server") == 0) {
		if ((r = config_parse_url(x, key, v, config_ws_schemes, &s)) < 0)
			return r;
		config_replace(&c->server, s);
	} else if (strcmp(key, "api-uri") == 0) {
		if ((r = config_parse_url(x, key, v, config_http_schemes, &s)) < 0)
			return r;
		config_replace(&c->api_uri, s);
	} else if (strcmp(key, "instant-listen") == 0) {
		if ((r = config_parse_listen(x, v, &s)) < 0)
			return r;
		config_replace(&c->instant_listen, s);
	} else if (strcmp(key, "instant-allowed-origins") == 0) {
		if ((s = strdup(v)) == NULL)
			return config_errorf(x, -ENOMEM, "out of memory");
		config_replace(&c->instant_allowed_origins, s);
	} else if (strcmp(key, "log-level") == 0) {
		if (log_level_from_string(v, &r) < 0)
			return config_errorf(x, -EINVAL, "log-level: unknown level '%s' (expected "
			    "error, warning, notice, info or debug)", v);
		c->log_level = r;
	} else if (strcmp(key, "max-message-bytes") == 0) {
		if ((r = config_set_size(x, key, v, 1024, 1ull << 30, &n)) < 0)
			return r;
		c->max_message_bytes = (size_t)n;
	} else if (strcmp(key, "max-output-bytes") == 0) {
		if ((r = config_set_size(x, key, v, 4096, 1ull << 34, &n)) < 0)
			return r;
		c->max_output_bytes = (size_t)n;
	} else if (strcmp(key, "max-database-bytes") == 0) {
		if ((r = config_set_size(x, key, v, 0, 1ull << 50, &n)) < 0)
			return r;
		c->max_database_bytes = (int64_t)n;
	} else if (strcmp(key, "cache-budget-bytes") == 0) {
		if ((r = config_set_size(x, key, v, 0, 1ull << 50, &n)) < 0)
			return r;
		c->cache_budget_bytes = (int64_t)n;
	} else if (strcmp(key, "max-json-depth") == 0)
		return config_set_int(x, key, v, 1, 10000, &c->max_json_depth);
	else if (strcmp(key, "max-connections") == 0)
		return config_set_int(x, key, v, 1, 1000000, &c->max_connections);
	else if (strcmp(key, "max-subscriptions-per-connection") == 0) {
		int m;

		if ((r = config_set_int(x, key, v, 1, 1000000, &m)) < 0)
			return r;
		c->max_subscriptions_per_connection = (size_t)m;
	} else if (strcmp(key, "backoff-base-ms") == 0)
		return config_set_duration(x, key, v, 1, 1, 3600000, &c->backoff_base_ms);
	else if (strcmp(key, "backoff-cap-ms") == 0)
		return config_set_duration(x, key, v, 1, 1, 86400000, &c->backoff_cap_ms);
	else if (strcmp(key, "unsubscribe-grace-ms") == 0)
		return config_set_duration(x, key, v, 1, 0, 3600000, &c->unsubscribe_grace_ms);
	else if (strcmp(key, "ping-interval") == 0)
		return config_set_duration(x, key, v, 1000, 1, 3600, &c->ping_interval_s);
	else if (strcmp(key, "idle-timeout") == 0)
		return config_set_duration(x, key, v, 1000, 1, 86400, &c->idle_timeout_s);
	else if (strcmp(key, "transact-timeout") == 0)
		return config_set_duration(x, key, v, 1000, 1, 86400, &c->transact_timeout_s);
	else if (strcmp(key, "connect-timeout") == 0)
		return config_set_duration(x, key, v, 1000, 1, 3600, &c->connect_timeout_s);
	else
		return -ENOKEY;
	return 0;
}

static int
config_set_profile(struct profile_config *p, const struct config_ctx *x,
    const char *key, const char *v)
{
	char *s = NULL;
	int r;

	if (strcmp(key, "app-id") == 0) {
		/* Exactly the dashed 8-4-4-4-12 form the server and init accept. */
		if (!uuid_valid(v))
			return config_errorf(x, -EINVAL, "app-id: '%s' is not a UUID (the app id "
			    "from the Instant dashboard, like 0d7d6bda-5c5c-4f3c-9a0f-2b8d6f0a9a11)", v);
		if ((s = strdup(v)) == NULL)
			return config_errorf(x, -ENOMEM, "out of memory");
		config_replace(&p->app_id, s);
	} else if (strcmp(key, "server") == 0) {
		if ((r = config_parse_url(x, key, v, config_ws_schemes, &s)) < 0)
			return r;
		config_replace(&p->server, s);
	} else if (strcmp(key, "api-uri") == 0) {
		if ((r = config_parse_url(x, key, v, config_http_schemes, &s)) < 0)
			return r;
		config_replace(&p->api_uri, s);
	} else if (strcmp(key, "token-file") == 0) {
		if ((r = config_parse_path(x, key, v, &s)) < 0)
			return r;
		config_replace(&p->token_file, s);
	} else if (strcmp(key, "ca-file") == 0) {
		if ((r = config_parse_ca_file(x, v, &s)) < 0)
			return r;
		config_replace(&p->ca_file, s);
	} else
		return -ENOKEY;
	return 0;
}

static const char *const config_global_keys[] = {
	"socket", "state-dir", "server", "api-uri", "ca-file", "log-level",
	"max-message-bytes", "max-json-depth", "max-output-bytes", "max-connections",
	"max-subscriptions-per-connection", "cache-budget-bytes", "max-database-bytes", "backoff-base-ms",
	"backoff-cap-ms", "ping-interval", "idle-timeout", "transact-timeout",
	"unsubscribe-grace-ms", "connect-timeout", "instant-listen", "instant-allowed-origins", NULL,
};
static const char *const config_profile_keys[] = {
	"app-id", "server", "api-uri", "token-file", "ca-file", NULL,
};

static bool
config_key_in(const char *const *keys, const char *key)
{
	for (; *keys != NULL; keys++)
		if (strcmp(*keys, key) == 0)
			return true;
	return false;
}

static bool
config_valid_profile_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static char *
config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A '#' at the start of a line or after whitespace starts a comment that runs
 * to the end of the line, so "token-file = x   # note" means "x"; a '#' inside
 * a word (a URL fragment) is kept. Returns s, cut at the comment. */
static char *
config_strip_comment(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p == '#' && (p == s || *(p - 1) == ' ' || *(p - 1) == '\t')) {
			*p = '\0';
			break;
		}
	return s;
}

/* Cross-key checks once everything is read. */
static int
config_check(struct instantd_config *c, const struct config_ctx *x0)
{
	struct config_ctx x = *x0;

	x.line = 0;
	if (c->backoff_cap_ms < c->backoff_base_ms)
		return config_errorf(&x, -EINVAL, "backoff-cap-ms (%d) is less than backoff-base-ms (%d)",
		    c->backoff_cap_ms, c->backoff_base_ms);
	if (c->idle_timeout_s <= c->ping_interval_s)
		return config_errorf(&x, -EINVAL, "idle-timeout (%d s) must be longer than "
		    "ping-interval (%d s)", c->idle_timeout_s, c->ping_interval_s);
	for (size_t i = 0; i < c->n_profiles; i++) {
		struct profile_config *p = &c->profiles[i];
		_cleanup_free_ char *token = NULL, *err = NULL;

		x.line = p->line;
		if (p->app_id == NULL)
			return config_errorf(&x, -EINVAL, "profile '%s' has no app-id", p->name);
		if (p->token_file == NULL)
			continue;
		/* Read it now so that a bad mode is reported at start-up, with the
		 * section's line; the caller reads it again when it needs it. */
		if (config_read_token(p->token_file, &token, &err) < 0)
			return config_errorf(&x, -EPERM, "profile '%s': %s", p->name, err ? err : "token-file");
		explicit_bzero(token, strlen(token));
	}
	return 0;
}

static int
config_parse_file(struct instantd_config *c, FILE *f, const char *path, char **ret_err)
{
	_cleanup_free_ char *dir = NULL;
	struct config_ctx x = { .file = path, .ret_err = ret_err };
	struct profile_config *cur = NULL;
	char buf[CONFIG_LINE_MAX + 2];
	const char *slash = strrchr(path, '/');
	int r;

	dir = slash == NULL ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (dir == NULL)
		return config_errorf(&x, -ENOMEM, "out of memory");
	x.dir = dir;

	while (fgets(buf, sizeof(buf), f) != NULL) {
		size_t len = strlen(buf);
		char *line, *eq, *key, *val;

		x.line++;
		if (len > 0 && buf[len - 1] != '\n' && !feof(f))
			return config_errorf(&x, -E2BIG, "line is longer than %d bytes", CONFIG_LINE_MAX);
		line = config_trim(config_strip_comment(buf));
		if (*line == '\0' || *line == ';')
			continue;

		if (*line == '[') {
			char *end = strchr(line, ']'), *name;
			struct profile_config *np;

			if (end == NULL || end[1] != '\0')
				return config_errorf(&x, -EINVAL, "malformed section header '%s'", line);
			*end = '\0';
			name = config_trim(line + 1);
			if (strncmp(name, "profile", 7) != 0 || !isspace((unsigned char)name[7]))
				return config_errorf(&x, -EINVAL, "unknown section '[%s]' (expected "
				    "[profile NAME])", name);
			name = config_trim(name + 7);
			if (!config_valid_profile_name(name))
				return config_errorf(&x, -EINVAL, "invalid profile name '%s' (letters, "
				    "digits, '.', '-' and '_', at most 64)", name);
			if (config_find_profile(c, name) != NULL)
				return config_errorf(&x, -EEXIST, "duplicate profile '%s'", name);
			np = reallocarray(c->profiles, c->n_profiles + 1, sizeof(*np));
			if (np == NULL)
				return config_errorf(&x, -ENOMEM, "out of memory");
			c->profiles = np;
			cur = &c->profiles[c->n_profiles];
			*cur = (struct profile_config){ .line = x.line };
			if ((cur->name = strdup(name)) == NULL)
				return config_errorf(&x, -ENOMEM, "out of memory");
			c->n_profiles++;
			continue;
		}

		eq = strchr(line, '=');
		if (eq == NULL)
			return config_errorf(&x, -EINVAL, "expected 'key = value', got '%s'", line);
		*eq = '\0';
		key = config_trim(line);
		val = config_trim(eq + 1);
		if (*key == '\0')
			return config_errorf(&x, -EINVAL, "missing key before '='");
		if (*val == '\0')
			return config_errorf(&x, -EINVAL, "missing value for '%s'", key);
		if (cur == NULL)
			r = config_set_global(c, &x, key, val);
		else
			r = config_set_profile(cur, &x, key, val);
		if (r == -ENOKEY) {
			if (cur == NULL && config_key_in(config_profile_keys, key))
				return config_errorf(&x, -EINVAL, "key '%s' belongs in a [profile NAME] "
				    "section", key);
			if (cur != NULL && config_key_in(config_global_keys, key))
				return config_errorf(&x, -EINVAL, "key '%s' is global: put it before "
				    "the first [profile] section", key);
			return config_errorf(&x, -EINVAL, "unknown key '%s'", key);
		}
		if (r < 0)
			return r;
	}
	if (ferror(f))
		return config_errorf(&x, -EIO, "read error");
	return config_check(c, &x);
}

int
config_load(const char *path, struct instantd_config **ret, char **ret_err)
{
	struct instantd_config *c;
	_cleanup_free_ char *def = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	struct config_ctx x = { .ret_err = ret_err };
	int r;

	if (ret_err != NULL)
		*ret_err = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	r = config_defaults(c);
	if (r < 0) {
		config_free(c);
		return config_errorf(&x, r, r == -ENOENT ? "cannot find the home directory "
		    "(HOME is not set)" : "out of memory");
	}

	if (path == NULL) {
		r = config_default_path(&def);
		if (r == -ENOENT)
			goto done;	/* no home: defaults only */
		if (r < 0)
			goto fail;
		path = def;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		r = -errno;
		/* A missing default file simply means "all defaults". */
		if (def != NULL && r == -ENOENT)
			goto done;
		x.file = path;
		config_errorf(&x, r, "cannot open: %s", strerror(-r));
		goto fail;
	}
	if ((c->path = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	r = config_parse_file(c, f, path, ret_err);
	if (r < 0)
		goto fail;
done:
	*ret = c;
	return 0;
fail:
	config_free(c);
	return r;
}

int
config_set(struct instantd_config *c, const char *key, const char *value, char **ret_err)
{
	struct config_ctx x = { .ret_err = ret_err };
	int r;

	if (ret_err != NULL)
		*ret_err = NULL;
	r = config_set_global(c, &x, key, value);
	if (r == -ENOKEY)
		return config_errorf(&x, -EINVAL, "unknown key '%s'", key);
	return r;
}

void
config_raise_log_level(struct instantd_config *c)
{
	if (c->log_level < LOG_DEBUG)
		c->log_level++;
}

const struct profile_config *
config_find_profile(const struct instantd_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_profiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

int
config_read_token(const char *token_file, char **ret_token, char **ret_err)
{
	struct config_ctx x = { .file = token_file, .ret_err = ret_err };
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;
	char *start, *end;

	if (ret_err != NULL)
		*ret_err = NULL;
	/* Never through a link: a planted link would hand us a token of our
	 * own that we would then send wherever the planted file says. */
	fd = open(token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		return config_errorf(&x, -ELOOP, "token file is a symbolic link: refusing to follow it "
		    "(fix: replace the link with the file itself)");
	if (fd < 0)
		return config_errorf(&x, -errno, "cannot open token file: %s", strerror(errno));
	if (fstat(fd, &st) < 0)
		return config_errorf(&x, -errno, "cannot stat token file: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return config_errorf(&x, -EINVAL, "token file is not a regular file");
	if (st.st_uid != geteuid())
		return config_errorf(&x, -EPERM, "token file is owned by uid %u, not by us (uid %u)",
		    (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 077) != 0)
		return config_errorf(&x, -EPERM, "token file has mode %04o: it must not be "
		    "accessible by group or others (run: chmod 600 '%s')",
		    (unsigned)(st.st_mode & 07777), token_file);
	if (st.st_size > CONFIG_TOKEN_MAX)
		return config_errorf(&x, -EFBIG, "token file is larger than %d bytes", CONFIG_TOKEN_MAX);

	buf = malloc(CONFIG_TOKEN_MAX + 1);
	if (buf == NULL)
		return config_errorf(&x, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t n = read(fd, buf + len, CONFIG_TOKEN_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			explicit_bzero(buf, len);
			return config_errorf(&x, -e, "cannot read token file: %s", strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_TOKEN_MAX) {
			explicit_bzero(buf, len);
			return config_errorf(&x, -EFBIG, "token file is larger than %d bytes",
			    CONFIG_TOKEN_MAX);
		}
	}
	buf[len] = '\0';
	start = config_trim(buf);
	for (end = start; *end != '\0'; end++)
		if (!isgraph((unsigned char)*end)) {
			explicit_bzero(buf, len);
			return config_errorf(&x, -EINVAL, "token file holds more than one word "
			    "(or a control character)");
		}
	if (*start == '\0')
		return config_errorf(&x, -EINVAL, "token file is empty");
	if (start != buf)
		memmove(buf, start, strlen(start) + 1);
	*ret_token = TAKE_PTR(buf);
	return 0;
}
