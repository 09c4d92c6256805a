/* log.c: the daemon's log sink (journald or stderr), levels, lws routing and
 * redaction of secrets. Only daemon/ code logs; see log.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <systemd/sd-journal.h>

#include "daemon/log.h"
#include "store/util.h"

#define LOG_LINE_MAX	8192
#define LOG_MAX_SECRETS	64

static char log_ident[64] = "instantd";
static int log_level = LOG_NOTICE;
static bool log_journal;
static char *log_secrets[LOG_MAX_SECRETS];
static size_t log_n_secrets;

static const char *const log_level_names[] = {
	[LOG_EMERG] = "emergency",
	[LOG_ALERT] = "alert",
	[LOG_CRIT] = "critical",
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

/* systemd.exec(5): JOURNAL_STREAM is "DEV:INODE" of the stream connected to
 * stdout/stderr; only when it matches our actual stderr is stderr the journal
 * (a child with redirected stderr inherits the variable). */
static bool
log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (e == NULL || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int
log_init(const char *ident, int level)
{
	if (ident != NULL)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_set_level(level);
	log_journal = log_stderr_is_journal();
	return 0;
}

void
log_set_level(int level)
{
	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

bool
log_to_journal(void)
{
	return log_journal;
}

int
log_level_from_string(const char *s, int *ret)
{
	static const struct { const char *name; int level; } alias[] = {
		{ "err", LOG_ERR }, { "warn", LOG_WARNING },
	};

	if (s == NULL)
		return -EINVAL;
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(s, log_level_names[i]) == 0) {
			*ret = i;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(alias); i++)
		if (strcmp(s, alias[i].name) == 0) {
			*ret = alias[i].level;
			return 0;
		}
	return -EINVAL;
}

const char *
log_level_to_string(int level)
{
	if (level < LOG_EMERG || level > LOG_DEBUG)
		return "unknown";
	return log_level_names[level];
}

/* Replace [p, p+len) with "[redacted]" or '*'s, never growing the string. */
static char *
log_redact_span(char *p, size_t len)
{
	static const char mark[] = "[redacted]";
	size_t mlen = sizeof(mark) - 1;

	if (len >= mlen) {
		memcpy(p, mark, mlen);
		memmove(p + mlen, p + len, strlen(p + len) + 1);
		return p + mlen;
	}
	memset(p, '*', len);
	return p + len;
}

/* Redact the string value of every member named key. quote is how a double
 * quote appears in s: one character in JSON, backslash + quote when the JSON
 * is itself quoted inside a JSON string. */
static void
log_redact_json_member(char *s, const char *key, const char *quote)
{
	size_t klen = strlen(key), qlen = strlen(quote);
	char *p = s;

	while ((p = strstr(p, key)) != NULL) {
		char *v = p + klen, *end;

		p += klen;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v != ':')
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncmp(v, quote, qlen) != 0)
			continue;
		v += qlen;
		if (qlen == 1) {
			for (end = v; *end != '\0' && *end != '"'; end++)
				if (*end == '\\' && end[1] != '\0')
					end++;
		} else if ((end = strstr(v, quote)) == NULL)
			end = v + strlen(v);
		/* An unterminated value (a truncated line) is redacted to its end. */
		p = log_redact_span(v, (size_t)(end - v));
	}
}

void
log_redact_token(char *s, const char *token)
{
	if (s == NULL)
		return;
	if (token != NULL && token[0] != '\0') {
		size_t tlen = strlen(token);
		char *p = s;

		while ((p = strstr(p, token)) != NULL)
			p = log_redact_span(p, tlen);
	}
	log_redact_json_member(s, "\"refresh-token\"", "\"");
	/* Escaped JSON inside a JSON string (a frame quoted in a message). */
	log_redact_json_member(s, "\\\"refresh-token\\\"", "\\\"");
}

int
log_add_secret(const char *secret)
{
	char *copy;

	if (secret == NULL || secret[0] == '\0')
		return 0;
	for (size_t i = 0; i < log_n_secrets; i++)
		if (strcmp(log_secrets[i], secret) == 0)
			return 0;
	if (log_n_secrets == LOG_MAX_SECRETS)
		return -ENOSPC;
	copy = strdup(secret);
	if (copy == NULL)
		return -ENOMEM;
	log_secrets[log_n_secrets++] = copy;
	return 0;
}

void
log_forget_secrets(void)
{
	for (size_t i = 0; i < log_n_secrets; i++) {
		explicit_bzero(log_secrets[i], strlen(log_secrets[i]));
		free(log_secrets[i]);
		log_secrets[i] = NULL;
	}
	log_n_secrets = 0;
}

static void
log_redact_all(char *s)
{
	log_redact_token(s, NULL);
	for (size_t i = 0; i < log_n_secrets; i++)
		log_redact_token(s, log_secrets[i]);
}

/* A field value for the journal or stderr: redacted, no newlines. */
static void
log_copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
	for (char *p = dst; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log_redact_all(dst);
}

static int (*log_journal_writer)(const struct iovec *iov, int n) = sd_journal_sendv;

void
log_set_journal_writer(int (*writer)(const struct iovec *iov, int n))
{
	log_journal_writer = writer != NULL ? writer : sd_journal_sendv;
}

static char *
log_field_dup(const char *name, const char *value)
{
	char *s;

	if (asprintf(&s, "%s%s", name, value) < 0)
		return NULL;
	return s;
}

#define LOG_IOV(iov, k, str) do { \
	(iov)[(k)].iov_base = (str); \
	(iov)[(k)].iov_len = strlen(str); \
	(k)++; \
} while (0)

