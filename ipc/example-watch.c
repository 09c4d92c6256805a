/* example-watch: the smallest useful libinstantd program. It subscribes to
 * an InstaQL query and prints each result until interrupted.
 *   example-watch APP_ID '{"goals":{"todos":{}}}' */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/instantd.h"

static void
on_result(struct instantd_client *c, const char *id, const cJSON *data, const cJSON *msg,
    void *ud)
{
	char *s = cJSON_Print(data);

	printf("%s (from-cache: %s)\n%s\n", instantd_msg_op(msg),
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "from-cache")) ? "yes" : "no",
	    s != NULL ? s : "null");
	cJSON_free(s);
	fflush(stdout);
}

static void
on_error(struct instantd_client *c, const char *id, const char *type, const char *message,
    const cJSON *msg, void *ud)
{
	fprintf(stderr, "error %s: %s\n", type, message);
	*(int *)ud = 1;
}

int
main(int argc, char **argv)
{
	struct instantd_callbacks cb = { .on_result = on_result, .on_error = on_error };
	struct instantd_client *c;
	cJSON *q;
	int failed = 0, r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s APP_ID QUERY_JSON\n", argv[0]);
		return 2;
	}
	q = cJSON_Parse(argv[2]);
	if (q == NULL) {
		fprintf(stderr, "QUERY_JSON is not JSON\n");
		return 2;
	}
	r = instantd_connect(NULL, &c);
	if (r < 0) {
		fprintf(stderr, "cannot connect to instantd: %s\n", strerror(-r));
		return 3;
	}
	instantd_set_callbacks(c, &cb, &failed);
	if (instantd_init(c, argv[1], NULL, NULL, NULL) < 0 || instantd_add_query(c, q, NULL) < 0) {
		fprintf(stderr, "cannot send\n");
		return 3;
	}
	cJSON_Delete(q);
	/* A plain poll loop, as an application with its own loop would run it. */
	while (!failed) {
		struct pollfd pfd = {
			.fd = instantd_fd(c),
			.events = POLLIN | (instantd_wants_write(c) ? POLLOUT : 0),
		};

		if (poll(&pfd, 1, -1) < 0)
			break;
		if ((pfd.revents & POLLOUT) && instantd_flush(c) < 0 && !instantd_wants_write(c))
			break;
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && instantd_dispatch(c) < 0)
			break;
	}
	instantd_free(c);
	return failed ? 1 : 0;
}
