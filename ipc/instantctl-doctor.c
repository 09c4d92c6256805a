/* instantctl-doctor.c: `instantctl doctor`. Checks, in order, the configuration
 * (through the daemon's own parser, instantd --check-config), the directories, the
 * daemon, the systemd unit and, per profile, DNS, TCP and TLS (done here, so the
 * answer does not depend on the daemon) and then init, token and app (asked of the
 * daemon, which is what has to work). Each failure comes with the fixing command. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "daemon/tls.h"
#include "ipc/instantctl-doctor.h"
#include "ipc/instantctl.h"
#include "ipc/instantd.h"

#define DOCTOR_MAX_PROFILES	64
#define DOCTOR_WAIT_MS		10000	/* for the daemon's session to settle */

static const char doctor_usage[] =
"Usage: instantctl [OPTIONS] doctor [PROFILE...]\n"
"\n"
"Check the installation step by step and say, for each problem, what is wrong\n"
"and the command that fixes it: the configuration (syntax, unknown keys, file\n"
"modes), the directories, the daemon, the systemd unit, and for each profile\n"
"(or only the PROFILEs named) DNS, TCP, TLS, whether the server accepts init,\n"
"the refresh token and the app. Exit status 0 only when every check passes.\n";

/* One [profile] of the resolved configuration. Strings are owned. */
struct doctor_profile {
	char *name, *app_id, *server, *token_file, *ca_file;
};

/* What instantd --check-config printed. Strings are owned. */
struct doctor_config {
	char *path;		/* NULL: no file, built-in defaults */
	char *socket, *state_dir, *ca_file;
	struct doctor_profile profiles[DOCTOR_MAX_PROFILES];
	size_t n_profiles;
};

struct doctor {
	const struct ctl_doctor_options *o;
	unsigned failed;
};

