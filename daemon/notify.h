/* notify.h: sd_notify(3) wrappers for the service manager: readiness, status
 * lines, the watchdog, reload and stop. Without $NOTIFY_SOCKET each is a no-op
 * returning 0. Each returns >0 if a message was sent, 0 if not, <0 errno. */
#ifndef INSTANTD_DAEMON_NOTIFY_H
#define INSTANTD_DAEMON_NOTIFY_H

#include <stdint.h>

/* READY=1 (plus STATUS=status when status is not NULL). Send once the store
 * is open and the IPC listener is up, and again after a reload finished. */
int notify_ready(const char *status);
/* STATUS=<formatted line>. */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1, at the start of a clean shutdown. */
int notify_stopping(void);
/* RELOADING=1 with MONOTONIC_USEC=, at the start of a SIGHUP reload; follow
 * with notify_ready() once done. */
int notify_reloading(void);
/* EXTEND_TIMEOUT_USEC=usec, during long start-up work before READY. */
int notify_extend_timeout(uint64_t usec);
/* Whether the manager expects watchdog pings (sd_watchdog_enabled): >0 and
 * *ret = the timeout in µs (ping every *ret / 2), 0 if disabled (*ret not
 * written), <0 errno for a malformed environment. */
int notify_watchdog_usec(uint64_t *ret);
/* WATCHDOG=1. */
int notify_watchdog_ping(void);

#endif
