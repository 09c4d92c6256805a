/* profile.c: profiles: the resolver from configuration to a profile, open
 * and close, the token file, status and the optimistic attrs (see profile.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/fsutil.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/ops-auth.h"
#include "daemon/profile.h"
#include "daemon/query.h"
#include "daemon/rooms.h"
#include "daemon/session.h"
#include "daemon/upstream.h"
#include "store/attrs.h"
#include "store/db.h"
#include "store/tstore.h"
#include "store/util.h"

static void
profile_status_extra(struct profile *p, cJSON *o);

cJSON *
profile_queue_json(struct profile *p)
{
	size_t n[4] = { 0 };
	struct mutation *m;
	cJSON *o = cJSON_CreateObject();

	TAILQ_FOREACH(m, &p->outbox, entry)
		n[m->m->state]++;
	cJSON_AddNumberToObject(o, "pending", (double)(n[DB_MUT_PENDING] + n[DB_MUT_SENT]));
	cJSON_AddNumberToObject(o, "sent", (double)n[DB_MUT_SENT]);
	cJSON_AddNumberToObject(o, "confirmed", (double)n[DB_MUT_CONFIRMED]);
	cJSON_AddNumberToObject(o, "failed", (double)n[DB_MUT_FAILED]);
	return o;
}

const char *
profile_state(struct profile *p)
{
	if (p->up == NULL)
		return "disconnected";
	if (p->signed_out && upstream_get_state(p->up) == UPSTREAM_AUTH_FAILED)
		return "signed-out";
	return upstream_state_name(upstream_get_state(p->up));
}

cJSON *
profile_status_json(struct profile *p)
{
	cJSON *o = cJSON_CreateObject(), *up;
	int64_t bytes = 0, nq = 0;
	struct query *q;

	cJSON_AddStringToObject(o, "profile", p->name);
	cJSON_AddStringToObject(o, "app-id", p->app_id);
	cJSON_AddStringToObject(o, "server", p->server);
	cJSON_AddStringToObject(o, "state", profile_state(p));
	cJSON_AddStringToObject(o, "app-status", p->app_status ? p->app_status : "unknown");
	if (p->session_id)
		cJSON_AddStringToObject(o, "session-id", p->session_id);
	else
		cJSON_AddNullToObject(o, "session-id");
	if (p->user)
		cJSON_AddItemToObject(o, "user", cJSON_Duplicate(p->user, 1));
	else
		cJSON_AddNullToObject(o, "user");
	if (p->last_error)
		cJSON_AddStringToObject(o, "last-error", p->last_error);
	cJSON_AddItemToObject(o, "queue", profile_queue_json(p));
	if (p->last_sync_ms)
		cJSON_AddNumberToObject(o, "last-sync", (double)p->last_sync_ms);
	else
		cJSON_AddNullToObject(o, "last-sync");
	TAILQ_FOREACH(q, &p->queries, entry)
		nq++;
	cJSON_AddNumberToObject(o, "subscriptions", (double)nq);
	cJSON_AddNumberToObject(o, "evaluations", (double)p->evaluations);
	if (db_query_bytes(p->db, &bytes) == 0)
		cJSON_AddNumberToObject(o, "cache-bytes", (double)bytes);
	if (p->recovered_from)
		cJSON_AddStringToObject(o, "recovered-from", p->recovered_from);
	up = p->up ? upstream_status_json(p->up) : NULL;
	if (up)
		cJSON_AddItemToObject(o, "connection", up);
	profile_status_extra(p, o);
	return o;
}

void
profile_status_changed(struct profile *p)
{
	struct client *c;

	profile_status_extra(p, NULL);	/* notes a change of state */
	TAILQ_FOREACH(c, &p->s->clients, entry) {
		_cleanup_json_ cJSON *msg = NULL;

		/* A watcher bound to no profile follows every profile. */
		if (!c->watch_status || (c->p != p && c->p != NULL))
			continue;
		msg = reply_new("status", NULL);
		cJSON_AddItemToObject(msg, "status", profile_status_json(p));
		client_send(c, msg);
	}
}

bool
profile_online(const struct profile *p)
{
	return p->up && upstream_get_state(p->up) == UPSTREAM_AUTHENTICATED;
}

/* The daemon knows the server will not answer for now (the last attempt
 * failed, backoff, a refused token): a query never seen before is then
 * answered from the whole mirror. Not while still connecting (the answer is
 * coming), and not for an unknown app (the server did answer: nothing). */
