/* Test harness for daemon/upstream: runs an lws loop the way instantd does with one
 * upstream session, prints every event as a JSON line on stdout and takes commands
 * on stdin (adopted into the same loop), so the .mjs tests can script scenarios.
 *
 * Events: {"ev":"state","state","detail"?}, {"ev":"msg","msg"}, {"ev":"log","prio","msg"},
 * {"ev":"lws","msg"}, {"ev":"status","status","ticks"}, {"ev":"closed"}, and
 * {"ev":<command>,"rc"} replies. "ticks" counts a 50 ms timer, to show the loop runs.
 * Commands: send <json> | status | reconnect | token <t>|- | watch <s> | pause |
 * resume | close | quit. EOF on stdin quits. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "store/util.h"

static struct lws_context *ctx;
static struct upstream *up;
static bool interrupted;
static unsigned long ticks;
static lws_sorted_usec_list_t tick_sul;
static char line[1 << 20];
static size_t line_len;
static int hang_fds[2] = { -1, -1 };

static void
emit(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s) {
		printf("%s\n", s);
		fflush(stdout);
		free(s);
	}
	cJSON_Delete(o);
}

static void
on_state(void *ud, enum upstream_state st, const char *detail)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "ev", "state");
	cJSON_AddStringToObject(o, "state", upstream_state_name(st));
	if (detail)
		cJSON_AddStringToObject(o, "detail", detail);
	emit(o);
}

static void
on_message(void *ud, const cJSON *msg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "ev", "msg");
	cJSON_AddItemToObject(o, "msg", cJSON_Duplicate(msg, true));
	emit(o);
}

static void
on_log(void *ud, int prio, const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "ev", "log");
	cJSON_AddNumberToObject(o, "prio", prio);
	cJSON_AddStringToObject(o, "msg", msg);
	emit(o);
}

static void
lws_emit(int level, const char *l)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "ev", "lws");
	cJSON_AddStringToObject(o, "msg", l);
	emit(o);
}

static void
closed_cb(void *ud)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "ev", "closed");
	emit(o);
	interrupted = true;
	lws_cancel_service(ctx);
}

/* A resolver that never answers, like a DNS server that drops every packet. */
static int
hanging_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	char c;

	while (read(hang_fds[0], &c, 1) < 0 && errno == EINTR)
		;
	return EAI_AGAIN;
}

static void
tick_cb(lws_sorted_usec_list_t *sul)
{
	ticks++;
	lws_sul_schedule(ctx, 0, &tick_sul, tick_cb, 50 * LWS_US_PER_MS);
}

static void
reply(const char *ev, int rc)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "ev", ev);
	cJSON_AddNumberToObject(o, "rc", rc);
	emit(o);
}

static void
command(char *l)
{
	if (strncmp(l, "send ", 5) == 0) {
		cJSON *m = cJSON_Parse(l + 5);

		reply("send", m ? upstream_send(up, m) : -EINVAL);
		cJSON_Delete(m);
	} else if (strcmp(l, "status") == 0) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "ev", "status");
		cJSON_AddItemToObject(o, "status", upstream_status_json(up));
		cJSON_AddNumberToObject(o, "ticks", (double)ticks);
		emit(o);
	} else if (strcmp(l, "reconnect") == 0) {
		upstream_reconnect_now(up);
		reply("reconnect", 0);
	} else if (strncmp(l, "token ", 6) == 0) {
		reply("token", upstream_set_token(up, strcmp(l + 6, "-") ? l + 6 : NULL));
	} else if (strncmp(l, "watch ", 6) == 0) {
		upstream_transact_watch(up, atoi(l + 6));
		reply("watch", 0);
	} else if (strcmp(l, "pause") == 0 || strcmp(l, "resume") == 0) {
		upstream_pause_rx(up, l[0] == 'p');
		reply(l, 0);
	} else if (strcmp(l, "close") == 0) {
		upstream_close(up, closed_cb, NULL);
	} else if (strcmp(l, "quit") == 0) {
		interrupted = true;
		lws_cancel_service(ctx);
	} else
		reply("unknown-command", -EINVAL);
}