static void
doctor_ok(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
doctor_fail(struct doctor *d, const char *what, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
doctor_ok(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("ok    %s: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* fix may be NULL (then nothing is printed for it). */
static void
doctor_fail(struct doctor *d, const char *what, const char *fix, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL  %s: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (fix != NULL)
		printf("      fix: %s\n", fix);
	d->failed++;
}

static void
doctor_skip(struct doctor *d, const char *what, const char *why)
{
	printf("skip  %s: %s\n", what, why);
	d->failed++;	/* not checked is not passed */
}

static void
doctor_config_free(struct doctor_config *c)
{
	free(c->path);
	free(c->socket);
	free(c->state_dir);
	free(c->ca_file);
	for (size_t i = 0; i < c->n_profiles; i++) {
		free(c->profiles[i].name);
		free(c->profiles[i].app_id);
		free(c->profiles[i].server);
		free(c->profiles[i].token_file);
		free(c->profiles[i].ca_file);
	}
}

/* The daemon binary: $INSTANTD, else beside instantctl (an installation), else
 * in the build tree, else from PATH. *ret is malloc'd. */
static int
doctor_daemon_path(char **ret)
{
	const char *env = getenv("INSTANTD");
	char self[PATH_MAX], *p;
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return (*ret = strdup(env)) != NULL ? 0 : -ENOMEM;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((p = strrchr(self, '/')) != NULL) {
			*p = '\0';
			/* beside us; the build tree; the build tree seen from .libs/ */
			static const char *const where[] = { "%s/instantd", "%s/../daemon/instantd",
			    "%s/../../daemon/instantd" };

			for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
				char *cand = NULL;

				if (asprintf(&cand, where[i], self) < 0)
					return -ENOMEM;
				if (access(cand, X_OK) == 0) {
					*ret = cand;
					return 0;
				}
				free(cand);
			}
		}
	}
	return (*ret = strdup("instantd")) != NULL ? 0 : -ENOMEM;
}

/* Run instantd --check-config; *ret_out (malloc'd) holds stdout and stderr. */
static int
doctor_run_check(const char *daemon, char **ret_out, int *ret_status)
{
	int fds[2], status = 0;
	size_t len = 0, cap = 8192;
	char *buf;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		execlp(daemon, daemon, "--check-config", (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", daemon, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	buf = malloc(cap);
	for (;;) {
		ssize_t n;

		if (buf != NULL && cap - len < 1024) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL) {
				free(buf);
				buf = NULL;
			} else {
				buf = nb;
				cap *= 2;
			}
		}
		if (buf == NULL) {
			char sink[4096];

			if (read(fds[0], sink, sizeof(sink)) <= 0)
				break;
			continue;
		}
		n = read(fds[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (buf == NULL)
		return -ENOMEM;
	buf[len] = '\0';
	*ret_out = buf;
	*ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	return 0;
}

/* "key = value" lines of --check-config into c. */
static int
doctor_parse_config(char *text, struct doctor_config *c)
{
	struct doctor_profile *p = NULL;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		static const char from[] = "configuration from ";
		char *eq, *k, *v, **field = NULL;

		if (line[0] == '#') {
			char *f = strstr(line, from);

			if (f != NULL && c->path == NULL && f[strlen(from)] == '/')
				c->path = strdup(f + strlen(from));
			continue;
		}
		if (strncmp(line, "[profile ", 9) == 0) {
			if (c->n_profiles == DOCTOR_MAX_PROFILES)
				return -E2BIG;
			p = &c->profiles[c->n_profiles++];
			p->name = strndup(line + 9, strcspn(line + 9, "]"));
			if (p->name == NULL)
				return -ENOMEM;
			continue;
		}
		if ((eq = strstr(line, " = ")) == NULL)
			continue;
		*eq = '\0';
		k = line;
		v = eq + 3;
		if (p == NULL) {
			if (strcmp(k, "socket") == 0)
				field = &c->socket;
			else if (strcmp(k, "state-dir") == 0)
				field = &c->state_dir;
			else if (strcmp(k, "ca-file") == 0)
				field = &c->ca_file;
		} else if (strcmp(k, "app-id") == 0)
			field = &p->app_id;
		else if (strcmp(k, "server") == 0)
			field = &p->server;
		else if (strcmp(k, "token-file") == 0)
			field = &p->token_file;
		else if (strcmp(k, "ca-file") == 0)
			field = &p->ca_file;
		if (field != NULL) {
			free(*field);
			if ((*field = strdup(v)) == NULL)
				return -ENOMEM;
		}
	}
	return 0;
}

/* 1. The configuration, read by the daemon's own parser. */
static int
doctor_check_config(struct doctor *d, struct doctor_config *c)
{
	char *daemon = NULL, *out = NULL, fix[PATH_MAX + 128];
	struct stat st;
	int status = 0, r;

	r = doctor_daemon_path(&daemon);
	if (r < 0)
		return r;
	r = doctor_run_check(daemon, &out, &status);
	if (r < 0) {
		doctor_fail(d, "configuration", "install instantd (make install), or set INSTANTD "
		    "to the daemon's path", "cannot run %s: %s", daemon, strerror(-r));
		free(daemon);
		return 0;
	}
	if (status != 0) {
		char *msg = out, *colon;

		msg[strcspn(msg, "\n")] = '\0';
		if (strncmp(msg, "instantd: ", 10) == 0)
			msg += 10;
		/* "FILE:LINE: problem" -> "edit FILE, line LINE" */
		colon = strchr(msg, ':');
		if (colon != NULL && colon[1] >= '0' && colon[1] <= '9')
			snprintf(fix, sizeof(fix), "edit %.*s line %d (see instantd.conf(5)); "
			    "instantd --check-config shows the result", (int)(colon - msg), msg,
			    atoi(colon + 1));
		else
			snprintf(fix, sizeof(fix), "edit the configuration (see instantd.conf(5)); "
			    "instantd --check-config shows the result");
		doctor_fail(d, "configuration", status == 127 ? "install instantd (make install), "
		    "or set INSTANTD to the daemon's path" : fix, "%s", msg[0] ? msg : "rejected");
		free(out);
		free(daemon);
		return 0;
	}
	r = doctor_parse_config(out, c);
	free(out);
	free(daemon);
	if (r < 0)
		return r;
	if (c->path == NULL) {
		doctor_ok("configuration", "no file, built-in defaults (%zu profiles)", c->n_profiles);
		return 0;
	}
	if (stat(c->path, &st) == 0 && (st.st_uid != geteuid() || (st.st_mode & 022) != 0)) {
		if (st.st_uid != geteuid())
			snprintf(fix, sizeof(fix), "chown %u '%s'", (unsigned)geteuid(), c->path);
		else
			snprintf(fix, sizeof(fix), "chmod go-w '%s'", c->path);
		doctor_fail(d, "configuration", fix, "%s is %s (mode %04o, uid %u): others could "
		    "change what the daemon trusts", c->path, st.st_uid != geteuid() ?
		    "owned by another user" : "writable by group or others",
		    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return 0;
	}
	doctor_ok("configuration", "%s (%zu profiles)", c->path, c->n_profiles);
	return 0;
}

/* One directory: ours, and 0700 when private. Missing is fine when the daemon
 * creates it. */
static void
doctor_check_dir(struct doctor *d, const char *what, const char *dir, bool private)
{
	char fix[PATH_MAX + 64];
	struct stat st;

	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			doctor_ok(what, "%s (not there yet: the daemon creates it)", dir);
		else
			doctor_fail(d, what, NULL, "%s: %s", dir, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(fix, sizeof(fix), "move '%s' out of the way", dir);
		doctor_fail(d, what, fix, "%s is not a directory", dir);
	} else if (st.st_uid != geteuid()) {
		snprintf(fix, sizeof(fix), "chown %u '%s'", (unsigned)geteuid(), dir);
		doctor_fail(d, what, fix, "%s is owned by uid %u, not by you (uid %u)", dir,
		    (unsigned)st.st_uid, (unsigned)geteuid());
	} else if ((st.st_mode & (private ? 077 : 022)) != 0) {
		snprintf(fix, sizeof(fix), "chmod %s '%s'", private ? "700" : "go-w", dir);
		doctor_fail(d, what, fix, "%s has mode %04o: %s", dir, (unsigned)(st.st_mode & 07777),
		    private ? "others can look into it" : "others can write to it");
	} else
		doctor_ok(what, "%s (mode %04o)", dir, (unsigned)(st.st_mode & 07777));
}

static char *
doctor_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash == NULL ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* 2. Directories: the configuration's, the state and the socket's. */
static void
doctor_check_dirs(struct doctor *d, const struct doctor_config *c, const char *socket)
{
	if (c->path != NULL) {
		char *dir = doctor_dirname(c->path);

		if (dir != NULL)
			doctor_check_dir(d, "configuration directory", dir, false);
		free(dir);
	}
	if (c->state_dir != NULL)
		doctor_check_dir(d, "state directory", c->state_dir, true);
	if (socket != NULL) {
		char *dir = doctor_dirname(socket);

		if (dir != NULL)
			doctor_check_dir(d, "socket directory", dir, true);
		free(dir);
	}
}

/* 3. The daemon answers status. */
static bool
doctor_check_daemon(struct doctor *d, const char *socket)
{
	struct instantd_client *c = NULL;
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	int r;

	cJSON_AddStringToObject(req, "op", "status");
	r = instantd_connect(socket, &c);
	if (r >= 0)
		r = instantd_request_sync(c, req, d->o->timeout_ms, &reply);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	instantd_free(c);
	if (r == -ENOENT || r == -ECONNREFUSED) {
		doctor_fail(d, "daemon", "systemctl --user enable --now instantd.socket",
		    "instantd is not running: nothing listens on %s", socket);
		return false;
	}
	if (r == -ETIMEDOUT) {
		doctor_fail(d, "daemon", "journalctl --user -u instantd; systemctl --user restart "
		    "instantd", "instantd at %s did not answer within %d ms", socket, d->o->timeout_ms);
		return false;
	}
	if (r < 0) {
		doctor_fail(d, "daemon", "systemctl --user enable --now instantd.socket",
		    "cannot talk to instantd at %s: %s", socket, strerror(-r));
		return false;
	}
	doctor_ok("daemon", "answers on %s", socket);
	return true;
}

/* 4. The socket unit, where systemd looks for user units. */
static void
doctor_check_unit(struct doctor *d)
{
	const char *xc = getenv("XDG_CONFIG_HOME"), *xd = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char dirs[8][PATH_MAX];
	size_t n = 0;

	if (xc != NULL && xc[0] == '/')
		snprintf(dirs[n++], PATH_MAX, "%s/systemd/user", xc);
	else if (home != NULL)
		snprintf(dirs[n++], PATH_MAX, "%s/.config/systemd/user", home);
	if (xd != NULL && xd[0] == '/')
		snprintf(dirs[n++], PATH_MAX, "%s/systemd/user", xd);
	else if (home != NULL)
		snprintf(dirs[n++], PATH_MAX, "%s/.local/share/systemd/user", home);
	snprintf(dirs[n++], PATH_MAX, "/etc/systemd/user");
#ifdef SYSTEMD_USER_UNIT_DIR
	snprintf(dirs[n++], PATH_MAX, "%s", SYSTEMD_USER_UNIT_DIR);
#endif
	snprintf(dirs[n++], PATH_MAX, "/usr/local/lib/systemd/user");
	snprintf(dirs[n++], PATH_MAX, "/usr/lib/systemd/user");
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 32];

		if (snprintf(path, sizeof(path), "%s/instantd.socket", dirs[i]) >= (int)sizeof(path))
			continue;
		if (access(path, R_OK) == 0) {
			doctor_ok("systemd unit", "%s", path);
			return;
		}
	}
	doctor_fail(d, "systemd unit", "make install (or copy contrib/instantd.socket and "
	    "instantd.service to ~/.config/systemd/user/), then systemctl --user daemon-reload",
	    "instantd.socket is not installed where systemd looks for user units");
}

/* ws[s]://host[:port]/... -> host (brackets removed), port, tls. */
static int
doctor_split_url(const char *url, char *host, size_t n, char *port, size_t pn, bool *tls)
{
	const char *h, *e, *colon;

	if (strncmp(url, "wss://", 6) == 0) {
		*tls = true;
		h = url + 6;
	} else if (strncmp(url, "ws://", 5) == 0) {
		*tls = false;
		h = url + 5;
	} else
		return -EINVAL;
	e = h + strcspn(h, "/?#");
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(e - h));

		if (rb == NULL)
			return -EINVAL;
		snprintf(host, n, "%.*s", (int)(rb - h - 1), h + 1);
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(e - h));
		snprintf(host, n, "%.*s", (int)((colon ? colon : e) - h), h);
	}
	if (colon != NULL)
		snprintf(port, pn, "%.*s", (int)(e - colon - 1), colon + 1);
	else
		snprintf(port, pn, "%s", *tls ? "443" : "80");
	return host[0] != '\0' ? 0 : -EINVAL;
}

