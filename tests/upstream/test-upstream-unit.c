/* Unit tests of daemon/upstream's pure parts: backoff bounds, token redaction,
 * state names, and upstream_new's URL checks (no network). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "daemon/upstream.h"
#include "store/util.h"
#include "tests/tap.h"

static void
test_backoff(void)
{
	static const uint32_t rnds[] = { 0, 1, 12345, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu };
	int base = 500, cap = 30000;

	for (unsigned a = 0; a < 80; a++) {
		int64_t ceiling = base;

		for (unsigned i = 0; i < a && ceiling < cap; i++)
			ceiling *= 2;
		if (ceiling > cap)
			ceiling = cap;
		for (size_t k = 0; k < ELEMENTSOF(rnds); k++) {
			int d = upstream_backoff_delay_ms(a, base, cap, rnds[k]);

			CHECK(d >= 0);
			CHECK(d <= ceiling);
		}
		/* the extremes of rnd reach both ends of [0, ceiling] */
		CHECK_INT(upstream_backoff_delay_ms(a, base, cap, 0), 0);
		CHECK_INT(upstream_backoff_delay_ms(a, base, cap, 0xffffffffu), ceiling);
	}
	CHECK_INT(upstream_backoff_delay_ms(0, 500, 30000, 0xffffffffu), 500);
	CHECK_INT(upstream_backoff_delay_ms(1, 500, 30000, 0xffffffffu), 1000);
	CHECK_INT(upstream_backoff_delay_ms(5, 500, 30000, 0xffffffffu), 16000);
	CHECK_INT(upstream_backoff_delay_ms(6, 500, 30000, 0xffffffffu), 30000);
	CHECK_INT(upstream_backoff_delay_ms(4000000000u, 500, 30000, 0xffffffffu), 30000);
	/* the midpoint lands in the middle (full jitter is uniform) */
	CHECK_INT(upstream_backoff_delay_ms(1, 500, 30000, 0x80000000u), 500);
	/* odd inputs never go negative or above the cap */
	CHECK_INT(upstream_backoff_delay_ms(3, 0, 0, 0xffffffffu), 1);
	CHECK_INT(upstream_backoff_delay_ms(3, 1000, 100, 0xffffffffu), 100);
	CHECK_INT(upstream_backoff_delay_ms(40, 0x7fffffff, 0x7fffffff, 0xffffffffu), 0x7fffffff);

	/* rough uniformity over a sweep: mean near ceiling/2 */
	{
		double sum = 0;
		int n = 0;

		for (uint64_t r = 0; r <= 0xffffffffu; r += 0x100001) {
			sum += upstream_backoff_delay_ms(2, 500, 30000, (uint32_t)r);
			n++;
		}
		CHECK(sum / n > 900 && sum / n < 1100);
	}
}

static void
test_redact(void)
{
	const char *tok = "5f0d8c4e-0000-4000-8000-000000000001";
	_cleanup_json_ cJSON *m = cJSON_Parse(
	    "{\"op\":\"error\",\"message\":\"Record not found: app-user\","
	    "\"hint\":{\"args\":[{\"app-id\":\"a\",\"refresh-token\":\"5f0d8c4e-0000-4000-8000-000000000001\"}],"
	    "\"record-type\":\"app-user\",\"note\":\"token=5f0d8c4e-0000-4000-8000-000000000001;x\"},"
	    "\"original-event\":{\"op\":\"init\",\"refresh-token\":\"something-else\"}}");
	_cleanup_free_ char *s = NULL;

	CHECK(m != NULL);
	upstream_redact(m, tok);
	s = json_print(m);
	CHECK(s != NULL && strstr(s, tok) == NULL);
	CHECK(s != NULL && strstr(s, "something-else") == NULL);
	CHECK_STR(json_get_string(json_get(m, "hint"), "note"), "token=[redacted];x");
	CHECK_STR(json_get_string(json_get(m, "hint"), "record-type"), "app-user");
	CHECK_STR(json_get_string(m, "message"), "Record not found: app-user");
	CHECK_STR(json_get_string(json_get(m, "original-event"), "refresh-token"), "[redacted]");
	CHECK_STR(json_get_string(cJSON_GetArrayItem(json_get(json_get(m, "hint"), "args"), 0), "refresh-token"), "[redacted]");
	upstream_redact(NULL, tok);
	upstream_redact(m, NULL);
}

static void
test_names(void)
{
	CHECK_STR(upstream_state_name(UPSTREAM_DISCONNECTED), "disconnected");
	CHECK_STR(upstream_state_name(UPSTREAM_RESOLVING), "resolving");
	CHECK_STR(upstream_state_name(UPSTREAM_CONNECTING), "connecting");
	CHECK_STR(upstream_state_name(UPSTREAM_OPENED), "opened");
	CHECK_STR(upstream_state_name(UPSTREAM_AUTHENTICATED), "authenticated");
	CHECK_STR(upstream_state_name(UPSTREAM_BACKOFF), "backoff");
	CHECK_STR(upstream_state_name(UPSTREAM_AUTH_FAILED), "auth-failed");
	CHECK_STR(upstream_state_name(UPSTREAM_APP_NOT_FOUND), "app-not-found");
	CHECK_STR(upstream_state_name(UPSTREAM_STOPPED), "stopped");
	CHECK_STR(upstream_state_name((enum upstream_state)99), "unknown");
}

static void
test_new(void)
{
	static struct lws_protocols protocols[UPSTREAM_PROTOCOL_COUNT + 1];
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct upstream_config cfg;
	struct upstream *u = NULL;
	static const char *const bad[] = {
		"http://h/x", "h/x", "ws://", "ws://h:0/x", "ws://h:99999/x", "wss://h:abc/x", "",
	};

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	ctx = lws_create_context(&info);
	CHECK(ctx != NULL);
	memcpy(protocols, upstream_protocols, sizeof(upstream_protocols));
	memset(&info, 0, sizeof(info));
	info.vhost_name = "net";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	vh = lws_create_vhost(ctx, &info);
	CHECK(vh != NULL);

	memset(&cfg, 0, sizeof(cfg));
	cfg.app_id = "app 1";
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		cfg.url = bad[i];
		CHECK_INT(upstream_new(ctx, vh, &cfg, NULL, NULL, &u), -EINVAL);
	}
	cfg.url = "wss://api.example.com?x=1";
	cfg.refresh_token = "secret-token";
	CHECK_INT(upstream_new(ctx, vh, &cfg, NULL, NULL, &u), 0);
	if (u) {
		_cleanup_json_ cJSON *st = upstream_status_json(u);
		_cleanup_free_ char *s = json_print(st);

		CHECK_STR(json_get_string(st, "state"), "disconnected");
		CHECK_STR(json_get_string(st, "server"), "wss://api.example.com?x=1");
		CHECK(s != NULL && strstr(s, "secret-token") == NULL);
		CHECK_INT(upstream_send(u, st), -ENOTCONN);
		CHECK(upstream_get_state(u) == UPSTREAM_DISCONNECTED);
		upstream_free(u);
	}
	cfg.ca_file = "/nonexistent/ca.pem";
	CHECK_INT(upstream_new(ctx, vh, &cfg, NULL, NULL, &u), -ENOENT);
	cfg.ca_file = NULL;
	cfg.url = NULL;
	CHECK_INT(upstream_new(ctx, vh, &cfg, NULL, NULL, &u), -EINVAL);
	upstream_free(NULL);
	lws_context_destroy(ctx);
}

int
main(void)
{
	test_backoff();
	test_redact();
	test_names();
	test_new();
	return tap_done();
}