static int
stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	ssize_t n;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	n = read(0, line + line_len, sizeof(line) - 1 - line_len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0) {
		interrupted = true;
		lws_cancel_service(ctx);
		return -1;
	}
	line_len += (size_t)n;
	for (;;) {
		char *nl = memchr(line, '\n', line_len);
		size_t l;

		if (!nl)
			break;
		*nl = '\0';
		l = (size_t)(nl - line) + 1;
		command(line);
		memmove(line, line + l, line_len - l);
		line_len -= l;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: upstream-test --url URL --app-id ID [--token T] [--ca-file F]\n"
	    "  [--base MS] [--cap MS] [--auth-retry MS] [--ping S] [--idle S]\n"
	    "  [--resolve-timeout S] [--connect-timeout S] [--max-frame N] [--hang-dns]\n"
	    "  [--lws-timeout S]   (lws's own client timeouts; default as the daemon sets them)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "app-id", required_argument, NULL, 'a' },
		{ "token", required_argument, NULL, 't' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "base", required_argument, NULL, 'b' },
		{ "cap", required_argument, NULL, 'C' },
		{ "auth-retry", required_argument, NULL, 'r' },
		{ "ping", required_argument, NULL, 'p' },
		{ "idle", required_argument, NULL, 'i' },
		{ "resolve-timeout", required_argument, NULL, 'R' },
		{ "connect-timeout", required_argument, NULL, 'T' },
		{ "max-frame", required_argument, NULL, 'm' },
		{ "hang-dns", no_argument, NULL, 'H' },
		{ "lws-timeout", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	static struct lws_protocols protocols[UPSTREAM_PROTOCOL_COUNT + 2];
	struct upstream_config cfg;
	struct upstream_callbacks cb = { on_state, on_message, on_log };
	struct lws_context_creation_info info;
	struct lws_vhost *vh;
	SSL_CTX *tls = NULL;	/* owned; lws borrows it (freed at exit) */
	lws_sock_file_fd_type fd;
	int c, r, lws_timeout = 0;

	memset(&cfg, 0, sizeof(cfg));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': cfg.url = optarg; break;
		case 'a': cfg.app_id = optarg; break;
		case 't': cfg.refresh_token = optarg; break;
		case 'c': cfg.ca_file = optarg; break;
		case 'b': cfg.backoff_base_ms = atoi(optarg); break;
		case 'C': cfg.backoff_cap_ms = atoi(optarg); break;
		case 'r': cfg.auth_retry_ms = atoi(optarg); break;
		case 'p': cfg.ping_interval_s = atoi(optarg); break;
		case 'i': cfg.idle_timeout_s = atoi(optarg); break;
		case 'R': cfg.resolve_timeout_s = atoi(optarg); break;
		case 'T': cfg.connect_timeout_s = atoi(optarg); break;
		case 'm': cfg.max_frame = (size_t)atoll(optarg); break;
		case 'L': lws_timeout = atoi(optarg); break;
		case 'H':
			if (pipe(hang_fds) < 0)
				return 1;
			cfg.getaddrinfo_hook = hanging_getaddrinfo;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!cfg.url || !cfg.app_id) {
		usage();
		return 2;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (!lws_timeout)
		lws_timeout = UPSTREAM_LWS_TIMEOUT_S(cfg.connect_timeout_s ? cfg.connect_timeout_s :
		    UPSTREAM_DEFAULT_CONNECT_TIMEOUT_S);
	info.timeout_secs = (unsigned)lws_timeout;
	ctx = lws_create_context(&info);
	if (!ctx)
		return 1;

	/* the daemon's vhost: the upstream entries plus its own raw-file protocol */
	memcpy(protocols, upstream_protocols, sizeof(upstream_protocols));
	protocols[UPSTREAM_PROTOCOL_COUNT] = (struct lws_protocols){ "harness-stdin", stdin_callback, 0, 0, 0, NULL, 0 };
	memset(&info, 0, sizeof(info));
	info.vhost_name = "net";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.connect_timeout_secs = (unsigned)lws_timeout;
	/* the daemon's trust rule, as main.c gives it to the "net" vhost */
	if (tls_client_ctx_new(NULL, &tls) < 0)
		return 1;
	info.provided_client_ssl_ctx = tls;
	vh = lws_create_vhost(ctx, &info);
	if (!vh)
		return 1;

	(void)fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	memset(&fd, 0, sizeof(fd));
	fd.filefd = 0;
	if (!lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, "harness-stdin", NULL))
		return 1;

	r = upstream_new(ctx, vh, &cfg, &cb, NULL, &up);
	if (r < 0) {
		reply("new", r);
		lws_context_destroy(ctx);
		SSL_CTX_free(tls);
		return 1;
	}
	reply("new", 0);
	lws_sul_schedule(ctx, 0, &tick_sul, tick_cb, 50 * LWS_US_PER_MS);
	r = upstream_start(up);
	reply("start", r);

	while (!interrupted)
		if (lws_service(ctx, 0) < 0)
			break;

	lws_sul_cancel(&tick_sul);
	upstream_free(up);
	lws_context_destroy(ctx);
	SSL_CTX_free(tls);
	if (hang_fds[1] >= 0)
		close(hang_fds[1]);	/* lets a hung resolver thread finish */
	return 0;
}