/* A connected blocking socket within timeout_ms, or negative errno. */
static int
doctor_connect(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	socklen_t len = sizeof(int);
	int fd, err = 0, r;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	r = poll(&pfd, 1, timeout_ms);
	if (r <= 0) {
		close(fd);
		return r == 0 ? -ETIMEDOUT : -errno;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		close(fd);
		return -(err ? err : errno);
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* The TLS handshake with the daemon's rules: the system store plus ca_file,
 * chain and host name verified. 0, or a message in why. */
static int
doctor_tls(int fd, const char *host, const char *ca_file, char *why, size_t n)
{
	SSL_CTX *ctx = NULL;
	struct in6_addr a6;
	struct in_addr a4;
	SSL *ssl = NULL;
	bool ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	int r = tls_client_ctx_new(ca_file, &ctx);

	if (r == -ENOENT) {
		snprintf(why, n, "cannot read ca-file %s", ca_file);
		return -EPROTO;
	}
	if (r < 0) {
		snprintf(why, n, "cannot set up TLS");
		return r;
	}
	r = -EPROTO;	/* until the handshake succeeds */
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		goto out;
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	else {
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) == 1) {
		r = 0;
		goto out;
	}
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		snprintf(why, n, "the certificate of %s is not trusted: %s", host,
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
	else {
		unsigned long e = ERR_get_error();

		snprintf(why, n, "the TLS handshake with %s failed: %s", host,
		    e ? ERR_reason_error_string(e) : "the connection closed");
	}
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return r;
}

/* 5a. DNS, TCP and TLS for one server URL. True when all passed. */
static bool
doctor_check_network(struct doctor *d, const char *url, const char *ca_file)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL, *ai;
	char host[256], port[16], why[512], fix[600];
	bool tls;
	int fd = -ECONNREFUSED, r;

	if (doctor_split_url(url, host, sizeof(host), port, sizeof(port), &tls) < 0) {
		doctor_fail(d, "  DNS", "set server = ws://HOST[:PORT]/runtime/session (or wss://)",
		    "cannot read the host in %s", url);
		return false;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		snprintf(fix, sizeof(fix), "check the host in server = %s (instantd.conf) and the "
		    "network (resolvectl query %s)", url, host);
		doctor_fail(d, "  DNS", fix, "%s does not resolve: %s", host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return false;
	}
	doctor_ok("  DNS", "%s resolves", host);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = doctor_connect(ai, d->o->timeout_ms);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(fix, sizeof(fix), "is the server running on port %s? check server = %s",
		    port, url);
		doctor_fail(d, "  TCP", fix, "cannot connect to %s port %s: %s", host, port,
		    strerror(-fd));
		return false;
	}
	doctor_ok("  TCP", "connected to %s port %s", host, port);
	if (!tls) {
		close(fd);
		doctor_ok("  TLS", "not used (ws://)");
		return true;
	}
	r = doctor_tls(fd, host, ca_file, why, sizeof(why));
	close(fd);
	if (r < 0) {
		doctor_fail(d, "  TLS", "for a server with a private CA set ca-file = /path/to/ca.pem "
		    "in instantd.conf; otherwise fix the server's certificate or the host name", "%s",
		    why);
		return false;
	}
	doctor_ok("  TLS", "certificate of %s verified", host);
	return true;
}

/* The profile's status once its session has settled (authenticated, refused,
 * or failed at least once); NULL when the daemon would not say. Caller frees. */
static cJSON *
doctor_settled_status(struct doctor *d, struct instantd_client *c)
{
	int64_t end = ctl_now_ms() + DOCTOR_WAIT_MS;
	cJSON *req = cJSON_CreateObject(), *reply = NULL, *st = NULL;

	cJSON_AddStringToObject(req, "op", "status");
	for (;;) {
		const char *state;
		const cJSON *conn;
		double attempts;

		cJSON_Delete(reply);
		reply = NULL;
		if (instantd_request_sync(c, req, d->o->timeout_ms, &reply) < 0 ||
		    instantd_is_error(reply))
			break;
		st = cJSON_GetObjectItemCaseSensitive(reply, "status");
		state = ctl_str(st, "state");
		conn = cJSON_GetObjectItemCaseSensitive(st, "connection");
		attempts = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(conn, "attempts"));
		if (state != NULL && (strcmp(state, "authenticated") == 0 ||
		    strcmp(state, "app-not-found") == 0 || strcmp(state, "auth-failed") == 0 ||
		    strcmp(state, "signed-out") == 0 || (strcmp(state, "backoff") == 0 && attempts >= 1) ||
		    ctl_now_ms() >= end)) {
			st = cJSON_DetachItemFromObjectCaseSensitive(reply, "status");
			break;
		}
		st = NULL;
		(void)instantd_wait(c, 100);
	}
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return st;
}

