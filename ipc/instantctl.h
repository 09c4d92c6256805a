/* instantctl.h: what instantctl's command files share; instantctl.c owns the
 * options and the helpers that connect, report errors and print. */
#ifndef INSTANTD_INSTANTCTL_H
#define INSTANTD_INSTANTCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "ipc/instantd.h"

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,	/* the daemon answered with an error */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,	/* no daemon, or it went away */
	EXIT_TIMEOUT = 4,
};

/* The global options; strings borrowed from argv or the environment. */
struct ctl_options {
	const char *socket;
	const char *app_id;
	const char *api_uri;
	const char *server;
	const char *profile;
	const char *token;
	bool json;
	int timeout_ms;
	bool timeout_set;	/* --timeout given */
};
extern struct ctl_options opt;
extern volatile sig_atomic_t ctl_interrupted;	/* SIGINT or SIGTERM came */

/* instantctl.c */
int ctl_usage_error(const char *fmt, const char *arg);
int ctl_exit_for(int r);			/* a failed exchange -> exit status */
int ctl_report_error(const cJSON *msg);		/* an error reply -> EXIT_FAILED */
void ctl_print_json_line(const cJSON *msg);
void ctl_print_pretty(const cJSON *v);
/* Connect, and init unless allow_no_app and no app or profile was given. */
int ctl_connect_opt(struct instantd_client **ret, bool allow_no_app);
cJSON *ctl_req(const char *op);			/* a new request, caller owns */
/* A string member, or NULL; a number member, or 0. Borrowed from o. */
const char *ctl_str(const cJSON *o, const char *key);
double ctl_num(const cJSON *o, const char *key);
int64_t ctl_now_ms(void);				/* CLOCK_MONOTONIC, ms */
/* Connect (and init unless allow_no_app lets it go without an app), send req
 * (taken), print the reply with print (or as JSON with --json); an exit status. */
int ctl_simple_opt(cJSON *req, void (*print)(const cJSON *reply), bool allow_no_app);
bool ctl_wants_help(int argc, char **argv);

/* instantctl-status.c */
int ctl_status(int argc, char **argv);

/* instantctl-store.c */
int ctl_profiles(int argc, char **argv);
int ctl_forget(int argc, char **argv);
int ctl_cache(int argc, char **argv);
int ctl_mutations_list(void);

/* Words a person reads (instantctl-status.c): a duration ("3 min"), a count
 * with thousands separators, a size ("1.2 MiB"), a wall-clock time in ms as
 * local time. Each writes into buf and returns it. */
const char *ctl_words_duration(char *buf, size_t len, int64_t ms);
const char *ctl_words_count(char *buf, size_t len, double n);
const char *ctl_words_bytes(char *buf, size_t len, double bytes);
const char *ctl_words_time(char *buf, size_t len, int64_t epoch_ms);
/* "3 min ago", "never" (ms <= 0), from the wall clock now. */
const char *ctl_words_ago(char *buf, size_t len, int64_t epoch_ms);

#endif
