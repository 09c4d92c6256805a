/* Calls to the server's HTTP auth endpoints (magic codes, guest sign-in, token
 * checks, sign-out), made on a worker thread so the loop never waits on DNS,
 * TCP or TLS. The answer comes back on the loop through a pipe. */
#ifndef INSTANTD_AUTH_H
#define INSTANTD_AUTH_H

#include <cjson/cJSON.h>
#include <libwebsockets.h>

/* The raw-file protocol entry the daemon puts in its vhost's protocols array. */
extern const struct lws_protocols auth_protocol;

/* Called on the loop, within about 15 s of auth_post (plus the time DNS takes). status:
 * the HTTP status (200 ...) or a negative errno when no whole answer came: -ETIMEDOUT (no
 * complete answer in time: a silent or trickling server), -ECONNRESET (closed before the
 * answer was complete), -ECONNREFUSED, -EHOSTUNREACH (DNS), -EBADMSG (not HTTP), -EMSGSIZE,
 * -EKEYREJECTED (certificate refused), -EPROTO (TLS failed), -EAGAIN (too many calls in
 * flight); auth_strerror() words them. body: the parsed JSON reply or NULL (lent for the
 * call). */
typedef void (*auth_done_fn)(void *ud, int status, const cJSON *body);

/* One request in flight, owned by this module: valid for the caller until done() returns
 * or until auth_cancel; freed once both its thread and its pipe's wsi are done with it. */
struct auth_request;

/* POST body (JSON, copied) to api_uri + path (http:// or https://; https
 * verifies the chain with the system store plus ca_file, and the host name).
 * Each call starts a short-lived detached thread. 0, -EINVAL (bad URL), -ENOMEM, -EAGAIN
 * (too many calls in flight). On failure done() is not called. */
int auth_post(struct lws_vhost *vh, const char *api_uri, const char *path, const cJSON *body,
    const char *ca_file, auth_done_fn done, void *ud, struct auth_request **ret);
/* done() will not be called; the request is freed when its thread finishes. */
void auth_cancel(struct auth_request *r);
/* A sentence for a negative status of auth_done_fn (static storage). */
const char *auth_strerror(int status);

#endif
