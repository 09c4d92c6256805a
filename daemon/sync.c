/* The sync core's entry points (sync.h): the core's lifetime (new, start,
 * reloaded options, shutdown, free), the callbacks ipc-server delivers into
 * it, and the one-line status for sd_notify. What each part does is in
 * profile.c, query.c, outbox.c, session.c and ops*.c (core.h holds the types). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "daemon/auth.h"
#include "daemon/fsutil.h"
#include "daemon/log.h"
#include "daemon/ops.h"
#include "daemon/ops-auth.h"
#include "daemon/outbox.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "daemon/rooms.h"
#include "daemon/sync.h"
#include "daemon/upstream.h"
#include "ipc/ipc-server.h"
#include "store/db.h"
#include "store/util.h"

int
sync_status_line(struct sync *s, char *buf, size_t len)
{
	struct profile *p;
	size_t off = 0;

	buf[0] = '\0';
	if (TAILQ_EMPTY(&s->profiles_list)) {
		snprintf(buf, len, "idle, no profile in use");
		return 0;
	}
	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		size_t pending = 0, failed = 0;
		struct mutation *m;
		int n;

		TAILQ_FOREACH(m, &p->outbox, entry) {
			if (m->m->state == DB_MUT_FAILED)
				failed++;
			else if (m->m->state != DB_MUT_CONFIRMED)
				pending++;
		}
		n = snprintf(buf + off, len - off, "%s%s: %s, %zu queued, %zu failed",
		    off ? "; " : "", p->name, profile_state(p), pending, failed);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return 0;
}

static void
sync_on_open(void *ud, struct ipc_conn *conn)
{
	struct sync *s = ud;
	struct client *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		ipc_conn_close(conn);
		return;
	}
	c->s = s;
	c->conn = conn;
	LIST_INIT(&c->listeners);
	TAILQ_INSERT_TAIL(&s->clients, c, entry);
	ipc_conn_set_data(conn, c);
}

static void
sync_on_close(void *ud, struct ipc_conn *conn)
{
	struct sync *s = ud;
	struct client *c = ipc_conn_get_data(conn);
	struct listener *l;
	struct profile *p;

	if (c == NULL)
		return;
	while ((l = LIST_FIRST(&c->listeners))) {
		struct query *q = l->q;

		listener_free(l);
		query_maybe_release(q);
	}
	/* Writes it made stay queued; only the reply path goes away. */
	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		struct mutation *m;
		struct pending_write *w;

		TAILQ_FOREACH(m, &p->outbox, entry)
			if (m->origin == c)
				m->origin = NULL;
		TAILQ_FOREACH(w, &p->writes, entry)
			if (w->origin == c)
				w->origin = NULL;
	}
	if (c->p)
		c->p->nclients--;
	{
		struct auth_call *a;

		LIST_FOREACH(a, &s->auth_calls, entry)
			if (a->c == c)
				a->c = NULL;
	}
	/* Leaving: its presence session closes, so the room sees the peer go. */
	rooms_free(c->rooms);
	c->rooms = NULL;
	TAILQ_REMOVE(&s->clients, c, entry);
	ipc_conn_set_data(conn, NULL);
	free(c->name);
	free(c);
}

static void
sync_on_request(void *ud, struct ipc_conn *conn, const cJSON *msg)
{
	struct client *c = ipc_conn_get_data(conn);
	const char *op = json_get_string(msg, "op");
	const char *ceid = json_get_string(msg, "client-event-id");

	/* ipc-server has checked the request's shape (ipc_protocol_check). */
	if (c == NULL || op == NULL)
		return;
	ops_dispatch(c, ipc_op_from_string(op), msg, ceid);
}

const struct ipc_callbacks sync_ipc_callbacks = {
	.on_open = sync_on_open,
	.on_request = sync_on_request,
	.on_close = sync_on_close,
};

static void
sync_options_clear(struct sync *s)
{
	for (size_t i = 0; s->profiles && i < s->opt.n_profiles; i++) {
		struct sync_profile_option *po = &s->profiles[i];

		free((char *)po->name);
		free((char *)po->app_id);
		free((char *)po->server);
		free((char *)po->api_uri);
		if (po->token)
			explicit_bzero((char *)po->token, strlen(po->token));
		free((char *)po->token);
		free((char *)po->ca_file);
	}
	free(s->profiles);
	free((char *)s->opt.state_dir);
	free((char *)s->opt.default_server);
	free((char *)s->opt.default_api_uri);
	free((char *)s->opt.ca_file);
	s->profiles = NULL;
	s->opt.n_profiles = 0;
}

