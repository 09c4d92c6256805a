/* log.h: the daemon's logging: journald with structured fields when stderr is
 * the journal, plain "instantd: level: message" lines on stderr otherwise.
 * Secrets are redacted from every line before it leaves the process. */
#ifndef INSTANTD_DAEMON_LOG_H
#define INSTANTD_DAEMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

/* Optional context attached to a message. Any member may be NULL (omitted).
 * Journal fields: INSTANTD_PROFILE, INSTANTD_APP_ID, INSTANTD_MUTATION_ID,
 * INSTANTD_OP. On stderr they are appended as " profile=... app-id=...
 * mutation-id=... op=...". */
struct log_fields {
	const char *profile;
	const char *app_id;
	const char *mutation_id;
	const char *op;
};

/* Choose the sink: the journal when $JOURNAL_STREAM names the device and inode
 * of our stderr, else stderr. ident is the prefix of stderr lines and the
 * SYSLOG_IDENTIFIER (copied). level is the most verbose syslog priority that
 * is emitted (LOG_ERR..LOG_DEBUG). Returns 0 or -ENOMEM. Logging before
 * log_init works (stderr, ident "instantd", LOG_NOTICE). */
int log_init(const char *ident, int level);
void log_set_level(int level);
int log_get_level(void);
/* True when the journal sink was chosen. */
bool log_to_journal(void);
/* For tests: send journal entries (one iovec per FIELD=value) to writer
 * instead of sd_journal_sendv; NULL restores it. */
struct iovec;
void log_set_journal_writer(int (*writer)(const struct iovec *iov, int n));

/* "error", "warning", "notice", "info", "debug" -> LOG_ERR.. LOG_DEBUG.
 * Also accepts "err" and "warn". 0 or -EINVAL; *ret written on success. */
int log_level_from_string(const char *s, int *ret);
const char *log_level_to_string(int level);

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
/* prio is a syslog priority; f may be NULL. */
void log_structured(int prio, const struct log_fields *f, const char *fmt, ...) LOG_PRINTF(3, 4);
void log_structuredv(int prio, const struct log_fields *f, const char *fmt, va_list ap)
    LOG_PRINTF(3, 0);

/* An emit function for lws_set_log_level(mask, log_lws_emit): maps LLL_ERR
 * and LLL_WARN to error and warning, LLL_NOTICE (lws's banners) to info and
 * the rest to debug; strips the trailing newline and any "[timestamp] X:"
 * prefix, and prefixes "lws: ". */
void log_lws_emit(int level, const char *line);
/* The lws log mask that matches our level, with the mapping above (for
 * lws_set_log_level; call again after log_set_level). */
int log_lws_mask(int level);

/* Remember a secret (a refresh token) that must never be logged: every later
 * line has each occurrence replaced. The string is copied. 0 or -ENOMEM. */
int log_add_secret(const char *secret);
/* Forget all remembered secrets (wiping the copies). */
void log_forget_secrets(void);

/* In place: replace every occurrence of token (if not NULL or empty) and the
 * string value of every JSON "refresh-token" member with "[redacted]". The
 * string never grows: a match shorter than "[redacted]" becomes that many '*'. */
void log_redact_token(char *s, const char *token);

#endif