/* 5b. init, token and app, as the daemon's session to the server sees them. */
static void
doctor_check_session(struct doctor *d, const struct doctor_profile *p)
{
	struct instantd_client *c = NULL;
	cJSON *req = cJSON_CreateObject(), *reply = NULL, *st = NULL;
	const char *state, *err, *user;
	char fix[512];
	bool guest;
	int r;

	cJSON_AddStringToObject(req, "op", "init");
	cJSON_AddStringToObject(req, "profile", p->name);
	cJSON_AddStringToObject(req, "client-name", "instantctl doctor");
	r = instantd_connect(d->o->socket, &c);
	if (r >= 0)
		r = instantd_request_sync(c, req, d->o->timeout_ms, &reply);
	cJSON_Delete(req);
	if (r < 0 || instantd_is_error(reply)) {
		doctor_fail(d, "  init", "systemctl --user reload instantd (after editing the "
		    "profile)", "the daemon would not open the profile: %s", r < 0 ? strerror(-r) :
		    ctl_str(reply, "message") ? ctl_str(reply, "message") : "error");
		goto out;
	}
	st = doctor_settled_status(d, c);
	state = ctl_str(st, "state");
	err = ctl_str(st, "last-error");
	if (state == NULL) {
		doctor_fail(d, "  init", NULL, "the daemon did not report the profile's state");
		goto out;
	}
	if (strcmp(state, "authenticated") == 0)
		doctor_ok("  init", "accepted by the server");
	else if (strcmp(state, "app-not-found") == 0 || strcmp(state, "auth-failed") == 0 ||
	    strcmp(state, "signed-out") == 0)
		doctor_fail(d, "  init", NULL, "the server rejected it: %s", err ? err : state);
	else {
		doctor_fail(d, "  init", "instantctl status shows the connection; the daemon's log "
		    "(journalctl --user -u instantd) the details", "no answer from the server "
		    "(%s): %s", state, err ? err : "not connected");
		goto out;
	}
	/* A session without a token is a guest's ("guest" in the connection). */
	guest = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st,
	    "connection"), "guest"));
	user = ctl_str(cJSON_GetObjectItemCaseSensitive(st, "user"), "email");
	snprintf(fix, sizeof(fix), "instantctl --profile %s login --email ADDRESS (or "
	    "--token-file FILE, or set token-file = in the profile)", p->name);
	if (strcmp(state, "auth-failed") == 0 || strcmp(state, "signed-out") == 0)
		doctor_fail(d, "  token", fix, "the server refused the profile's refresh token%s%s",
		    p->token_file ? " from " : "", p->token_file ? p->token_file : "");
	else if (guest && p->token_file == NULL)
		doctor_fail(d, "  token", fix, "no refresh token: the profile is not signed in");
	else if (strcmp(state, "authenticated") == 0)
		doctor_ok("  token", "accepted%s%s", user ? ", signed in as " : "", user ? user : "");
	else
		doctor_ok("  token", "present (not checked: the server stopped at the app)");
	if (strcmp(state, "app-not-found") == 0)
		doctor_fail(d, "  app", "check app-id = in the profile (the app's id on that server)",
		    "the server does not know app %s", p->app_id ? p->app_id : "?");
	else if (strcmp(state, "authenticated") == 0) {
		const char *as = ctl_str(st, "app-status");

		if (as != NULL && strcmp(as, "disabled") == 0)
			doctor_fail(d, "  app", "re-enable the app on the server", "app %s is disabled",
			    p->app_id);
		else
			doctor_ok("  app", "%s is known%s%s", p->app_id, as ? ", status " : "", as ? as : "");
	} else
		doctor_skip(d, "  app", "not checked: the server stopped at the token");