static void
log_emit(int prio, const struct log_fields *f, const char *msg)
{
	char profile[256] = "", app_id[256] = "", mutation_id[256] = "", op[256] = "";
	char line[LOG_LINE_MAX + 1200];
	size_t n;

	if (f != NULL) {
		if (f->profile != NULL)
			log_copy_field(profile, sizeof(profile), f->profile);
		if (f->app_id != NULL)
			log_copy_field(app_id, sizeof(app_id), f->app_id);
		if (f->mutation_id != NULL)
			log_copy_field(mutation_id, sizeof(mutation_id), f->mutation_id);
		if (f->op != NULL)
			log_copy_field(op, sizeof(op), f->op);
	}

	if (log_journal) {
		char prio_field[32], ident_field[sizeof(log_ident) + 32];
		struct iovec iov[8];
		int k = 0;
		_cleanup_free_ char *m = NULL, *pf = NULL, *af = NULL, *mf = NULL, *of = NULL;

		m = log_field_dup("MESSAGE=", msg);
		snprintf(prio_field, sizeof(prio_field), "PRIORITY=%d", prio);
		snprintf(ident_field, sizeof(ident_field), "SYSLOG_IDENTIFIER=%s", log_ident);
		if (m == NULL)
			return;
		LOG_IOV(iov, k, m);
		LOG_IOV(iov, k, prio_field);
		LOG_IOV(iov, k, ident_field);
		/* Only the fields that are present; an empty FOO= would still
		 * match "journalctl FOO=" and mislead. */
		if (profile[0] != '\0' && (pf = log_field_dup("INSTANTD_PROFILE=", profile)) != NULL)
			LOG_IOV(iov, k, pf);
		if (app_id[0] != '\0' && (af = log_field_dup("INSTANTD_APP_ID=", app_id)) != NULL)
			LOG_IOV(iov, k, af);
		if (mutation_id[0] != '\0' &&
		    (mf = log_field_dup("INSTANTD_MUTATION_ID=", mutation_id)) != NULL)
			LOG_IOV(iov, k, mf);
		if (op[0] != '\0' && (of = log_field_dup("INSTANTD_OP=", op)) != NULL)
			LOG_IOV(iov, k, of);
		(void)log_journal_writer(iov, k);
		return;
	}

	n = (size_t)snprintf(line, sizeof(line), "%s: %s: %s", log_ident, log_level_to_string(prio), msg);
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
#define LOG_APPEND(key, val) do { \
	if ((val)[0] != '\0' && n < sizeof(line) - 1) { \
		int _w = snprintf(line + n, sizeof(line) - n, " %s=%s", key, val); \
		n = _w < 0 ? n : n + (size_t)_w; \
		if (n >= sizeof(line)) \
			n = sizeof(line) - 1; \
	} \
} while (0)
	LOG_APPEND("profile", profile);
	LOG_APPEND("app-id", app_id);
	LOG_APPEND("mutation-id", mutation_id);
	LOG_APPEND("op", op);
#undef LOG_APPEND
	line[n++] = '\n';
	/* One write per line so concurrent writers do not interleave. */
	(void)!write(STDERR_FILENO, line, n);
}

void
log_structuredv(int prio, const struct log_fields *f, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	int saved_errno = errno;

	if (prio > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log_redact_all(msg);
	log_emit(prio, f, msg);
	errno = saved_errno;
}

void
log_structured(int prio, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_structuredv(prio, f, fmt, ap);
	va_end(ap);
}

#define LOG_DEFINE(name, prio) \
void \
name(const char *fmt, ...) \
{ \
	va_list ap; \
	va_start(ap, fmt); \
	log_structuredv(prio, NULL, fmt, ap); \
	va_end(ap); \
}
LOG_DEFINE(log_debug, LOG_DEBUG)
LOG_DEFINE(log_info, LOG_INFO)
LOG_DEFINE(log_notice, LOG_NOTICE)
LOG_DEFINE(log_warn, LOG_WARNING)
LOG_DEFINE(log_error, LOG_ERR)
#undef LOG_DEFINE

/* lws's notices are start-up banners and its info lines are internals: they
 * are shown one level lower than lws rates them, so that our default level
 * (notice) shows only lws's errors and warnings. */
static int
log_lws_prio(int level)
{
	if (level & LLL_ERR)
		return LOG_ERR;
	if (level & LLL_WARN)
		return LOG_WARNING;
	if (level & LLL_NOTICE)
		return LOG_INFO;
	return LOG_DEBUG;
}

int
log_lws_mask(int level)
{
	int mask = LLL_ERR;

	if (level >= LOG_WARNING)
		mask |= LLL_WARN;
	if (level >= LOG_INFO)
		mask |= LLL_NOTICE;
	if (level >= LOG_DEBUG)
		mask |= LLL_INFO | LLL_DEBUG | LLL_CLIENT | LLL_USER;
	return mask;
}

void
log_lws_emit(int level, const char *line)
{
	char buf[LOG_LINE_MAX];
	const char *p = line;
	size_t n;

	if (line == NULL)
		return;
	/* lws 4.1 prefixes "[YYYY/MM/DD HH:MM:SS:uuuu] X: " when it formats
	 * the line itself; the journal and our prefix already say both. */
	if (p[0] == '[') {
		const char *close = strchr(p, ']');

		if (close != NULL && close[1] == ' ' && close[2] != '\0' && close[3] == ':') {
			p = close + 4;
			while (*p == ' ')
				p++;
		}
	}
	snprintf(buf, sizeof(buf), "%s", p);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_structured(log_lws_prio(level), NULL, "lws: %s", buf);
}
