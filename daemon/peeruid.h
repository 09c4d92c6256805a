/* peeruid.h: who is at the other end of a loopback TCP connection (the
 * SO_PEERCRED of TCP, which Linux answers through NETLINK_SOCK_DIAG). */
#ifndef INSTANTD_PEERUID_H
#define INSTANTD_PEERUID_H

#include <sys/types.h>

/* The uid owning the peer's socket of the connected TCP socket fd, when the
 * peer is on this host. 0 or negative errno (-ENOENT: no such local socket,
 * e.g. the peer is on another host). */
int peeruid_tcp(int fd, uid_t *ret_uid);

#endif