out:
	cJSON_Delete(reply);
	cJSON_Delete(st);
	instantd_free(c);
}

static bool
doctor_wanted(int argc, char **argv, const char *name)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int
ctl_doctor_main(int argc, char **argv, const struct ctl_doctor_options *o)
{
	struct doctor_config cfg = { 0 };
	struct ctl_doctor_options eff = *o;
	struct doctor d = { .o = &eff };
	char *defsock = NULL;
	bool daemon_up;
	int r;

	/* Each network step and each wait is bounded; a doctor that hangs helps nobody. */
	if (eff.timeout_ms > 10000)
		eff.timeout_ms = 10000;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(doctor_usage, stdout);
			return 0;
		}
	r = doctor_check_config(&d, &cfg);
	if (r < 0) {
		fprintf(stderr, "instantctl: doctor: %s\n", strerror(-r));
		doctor_config_free(&cfg);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		bool known = false;

		for (size_t k = 0; k < cfg.n_profiles; k++)
			known = known || strcmp(cfg.profiles[k].name, argv[i]) == 0;
		if (!known && cfg.socket != NULL) {
			fprintf(stderr, "instantctl: doctor: no profile '%s' in the configuration\n",
			    argv[i]);
			doctor_config_free(&cfg);
			return 2;
		}
	}
	/* The socket programs use: --socket, $INSTANTD_SOCKET, else the daemon's. */
	if (eff.socket == NULL && getenv("INSTANTD_SOCKET") == NULL)
		eff.socket = cfg.socket;
	if (eff.socket == NULL && instantd_default_socket_path(&defsock) == 0)
		eff.socket = defsock;
	doctor_check_dirs(&d, &cfg, eff.socket);
	if (eff.socket == NULL) {
		doctor_fail(&d, "daemon", "set XDG_RUNTIME_DIR (a desktop session does), or "
		    "INSTANTD_SOCKET", "no socket path: XDG_RUNTIME_DIR is not set");
		daemon_up = false;
	} else
		daemon_up = doctor_check_daemon(&d, eff.socket);
	doctor_check_unit(&d);
	for (size_t i = 0; i < cfg.n_profiles; i++) {
		const struct doctor_profile *p = &cfg.profiles[i];

		if (!doctor_wanted(argc, argv, p->name))
			continue;
		printf("profile %s (app %s, %s)\n", p->name, p->app_id ? p->app_id : "?",
		    p->server ? p->server : "?");
		if (p->server == NULL || !doctor_check_network(&d, p->server,
		    p->ca_file ? p->ca_file : cfg.ca_file))
			doctor_skip(&d, "  init, token, app", "not checked: fix the connection first");
		else if (!daemon_up)
			doctor_skip(&d, "  init, token, app", "not checked: the daemon is not reachable");
		else
			doctor_check_session(&d, p);
	}
	if (cfg.n_profiles == 0)
		printf("no profiles configured: programs name their app with init\n");
	if (d.failed == 0)
		printf("all checks passed\n");
	else
		printf("%u problem%s found\n", d.failed, d.failed == 1 ? "" : "s");
	fflush(stdout);
	doctor_config_free(&cfg);
	free(defsock);
	return d.failed == 0 ? 0 : 1;
}