bool
profile_partial_mode(const struct profile *p)
{
	return !profile_online(p) && p->unreachable &&
	    !(p->up && upstream_get_state(p->up) == UPSTREAM_APP_NOT_FOUND);
}

bool
profile_can_write(struct profile *p)
{
	return profile_online(p) && profile_app_writable(p);
}

/* Whether the app takes writes now (NULL: not known yet, so assume it does). */
bool
profile_app_writable(const struct profile *p)
{
	return p->app_status == NULL || strcmp(p->app_status, "active") == 0;
}

/* Equal attrs, in the same order (the engine resolves labels in that order). */
static bool
attrs_same(const struct attrs *a, const struct attrs *b)
{
	size_t n = attrs_count(a);

	if (n != attrs_count(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cJSON_Compare(attrs_at(a, i), attrs_at(b, i), true))
			return false;
	return true;
}

/* The optimistic attrs: the server's plus every unsynced local attr the
 * server does not know by id or identity. */
int
profile_rebuild_attrs(struct profile *p, bool steps_changed)
{
	_cleanup_json_ cJSON *all = NULL;
	struct attrs *a = NULL;
	struct query *q;
	const cJSON *x;
	int r;

	r = attrs_dup(p->server_attrs, &a);
	if (r < 0)
		return r;
	r = db_attrs_load(p->db, &all);
	if (r < 0) {
		attrs_free(a);
		return r;
	}
	cJSON_ArrayForEach(x, all) {
		const char *e = attr_fwd_etype(x), *l = attr_fwd_label(x);

		if (!attr_unsynced(x) || attrs_by_id(a, attr_id(x)))
			continue;
		if (e && l && (attrs_by_fwd(p->server_attrs, e, l) || attrs_by_rev(p->server_attrs, e, l)))
			continue;
		r = attrs_add(a, x);
		if (r < 0) {
			attrs_free(a);
			return r;
		}
	}
	if (!steps_changed && p->attrs && attrs_same(a, p->attrs)) {
		attrs_free(a);
		return 0;
	}
	attrs_free(p->attrs);
	p->attrs = a;
	TAILQ_FOREACH(q, &p->queries, entry)
		query_drop_base(q);
	return 0;
}

/* The error a request that needs the server gets while it cannot have it:
 * the type (a PROTOCOL.md error type) and a message naming the cause. */
const char *
profile_unreachable_error(const struct profile *p, const char **ret_msg)
{
	enum upstream_state st = p->up ? upstream_get_state(p->up) : UPSTREAM_STOPPED;

	if (st == UPSTREAM_APP_NOT_FOUND) {
		*ret_msg = "the server does not know this app id (check the app id and the server)";
		return "app-not-found";
	}
	if (st == UPSTREAM_AUTH_FAILED) {
		*ret_msg = "the server refused this profile's refresh token (sign in again)";
		return "auth-failed";
	}
	*ret_msg = "the server is not reachable now (the daemon's last connection attempt failed)";
	return "offline";
}

static void
hex_digest(const char *in, char out[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_Digest(in, strlen(in), md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
profile_write_token(struct profile *p)
{
	_cleanup_free_ char *path = NULL, *err = NULL;
	int r;

	if (asprintf(&path, "%s.token", p->db_path) < 0)
		return -ENOMEM;
	if (p->token == NULL) {
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	/* Atomic: a crash mid-write must not leave the profile signed out. */
	r = fs_write_atomic(path, p->token, strlen(p->token), &err);
	if (r < 0)
		log_warn("%s: %s", p->name, err ? err : strerror(-r));
	return r;
}

/* The stored token, with the same checks as a configured token file (ours
 * alone, regular, not empty). 0 and *ret NULL when there is none. */
int
profile_read_token(const char *db_path, char **ret)
{
	_cleanup_free_ char *path = NULL, *err = NULL;
	int r;

	if (asprintf(&path, "%s.token", db_path) < 0)
		return -ENOMEM;
	r = config_read_token(path, ret, &err);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		log_warn("%s", err ? err : strerror(-r));
	return r;
}

/* Sign the profile in with another token (NULL: sign out). The cache and the
 * queued writes stay: they belong to the profile, not to the token. */
int
profile_set_token(struct profile *p, const char *token)
{
	char *copy = NULL;
	int r;

	if (token && (copy = strdup(token)) == NULL)
		return -ENOMEM;
	if (p->token)
		explicit_bzero(p->token, strlen(p->token));
	free(p->token);
	p->token = copy;
	if (token)
		(void)log_add_secret(token);
	r = profile_write_token(p);
	if (r < 0)
		log_warn("%s: cannot store the token: %s", p->name, strerror(-r));
	p->signed_out = false;
	if (p->up) {
		r = upstream_set_token(p->up, token);
		if (r < 0)
			return r;
		upstream_reconnect_now(p->up);
	}
	profile_status_changed(p);
	return 0;
}

void
profile_free(struct profile *p)
{
	struct query *q;
	struct mutation *m;
	struct pending_write *w;

	if (p == NULL)
		return;
	lws_sul_cancel(&p->flush);
	lws_sul_cancel(&p->push);
	lws_sul_cancel(&p->pace);
	lws_sul_cancel(&p->persist);
	lws_sul_cancel(&p->prune);
	lws_sul_cancel(&p->settle);
	session_free(p);
	while ((q = TAILQ_FIRST(&p->queries)))
		query_free(q);
	while ((m = TAILQ_FIRST(&p->outbox))) {
		TAILQ_REMOVE(&p->outbox, m, entry);
		mutation_free(m);
	}
	while ((w = TAILQ_FIRST(&p->writes))) {
		TAILQ_REMOVE(&p->writes, w, entry);
		pending_write_free(w);
	}
	upstream_free(p->up);
	db_close(p->db);
	attrs_free(p->server_attrs);
	attrs_free(p->attrs);
	tstore_values_unref(p->values);
	cJSON_Delete(p->user);
	free(p->key);
	free(p->name);
	free(p->app_id);
	free(p->server);
	free(p->api_uri);
	free(p->ca_file);
	if (p->token)
		explicit_bzero(p->token, strlen(p->token));
	free(p->token);
	free(p->db_path);
	free(p->app_status);
	free(p->session_id);
	free(p->last_error);
	free(p->recovered_from);
	free(p);
}

/* A self-hosted server serves its HTTP API beside the sync socket:
 * wss://host[:port]/runtime/session -> https://host[:port]. */
static char *
api_uri_for(const char *server)
{
	const char *rest = strncmp(server, "wss://", 6) == 0 ? server + 6 : server + 5;
	const char *slash = strchr(rest, '/');
	char *out = NULL;

	if (asprintf(&out, "%s://%.*s", strncmp(server, "wss://", 6) == 0 ? "https" : "http",
	    (int)(slash ? (size_t)(slash - rest) : strlen(rest)), rest) < 0)
		return NULL;
	return out;
}

/* A database found corrupt at open was moved aside: say so once in the log,
 * and remember it in the new database so status keeps showing it. */
void
note_recovery(struct db *db, const char *name)
{
	const char *from = db_recovered_from(db);

	if (from == NULL)
		return;
	log_error("%s: the database was unreadable; moved aside to %s and its readable queued writes carried over",
	    name, from);
	if (db_meta_set(db, "recovered-from", from) < 0)
		log_warn("%s: cannot record the recovery", name);
}

void
profile_spec_clear(struct profile_spec *sp)
{
	free(sp->derived_api_uri);
	free(sp->token_name);
	*sp = (struct profile_spec){ 0 };
}

/* A configured profile's server: its own, else the default. */
const char *
profile_option_server(const struct sync *s, const struct sync_profile_option *po)
{
	return po->server ? po->server : s->opt.default_server;
}

/* The one resolver from configuration (plus what a program's init brings) to
 * a profile: init, start-up and reload all go through it, so a configured
 * profile gets its server, api-uri, token and ca-file whichever way it opens.
 *   pname set: exactly that configured profile (app_id and server, when
 *     given, must agree with it);
 *   else by_app_id: the first configured profile with this app id and, when
 *     server is given, that server; else an unconfigured profile;
 *   else: an unconfigured profile (a database found at start-up that no
 *     configured profile claims).
 * api_uri and token from the program win over the profile's. 0, -ENOENT (no
 * such profile), -EINVAL (a conflicting field), -ENOMEM; *ret_err is static text
 * or NULL, for the program. */
int
profile_resolve(const struct sync *s, const char *pname, bool by_app_id, const char *app_id,
    const char *server, const char *api_uri, const char *token, struct profile_spec *ret,
    const char **ret_err)
{
	const struct sync_profile_option *po = NULL;

	*ret = (struct profile_spec){ 0 };
	*ret_err = NULL;
	if (pname) {
		for (size_t i = 0; i < s->opt.n_profiles && !po; i++)
			if (strcmp(s->profiles[i].name, pname) == 0)
				po = &s->profiles[i];
		if (po == NULL)
			return *ret_err = "no profile of that name in the daemon's configuration", -ENOENT;
		if (app_id && strcmp(app_id, po->app_id) != 0)
			return *ret_err = "app-id differs from the configured profile's app-id", -EINVAL;
		if (server && strcmp(server, profile_option_server(s, po)) != 0)
			return *ret_err = "server differs from the configured profile's server", -EINVAL;
	} else if (by_app_id) {
		for (size_t i = 0; i < s->opt.n_profiles && !po; i++)
			if (strcmp(s->profiles[i].app_id, app_id) == 0 &&
			    (!server || strcmp(server, profile_option_server(s, &s->profiles[i])) == 0))
				po = &s->profiles[i];
	}
	if (po) {
		ret->name = po->name;
		ret->app_id = po->app_id;
		ret->server = profile_option_server(s, po);
		ret->api_uri = api_uri ? api_uri : po->api_uri;
		ret->token = token ? token : po->token;
		ret->ca_file = po->ca_file ? po->ca_file : s->opt.ca_file;
	} else {
		ret->app_id = app_id;
		ret->server = server ? server : s->opt.default_server;
		ret->api_uri = api_uri;
		ret->token = token;
		ret->ca_file = s->opt.ca_file;
	}
	/* Unless an API URI was configured, a server other than Instant's own
	 * serves its auth endpoints beside the sync socket. */
	if (!ret->api_uri && strcmp(s->opt.default_api_uri, CONFIG_DEFAULT_API_URI) == 0 &&
	    strcmp(ret->server, CONFIG_DEFAULT_SERVER) != 0) {
		if ((ret->derived_api_uri = api_uri_for(ret->server)) == NULL)
			return -ENOMEM;
		ret->api_uri = ret->derived_api_uri;
	}
	if (!ret->api_uri)
		ret->api_uri = s->opt.default_api_uri;
	return 0;
}

/* Two configured profiles are two profiles even when they share the server
 * and app id (say, two users); an unconfigured one is its server and app id. */
static char *
profile_key_of(const char *name, const char *server, const char *app_id)
{
	char *key = NULL;

	if (name ? asprintf(&key, "%s\n%s\nprofile %s", server, app_id, name) < 0 :
	    asprintf(&key, "%s\n%s", server, app_id) < 0)
		return NULL;
	return key;
}

static char *
profile_key(const struct profile_spec *sp)
{
	return profile_key_of(sp->name, sp->server, sp->app_id);
}

int
profile_token_name(const char *server, const char *app_id, const char *token, char **ret)
{
	_cleanup_free_ char *in = NULL;
	char digest[17];

	if (asprintf(&in, "%s\n%s\ntoken %s", server, app_id, token) < 0)
		return -ENOMEM;
	hex_digest(in, digest);
	explicit_bzero(in, strlen(in));
	if (asprintf(ret, "%s~%s", app_id, digest) < 0)
		return -ENOMEM;
	return 0;
}

bool
profile_name_is_token(const char *name)
{
	return name && strchr(name, '~') != NULL;
}

/* The open profile with this key (server + app id + name), or NULL. */
static struct profile *
profile_by_key(struct sync *s, const char *key)
{
	struct profile *p;

	TAILQ_FOREACH(p, &s->profiles_list, entry)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

/* The token the profile sp names holds now: the open profile's (a sign-in
 * may have changed it), else the stored one, else the configured one. *ret
 * is new, NULL when none. */
static int
profile_spec_token(struct sync *s, const struct profile_spec *sp, char **ret)
{
	_cleanup_free_ char *key = profile_key(sp), *path = NULL;
	struct profile *p;
	int r;

	*ret = NULL;
	if (key == NULL)
		return -ENOMEM;
	if ((p = profile_by_key(s, key))) {
		if (p->token && (*ret = strdup(p->token)) == NULL)
			return -ENOMEM;
		return 0;
	}
	r = profile_db_path(s, sp->name, sp->app_id, sp->server, &path);
	if (r < 0)
		return r;
	if (profile_read_token(path, ret) < 0)
		*ret = NULL;	/* unreadable: it logged why; the configured one, if any */
	/* sp->token may be the program's already (profile_resolve): look at the option. */
	for (size_t i = 0; *ret == NULL && sp->name && i < s->opt.n_profiles; i++)
		if (strcmp(s->profiles[i].name, sp->name) == 0 && s->profiles[i].token &&
		    (*ret = strdup(s->profiles[i].token)) == NULL)
			return -ENOMEM;
	return 0;
}

int
profile_bind_token(struct sync *s, struct profile_spec *sp, const char *token)
{
	_cleanup_free_ char *held = NULL;
	int r;

	if (token == NULL)
		return 0;
	r = profile_spec_token(s, sp, &held);
	if (r < 0)
		return r;
	if (held && strcmp(held, token) == 0) {
		explicit_bzero(held, strlen(held));
		sp->token = token;
		return 0;
	}
	if (held)
		explicit_bzero(held, strlen(held));
	free(sp->token_name);
	sp->token_name = NULL;
	r = profile_token_name(sp->server, sp->app_id, token, &sp->token_name);
	if (r < 0)
		return r;
	sp->name = sp->token_name;
	sp->token = token;
	return 0;
}

/* Open (or find) the profile sp describes. db_path: the database to use, when
 * start-up found it; NULL = the profile's own. */
int
profile_open(struct sync *s, const struct profile_spec *sp, const char *db_path, struct profile **ret)
{
	_cleanup_free_ char *key = profile_key(sp);
	struct upstream_config ucfg = { 0 };
	const char *name = sp->name, *app_id = sp->app_id, *server = sp->server;
	const char *api_uri = sp->api_uri, *token = sp->token, *ca_file = sp->ca_file;
	struct profile *p;
	int r;

	if (key == NULL)
		return -ENOMEM;
	if ((p = profile_by_key(s, key))) {
		/* A program that brings a token signs the profile in with it. */
		if (token && (p->token == NULL || strcmp(p->token, token) != 0)) {
			r = profile_set_token(p, token);
			if (r < 0)
				return r;
		}
		*ret = p;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->s = s;
	TAILQ_INIT(&p->queries);
	TAILQ_INIT(&p->outbox);
	LIST_INIT(&p->settling);
	TAILQ_INIT(&p->writes);
	p->key = TAKE_PTR(key);
	p->app_id = strdup(app_id);
	p->name = strdup(name ? name : app_id);
	p->server = strdup(server);
	p->api_uri = xstrdup(api_uri);
	p->ca_file = xstrdup(ca_file);
	p->token = xstrdup(token);
	p->configured = sp->name != NULL && !profile_name_is_token(sp->name);
	p->server_attrs = attrs_new();
	p->attrs = attrs_new();
	if (!p->app_id || !p->name || !p->server || !p->server_attrs || !p->attrs ||
	    (db_path ? (p->db_path = strdup(db_path)) == NULL :
	    profile_db_path(s, sp->name, app_id, server, &p->db_path) < 0)) {
		profile_free(p);
		return -ENOMEM;
	}
	{
		/* Made by us (never through a planted link) or already ours. */
		_cleanup_free_ char *err = NULL;

		r = fs_check_file(p->db_path, true, &err);
		if (r < 0) {
			log_error("%s: %s", p->name, err ? err : strerror(-r));
			profile_free(p);
			return r;
		}
	}
	r = db_open(p->db_path, &p->db);
	if (r < 0) {
		log_error("%s: cannot open %s: %s", p->name, p->db_path, strerror(-r));
		profile_free(p);
		return r;
	}
	note_recovery(p->db, p->name);
	if (s->opt.max_database_bytes > 0 && (r = db_set_size_limit(p->db, s->opt.max_database_bytes)) < 0)
		log_warn("%s: cannot limit the database size: %s", p->name, strerror(-r));
	(void)db_meta_get(p->db, "recovered-from", &p->recovered_from);
	if (p->token == NULL)
		(void)profile_read_token(p->db_path, &p->token);	/* it logs why not */
	if ((r = db_meta_set(p->db, "server", p->server)) < 0 ||
	    (r = db_meta_set(p->db, "app-id", p->app_id)) < 0 ||
	    (r = db_meta_set(p->db, "name", p->name)) < 0 ||
	    (p->token && (r = profile_write_token(p)) < 0) ||
	    (r = profile_rebuild_attrs(p, true)) < 0 ||
	    (r = profile_load_outbox(p)) < 0) {
		log_error("%s: cannot prepare the profile: %s", p->name, strerror(-r));
		profile_free(p);
		return r;
	}
	{
		/* The server attrs mirrored last time, so offline writes reuse them. */
		_cleanup_json_ cJSON *all = NULL;
		const cJSON *x;

		if (db_attrs_load(p->db, &all) == 0)
			cJSON_ArrayForEach(x, all)
				if (!attr_unsynced(x))
					(void)attrs_add(p->server_attrs, x);
		(void)profile_rebuild_attrs(p, true);
	}
	ucfg.url = p->server;
	ucfg.app_id = p->app_id;
	ucfg.refresh_token = p->token;
	ucfg.ca_file = p->ca_file;
	ucfg.backoff_base_ms = s->opt.backoff_base_ms;
	ucfg.backoff_cap_ms = s->opt.backoff_cap_ms;
	ucfg.ping_interval_s = s->opt.ping_interval_s;
	ucfg.idle_timeout_s = s->opt.idle_timeout_s;
	ucfg.connect_timeout_s = s->opt.connect_timeout_s;
	if (p->token)
		(void)log_add_secret(p->token);
	r = upstream_new(s->ctx, s->vh, &ucfg, &profile_upstream_cb, p, &p->up);
	if (r < 0) {
		log_error("%s: bad server URL %s: %s", p->name, p->server, strerror(-r));
		profile_free(p);
		return r;
	}
	TAILQ_INSERT_TAIL(&s->profiles_list, p, entry);
	r = upstream_start(p->up);
	if (r < 0) {
		log_warn("%s: cannot start connecting: %s", p->name, strerror(-r));
		p->unreachable = true;	/* nothing will answer: do not make queries wait */
	}
	upstream_transact_watch(p->up, s->opt.transact_timeout_s);
	log_info("%s: profile open (%s, app %s)", p->name, p->server, p->app_id);
	*ret = p;
	return 0;
}

/* With o: add what status shows beyond the session (since when the state
 * holds, replay progress). Without: only note a change of state. */
static void
profile_status_extra(struct profile *p, cJSON *o)
{
	const char *st = profile_state(p);

	if (p->state_shown == NULL || strcmp(p->state_shown, st) != 0) {
		p->state_shown = st;
		p->state_since_ms = now_ms();
	}
	if (o == NULL)
		return;
	cJSON_AddNumberToObject(o, "state-since", (double)p->state_since_ms);
	if (p->replay_total) {
		cJSON *r = cJSON_AddObjectToObject(o, "replay");

		cJSON_AddNumberToObject(r, "done", (double)p->replay_done);
		cJSON_AddNumberToObject(r, "total", (double)p->replay_total);
	}
}

/* The database of a profile (see profile_key); the same name whoever opens it.
 * name: the configured profile's name, NULL for an unconfigured one. */
int
profile_db_path(struct sync *s, const char *name, const char *app_id, const char *server,
    char **ret)
{
	_cleanup_free_ char *key = profile_key_of(name, server, app_id);
	char digest[17];

	if (key == NULL)
		return -ENOMEM;
	hex_digest(key, digest);
	if (asprintf(ret, "%s/%s-%s.sqlite", s->opt.state_dir, app_id, digest) < 0)
		return -ENOMEM;
	return 0;
}

/* Close an open profile for good: its programs are disconnected (they would
 * otherwise write into a database that is gone), its sign-in calls end. */
void
profile_close(struct profile *p)
{
	struct sync *s = p->s;
	struct auth_call *a, *an;
	struct client *c;

	TAILQ_FOREACH(c, &s->clients, entry) {
		struct listener *l;

		if (c->p != p)
			continue;
		while ((l = LIST_FIRST(&c->listeners)))
			listener_free(l);
		rooms_free(c->rooms);
		c->rooms = NULL;
		c->p = NULL;
		ipc_conn_close(c->conn);
	}
	for (a = LIST_FIRST(&s->auth_calls); a; a = an) {
		an = LIST_NEXT(a, entry);
		if (a->p != p)
			continue;
		auth_cancel(a->req);
		auth_call_free(a);
	}
	TAILQ_REMOVE(&s->profiles_list, p, entry);
	profile_free(p);
}
