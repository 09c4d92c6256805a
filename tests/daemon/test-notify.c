/* Unit tests of daemon/notify.c against a fake $NOTIFY_SOCKET: the datagrams
 * READY, STATUS, WATCHDOG, STOPPING, RELOADING and the watchdog settings. */
#include "daemon/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/tap.h"

static int sock = -1;

/* The next datagram, or "" if none is waiting. */
static const char *
next_datagram(void)
{
	static char buf[4096];
	ssize_t n = recv(sock, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return buf;
}

int
main(void)
{
	char dir[256], path[300], pid[32];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t usec = 0;
	const char *d;
	char cmd[400];

	/* Without NOTIFY_SOCKET everything is a quiet no-op. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	CHECK_INT(notify_ready("x"), 0);
	CHECK_INT(notify_status("y %d", 1), 0);
	CHECK_INT(notify_watchdog_ping(), 0);
	CHECK_INT(notify_watchdog_usec(&usec), 0);

	snprintf(dir, sizeof(dir), "%s/test-notify.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(path, sizeof(path), "%s/notify", dir);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "temporary path too long\n");
		return 99;
	}
	strcpy(sa.sun_path, path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify socket");
		return 99;
	}
	setenv("NOTIFY_SOCKET", path, 1);

	CHECK(notify_ready(NULL) > 0);
	CHECK_STR(next_datagram(), "READY=1");
	CHECK(notify_ready("serving, offline") > 0);
	CHECK_STR(next_datagram(), "READY=1\nSTATUS=serving, offline");
	CHECK(notify_status("queue depth %d", 7) > 0);
	CHECK_STR(next_datagram(), "STATUS=queue depth 7");
	/* A newline inside a status would start a new assignment; it must not. */
	CHECK(notify_status("a\nWATCHDOG=1") > 0);
	CHECK_STR(next_datagram(), "STATUS=a WATCHDOG=1");
	CHECK(notify_ready("x\nSTOPPING=1") > 0);
	CHECK_STR(next_datagram(), "READY=1\nSTATUS=x STOPPING=1");
	CHECK(notify_watchdog_ping() > 0);
	CHECK_STR(next_datagram(), "WATCHDOG=1");
	CHECK(notify_stopping() > 0);
	CHECK_STR(next_datagram(), "STOPPING=1");
	CHECK(notify_reloading() > 0);
	d = next_datagram();
	CHECK(strncmp(d, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0 && strlen(d) > 27);
	CHECK(notify_extend_timeout(5000000) > 0);
	CHECK_STR(next_datagram(), "EXTEND_TIMEOUT_USEC=5000000");
	CHECK_STR(next_datagram(), "");

	/* Watchdog: on only with WATCHDOG_USEC and a matching (or absent) pid. */
	usec = 0;
	setenv("WATCHDOG_USEC", "30000000", 1);
	CHECK(notify_watchdog_usec(&usec) > 0);
	CHECK_INT(usec, 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	usec = 0;
	CHECK(notify_watchdog_usec(&usec) > 0);
	CHECK_INT(usec, 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	usec = 1;
	CHECK_INT(notify_watchdog_usec(&usec), 0);
	CHECK_INT(usec, 1);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "garbage", 1);
	CHECK(notify_watchdog_usec(&usec) < 0);
	CHECK_INT(usec, 1);

	close(sock);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
	return tap_done();
}