static const struct sync_profile_option *
sync_find_profile(const struct sync *s, const char *name)
{
	for (size_t i = 0; i < s->opt.n_profiles; i++)
		if (strcmp(s->profiles[i].name, name) == 0)
			return &s->profiles[i];
	return NULL;
}

static bool
str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* After a reload, each open configured profile is resolved again: a changed
 * api-uri or token-file (one whose token changed) applies at once; a changed server or ca-file would
 * need a new session, so it is logged by name (the open session keeps the
 * old one until the daemon restarts; a server change makes programs that
 * init from now on get a new session). */
static void
sync_reapply_profiles(struct sync *s, const struct sync *old)
{
	struct profile *p;

	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		const struct sync_profile_option *po, *opo;
		struct profile_spec spec;
		const char *why;

		if (!p->configured)
			continue;
		po = sync_find_profile(s, p->name);
		if (po == NULL || strcmp(po->app_id, p->app_id) != 0) {
			log_notice("profile %s: no longer configured (or its app-id changed); its open "
			    "session stays until instantd restarts", p->name);
			continue;
		}
		if (profile_resolve(s, p->name, false, NULL, NULL, NULL, NULL, &spec, &why) < 0) {
			log_warn("profile %s: cannot apply the new configuration: out of memory", p->name);
			profile_spec_clear(&spec);
			continue;
		}
		if (str_differs(spec.server, p->server))
			log_notice("profile %s: 'server' changed; programs that init from now on use %s, "
			    "the open session stays on %s until instantd restarts", p->name, spec.server,
			    p->server);
		if (str_differs(spec.ca_file, p->ca_file))
			log_warn("profile %s: 'ca-file' changed; it takes effect only when instantd restarts",
			    p->name);
		if (str_differs(spec.api_uri, p->api_uri)) {
			char *u = strdup(spec.api_uri);

			if (u) {
				free(p->api_uri);
				p->api_uri = u;
				log_notice("profile %s: 'api-uri' is now %s", p->name, u);
			}
		}
		/* Only a token-file whose token changed: a sign-in since start-up stays. */
		opo = sync_find_profile(old, p->name);
		if (spec.token && (opo == NULL || str_differs(spec.token, opo->token)) &&
		    str_differs(spec.token, p->token)) {
			if (profile_set_token(p, spec.token) < 0)
				log_warn("profile %s: cannot apply the new token-file", p->name);
			else
				log_notice("profile %s: signed in with the new token-file's token", p->name);
		}
		profile_spec_clear(&spec);
	}
}

/* New options (a reload) apply to profiles opened from now on and to the
 * configured profiles programs name; for open ones see sync_reapply_profiles. */
int
sync_set_options(struct sync *s, const struct sync_options *opt)
{
	struct sync n = { .opt = *opt }, old = { 0 };

	n.opt.state_dir = xstrdup(opt->state_dir);
	n.opt.default_server = xstrdup(opt->default_server);
	n.opt.default_api_uri = xstrdup(opt->default_api_uri);
	n.opt.ca_file = xstrdup(opt->ca_file);
	n.profiles = calloc(opt->n_profiles ? opt->n_profiles : 1, sizeof(*n.profiles));
	n.opt.n_profiles = n.profiles ? opt->n_profiles : 0;
	for (size_t i = 0; n.profiles && i < opt->n_profiles; i++) {
		const struct sync_profile_option *po = &opt->profiles[i];

		n.profiles[i] = (struct sync_profile_option){
			.name = xstrdup(po->name), .app_id = xstrdup(po->app_id),
			.server = xstrdup(po->server), .api_uri = xstrdup(po->api_uri),
			.token = xstrdup(po->token), .ca_file = xstrdup(po->ca_file),
		};
	}
	if (!n.opt.state_dir || !n.opt.default_server || !n.opt.default_api_uri || !n.profiles) {
		sync_options_clear(&n);
		return -ENOMEM;
	}
	n.opt.profiles = n.profiles;
	old.opt = s->opt;
	old.profiles = s->profiles;
	s->opt = n.opt;
	s->profiles = n.profiles;
	sync_reapply_profiles(s, &old);
	sync_options_clear(&old);
	return 0;
}

