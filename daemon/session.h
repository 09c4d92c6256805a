/* session.h: the upstream session's callbacks for a profile (userdata =
 * struct profile *): state changes, server messages routed by op, log lines.
 * profile_open passes them to upstream_new; nothing else calls them. */
#ifndef INSTANTD_SESSION_H
#define INSTANTD_SESSION_H

#include "daemon/core.h"
#include "daemon/upstream.h"

extern const struct upstream_callbacks profile_upstream_cb;

/* Drop what the session still holds for p (the computations of a refresh
 * not applied yet); profile_free calls it. */
void session_free(struct profile *p);

#endif
