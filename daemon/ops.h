/* ops.h: the local protocol's ops as the sync core answers them. */
#ifndef INSTANTD_OPS_H
#define INSTANTD_OPS_H

#include "daemon/core.h"

/* Answer one request of c (msg borrowed, already checked by
 * ipc_protocol_check): "not-initialized" for an op that needs init before
 * it ran, else the op's handler. */
void ops_dispatch(struct client *c, enum ipc_op op, const cJSON *msg, const char *ceid);

#endif
