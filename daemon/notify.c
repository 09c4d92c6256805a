/* notify.c: sd_notify(3) messages to the service manager (readiness, status,
 * watchdog, reload, stop). No-ops outside systemd. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "daemon/notify.h"

/* STATUS= lines are for humans; longer ones are cut, not refused. */
#define NOTIFY_STATUS_MAX 512

static int
notify_send(const char *msg)
{
	/* unset_environment = 0: the watchdog and later messages still need
	 * NOTIFY_SOCKET for the whole life of the process. */
	return sd_notify(0, msg);
}

/* A status line is one line: the protocol is newline-separated assignments. */
static void
notify_clean(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

int
notify_ready(const char *status)
{
	char buf[NOTIFY_STATUS_MAX + 32];

	if (status == NULL)
		return notify_send("READY=1");
	snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%.*s", NOTIFY_STATUS_MAX, status);
	notify_clean(buf + sizeof("READY=1\nSTATUS=") - 1);
	return notify_send(buf);
}

int
notify_status(const char *fmt, ...)
{
	char buf[NOTIFY_STATUS_MAX + 8] = "STATUS=";
	size_t off = sizeof("STATUS=") - 1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + off, sizeof(buf) - off, fmt, ap);
	va_end(ap);
	notify_clean(buf + off);
	return notify_send(buf);
}

int
notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int
notify_reloading(void)
{
	char buf[64];
	struct timespec ts;

	/* MONOTONIC_USEC lets Type=notify-reload managers (systemd >= 253)
	 * match the reload; older ones ignore the extra assignment. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return notify_send("RELOADING=1");
	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	return notify_send(buf);
}

int
notify_extend_timeout(uint64_t usec)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
	return notify_send(buf);
}

int
notify_watchdog_usec(uint64_t *ret)
{
	uint64_t usec = 0;
	int r;

	r = sd_watchdog_enabled(0, &usec);
	if (r <= 0)
		return r;
	*ret = usec;
	return r;
}

int
notify_watchdog_ping(void)
{
	return notify_send("WATCHDOG=1");
}
