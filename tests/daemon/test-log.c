/* Unit tests of daemon/log.c: level names, the stderr line format with
 * structured fields, sink selection by $JOURNAL_STREAM, lws line routing and
 * the redaction of tokens. */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libwebsockets.h>

#include "tests/tap.h"

static char errpath[256];
static int saved_stderr = -1;

/* Point stderr at a fresh temporary file. */
static void
capture_start(void)
{
	int fd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		perror(errpath);
		exit(99);
	}
	close(fd);
}

/* Restore stderr and return what was written (static buffer). */
static const char *
capture_end(void)
{
	static char buf[16384];
	FILE *f;
	size_t n;

	dup2(saved_stderr, STDERR_FILENO);
	f = fopen(errpath, "r");
	if (f == NULL) {
		perror(errpath);
		exit(99);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_levels(void)
{
	int l = -1;

	CHECK_INT(log_level_from_string("error", &l), 0);
	CHECK_INT(l, LOG_ERR);
	CHECK_INT(log_level_from_string("warning", &l), 0);
	CHECK_INT(l, LOG_WARNING);
	CHECK_INT(log_level_from_string("warn", &l), 0);
	CHECK_INT(l, LOG_WARNING);
	CHECK_INT(log_level_from_string("notice", &l), 0);
	CHECK_INT(l, LOG_NOTICE);
	CHECK_INT(log_level_from_string("info", &l), 0);
	CHECK_INT(l, LOG_INFO);
	CHECK_INT(log_level_from_string("debug", &l), 0);
	CHECK_INT(l, LOG_DEBUG);
	l = 42;
	CHECK_INT(log_level_from_string("DEBUG", &l), -EINVAL);
	CHECK_INT(log_level_from_string("", &l), -EINVAL);
	CHECK_INT(l, 42);
	CHECK_STR(log_level_to_string(LOG_WARNING), "warning");
	CHECK_STR(log_level_to_string(99), "unknown");
	log_set_level(100);
	CHECK_INT(log_get_level(), LOG_DEBUG);
	log_set_level(0);
	CHECK_INT(log_get_level(), LOG_ERR);
}

static void
test_stderr_format(void)
{
	const char *out;

	unsetenv("JOURNAL_STREAM");
	CHECK_INT(log_init("instantd", LOG_INFO), 0);
	CHECK(!log_to_journal());
	capture_start();
	log_warn("disk %s is %d%% full", "/x", 97);
	log_debug("not shown at info");
	log_info("line one\nline two");
	log_error("boom");
	log_notice("n");
	log_structured(LOG_WARNING, &(struct log_fields){ .profile = "work", .app_id = "app-1",
	    .mutation_id = "m-9", .op = "transact" }, "write rejected: %s", "permission denied");
	log_structured(LOG_INFO, &(struct log_fields){ .op = "add-query" }, "subscribed");
	log_structured(LOG_INFO, NULL, "no fields");
	log_set_level(LOG_ERR);
	log_warn("hidden");
	log_error("shown");
	out = capture_end();
	CHECK_STR(out,
	    "instantd: warning: disk /x is 97% full\n"
	    "instantd: info: line one line two\n"
	    "instantd: error: boom\n"
	    "instantd: notice: n\n"
	    "instantd: warning: write rejected: permission denied profile=work app-id=app-1 "
	    "mutation-id=m-9 op=transact\n"
	    "instantd: info: subscribed op=add-query\n"
	    "instantd: info: no fields\n"
	    "instantd: error: shown\n");

	/* errno survives logging (callers log then return -errno). */
	log_set_level(LOG_DEBUG);
	capture_start();
	errno = EPIPE;
	log_info("x");
	CHECK_INT(errno, EPIPE);
	capture_end();
}

static void
test_journal_selection(void)
{
	struct stat st;
	char v[64];

	/* stderr is a file here: a JOURNAL_STREAM naming it selects the
	 * journal; one naming anything else (or garbage) does not. Nothing is
	 * logged while the journal is selected, the test has no journald. */
	capture_start();
	CHECK_INT(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	log_init("instantd", LOG_INFO);
	CHECK(log_to_journal());
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", v, 1);
	log_init("instantd", LOG_INFO);
	CHECK(!log_to_journal());
	setenv("JOURNAL_STREAM", "12:34x", 1);
	log_init("instantd", LOG_INFO);
	CHECK(!log_to_journal());
	unsetenv("JOURNAL_STREAM");
	log_init("instantd", LOG_INFO);
	CHECK(!log_to_journal());
	capture_end();
}

static char journal_buf[8192];
static int journal_calls;

/* Captures one journal entry as "FIELD=value|FIELD=value|...". */
static int
journal_capture(const struct iovec *iov, int n)
{
	size_t off = 0;

	journal_calls++;
	journal_buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		int w = snprintf(journal_buf + off, sizeof(journal_buf) - off, "%s%.*s",
		    i ? "|" : "", (int)iov[i].iov_len, (const char *)iov[i].iov_base);

		if (w < 0 || (size_t)w >= sizeof(journal_buf) - off)
			break;
		off += (size_t)w;
	}
	return 0;
}

static void
test_journal_fields(void)
{
	struct stat st;
	char v[64];
	const char *out;

	capture_start();
	CHECK_INT(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	log_init("instantd", LOG_INFO);
	log_set_journal_writer(journal_capture);
	CHECK(log_to_journal());
	CHECK_INT(log_add_secret("jrnl-secret-token-value"), 0);

	log_structured(LOG_WARNING, &(struct log_fields){ .profile = "work", .app_id = "app-1",
	    .mutation_id = "m-9", .op = "transact" }, "rejected %s", "jrnl-secret-token-value");
	CHECK_STR(journal_buf, "MESSAGE=rejected [redacted]|PRIORITY=4|SYSLOG_IDENTIFIER=instantd|"
	    "INSTANTD_PROFILE=work|INSTANTD_APP_ID=app-1|INSTANTD_MUTATION_ID=m-9|INSTANTD_OP=transact");
	log_structured(LOG_INFO, &(struct log_fields){ .op = "add-query" }, "only op");
	CHECK_STR(journal_buf, "MESSAGE=only op|PRIORITY=6|SYSLOG_IDENTIFIER=instantd|INSTANTD_OP=add-query");
	log_error("plain");
	CHECK_STR(journal_buf, "MESSAGE=plain|PRIORITY=3|SYSLOG_IDENTIFIER=instantd");
	log_debug("below the level");
	CHECK_INT(journal_calls, 3);

	log_forget_secrets();
	log_set_journal_writer(NULL);
	unsetenv("JOURNAL_STREAM");
	log_init("instantd", LOG_INFO);
	out = capture_end();
	CHECK_STR(out, "");	/* nothing went to stderr meanwhile */
}

static void
test_lws(void)
{
	const char *out;

	log_init("instantd", LOG_INFO);
	capture_start();
	log_lws_emit(LLL_ERR, "[2026/11/27 18:00:00:0000] E: connect failed\n");
	log_lws_emit(LLL_WARN, "plain warning\n");
	log_lws_emit(LLL_NOTICE, "[2026/11/27 18:00:00:0000] N: notice\n");
	log_lws_emit(LLL_INFO, "info hidden");
	log_lws_emit(LLL_DEBUG, "debug hidden\n");
	log_set_level(LOG_DEBUG);
	log_lws_emit(LLL_INFO, "info line");
	log_lws_emit(LLL_CLIENT, "client line\n");
	out = capture_end();
	CHECK_STR(out,
	    "instantd: error: lws: connect failed\n"
	    "instantd: warning: lws: plain warning\n"
	    "instantd: info: lws: notice\n"
	    "instantd: debug: lws: info line\n"
	    "instantd: debug: lws: client line\n");
	CHECK(log_lws_mask(LOG_ERR) & LLL_ERR);
	CHECK(!(log_lws_mask(LOG_ERR) & LLL_WARN));
	CHECK(log_lws_mask(LOG_NOTICE) & LLL_WARN);
	CHECK(!(log_lws_mask(LOG_NOTICE) & LLL_NOTICE));
	CHECK(log_lws_mask(LOG_INFO) & LLL_NOTICE);
	CHECK(!(log_lws_mask(LOG_INFO) & LLL_INFO));
	CHECK(log_lws_mask(LOG_DEBUG) & LLL_INFO);
	CHECK(log_lws_mask(LOG_DEBUG) & LLL_DEBUG);
}

static void
test_redact(void)
{
	char s[512];
	const char *out;

	snprintf(s, sizeof(s), "token abcdefghijklmnop and abcdefghijklmnop again");
	log_redact_token(s, "abcdefghijklmnop");
	CHECK_STR(s, "token [redacted] and [redacted] again");

	snprintf(s, sizeof(s), "short abc!");
	log_redact_token(s, "abc");
	CHECK_STR(s, "short ***!");

	snprintf(s, sizeof(s), "nothing here");
	log_redact_token(s, NULL);
	CHECK_STR(s, "nothing here");
	log_redact_token(s, "");
	CHECK_STR(s, "nothing here");
	log_redact_token(NULL, "x");

	snprintf(s, sizeof(s), "{\"op\":\"init\",\"refresh-token\":\"0f1e2d3c-aaaa-bbbb\",\"x\":1}");
	log_redact_token(s, NULL);
	CHECK_STR(s, "{\"op\":\"init\",\"refresh-token\":\"[redacted]\",\"x\":1}");

	snprintf(s, sizeof(s), "{\"refresh-token\" : \"with \\\"quote\\\" inside!\", \"y\":2}");
	log_redact_token(s, NULL);
	CHECK_STR(s, "{\"refresh-token\" : \"[redacted]\", \"y\":2}");

	snprintf(s, sizeof(s), "{\"refresh-token\":\"ab\"}");
	log_redact_token(s, NULL);
	CHECK_STR(s, "{\"refresh-token\":\"**\"}");

	snprintf(s, sizeof(s), "{\"refresh-token\":null}");
	log_redact_token(s, NULL);
	CHECK_STR(s, "{\"refresh-token\":null}");

	/* Truncated line: the value is redacted to the end. */
	snprintf(s, sizeof(s), "frame {\"refresh-token\":\"0123456789abcdef");
	log_redact_token(s, NULL);
	CHECK_STR(s, "frame {\"refresh-token\":\"[redacted]");

	/* JSON quoted inside a JSON string. */
	snprintf(s, sizeof(s), "\"{\\\"refresh-token\\\":\\\"0123456789abcdef\\\"}\"");
	log_redact_token(s, NULL);
	CHECK_STR(s, "\"{\\\"refresh-token\\\":\\\"[redacted]\\\"}\"");

	/* Registered secrets never reach the log, in the message or in fields. */
	unsetenv("JOURNAL_STREAM");
	log_init("instantd", LOG_DEBUG);
	CHECK_INT(log_add_secret("s3cr3t-t0ken-value"), 0);
	CHECK_INT(log_add_secret("s3cr3t-t0ken-value"), 0);
	capture_start();
	log_warn("init with s3cr3t-t0ken-value failed");
	log_structured(LOG_INFO, &(struct log_fields){ .profile = "p-s3cr3t-t0ken-value" },
	    "sent {\"op\":\"init\",\"refresh-token\":\"other-token-1234\"}");
	log_forget_secrets();
	log_warn("after forget s3cr3t-t0ken-value");
	out = capture_end();
	CHECK_STR(out,
	    "instantd: warning: init with [redacted] failed\n"
	    "instantd: info: sent {\"op\":\"init\",\"refresh-token\":\"[redacted]\"} profile=p-[redacted]\n"
	    "instantd: warning: after forget s3cr3t-t0ken-value\n");
}

int
main(void)
{
	snprintf(errpath, sizeof(errpath), "%s/test-log.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(errpath);
	if (fd < 0) {
		perror("mkstemp");
		return 99;
	}
	close(fd);
	saved_stderr = dup(STDERR_FILENO);

	test_levels();
	test_stderr_format();
	test_journal_selection();
	test_journal_fields();
	test_lws();
	test_redact();

	unlink(errpath);
	return tap_done();
}