int
sync_new(struct lws_context *ctx, struct lws_vhost *vh, const struct sync_options *opt,
    struct sync **ret)
{
	struct sync *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->ctx = ctx;
	s->vh = vh;
	TAILQ_INIT(&s->profiles_list);
	TAILQ_INIT(&s->clients);
	LIST_INIT(&s->auth_calls);
	if (sync_set_options(s, opt) < 0) {
		sync_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

/* Profiles with queued writes replay without waiting for a program. */
static int
sync_open_queued(struct sync *s)
{
	DIR *d = opendir(s->opt.state_dir);
	struct dirent *de;

	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *server = NULL, *app = NULL, *name = NULL, *token = NULL;
		const struct sync_profile_option *cpo;
		struct profile_spec spec;
		const char *why;
		_cleanup_free_ char *err = NULL;
		struct db *db = NULL;
		size_t counts[4] = { 0 };
		struct profile *p;
		size_t len = strlen(de->d_name);
		int r;

		if (len < 8 || strcmp(de->d_name + len - 7, ".sqlite") != 0)
			continue;
		if (asprintf(&path, "%s/%s", s->opt.state_dir, de->d_name) < 0)
			break;
		/* The database names a server to send our token to: only ours counts. */
		if ((r = fs_check_file(path, false, &err)) < 0) {
			log_warn("skipping a database: %s", err ? err : strerror(-r));
			continue;
		}
		if (db_open(path, &db) < 0)
			continue;
		note_recovery(db, de->d_name);
		r = db_outbox_counts(db, counts);
		if (r == 0 && counts[DB_MUT_PENDING] + counts[DB_MUT_SENT] > 0) {
			(void)db_meta_get(db, "server", &server);
			(void)db_meta_get(db, "app-id", &app);
			(void)db_meta_get(db, "name", &name);
		}
		db_close(db);
		if (server == NULL || app == NULL)
			continue;
		if (profile_read_token(path, &token) < 0)
			continue;
		log_info("%s: %zu queued writes to replay", name ? name : app,
		    counts[DB_MUT_PENDING] + counts[DB_MUT_SENT]);
		/* The same resolver as init: a database of a configured profile gets
		 * that profile's api-uri, ca-file and token-file. */
		if (name && (cpo = sync_find_profile(s, name)) && strcmp(cpo->app_id, app) == 0 &&
		    strcmp(profile_option_server(s, cpo), server) == 0)
			r = profile_resolve(s, name, false, app, server, NULL, NULL, &spec, &why);
		else
			r = profile_resolve(s, NULL, false, app, server, NULL, NULL, &spec, &why);
		/* A token's own profile stays that token's (never the app's shared one). */
		if (r == 0 && profile_name_is_token(name))
			spec.name = name;
		if (r == 0 && spec.token == NULL)
			spec.token = token;
		if (r == 0)
			(void)profile_open(s, &spec, path, &p);
		profile_spec_clear(&spec);
	}
	closedir(d);
	return 0;
}

int
sync_start(struct sync *s)
{
	return sync_open_queued(s);
}

void
sync_free(struct sync *s)
{
	struct profile *p;
	struct client *c;

	if (s == NULL)
		return;
	while (!LIST_EMPTY(&s->auth_calls)) {
		struct auth_call *a = LIST_FIRST(&s->auth_calls);

		auth_cancel(a->req);
		auth_call_free(a);
	}
	while ((c = TAILQ_FIRST(&s->clients))) {
		struct listener *l;

		/* A listener is on its query's list too: unlink it before c goes. */
		while ((l = LIST_FIRST(&c->listeners)))
			listener_free(l);
		TAILQ_REMOVE(&s->clients, c, entry);
		ipc_conn_set_data(c->conn, NULL);
		rooms_free(c->rooms);
		free(c->name);
		free(c);
	}
	while ((p = TAILQ_FIRST(&s->profiles_list))) {
		TAILQ_REMOVE(&s->profiles_list, p, entry);
		profile_free(p);
	}
	sync_options_clear(s);
	free(s);
}

static void
shutdown_one(void *ud)
{
	struct sync *s = ud;

	if (s->shutdown_waiting && --s->shutdown_waiting == 0 && s->shutdown_done)
		s->shutdown_done(s->shutdown_ud);
}

void
sync_shutdown(struct sync *s, void (*done)(void *ud), void *ud)
{
	struct profile *p;

	s->shutting_down = true;
	s->shutdown_done = done;
	s->shutdown_ud = ud;
	s->shutdown_waiting = 1;
	TAILQ_FOREACH(p, &s->profiles_list, entry) {
		/* Commit whatever is waiting for the group commit before going. */
		if (p->flush_armed) {
			lws_sul_cancel(&p->flush);
			profile_flush_cb(&p->flush);
		}
		s->shutdown_waiting++;
		upstream_close(p->up, shutdown_one, s);
	}
	shutdown_one(s);
}
