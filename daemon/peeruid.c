/* peeruid.c: the uid of the process at the other end of a loopback TCP
 * connection, asked of the kernel through NETLINK_SOCK_DIAG (inet_diag). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "daemon/peeruid.h"

/* The reply's first message, with room for the attributes we ignore. */
#define PEERUID_BUF 8192

int
peeruid_tcp(int fd, uid_t *ret_uid)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg;
	struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
	union {
		char buf[PEERUID_BUF];
		struct nlmsghdr align;
	} reply;
	struct nlmsghdr *h;
	ssize_t n;
	int nl, r;

	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return -errno;
	if (local.ss_family != peer.ss_family ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6))
		return -EAFNOSUPPORT;

	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;	/* one socket by its 4-tuple, not a dump */
	msg.req.sdiag_family = (unsigned char)local.ss_family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = ~0u;
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* The peer's socket: its source is the peer's address, its destination ours. */
	if (local.ss_family == AF_INET) {
		const struct sockaddr_in *l = (const struct sockaddr_in *)&local;
		const struct sockaddr_in *p = (const struct sockaddr_in *)&peer;

		msg.req.id.idiag_sport = p->sin_port;
		msg.req.id.idiag_dport = l->sin_port;
		memcpy(msg.req.id.idiag_src, &p->sin_addr, sizeof(p->sin_addr));
		memcpy(msg.req.id.idiag_dst, &l->sin_addr, sizeof(l->sin_addr));
	} else {
		const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)&local;
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)&peer;

		msg.req.id.idiag_sport = p->sin6_port;
		msg.req.id.idiag_dport = l->sin6_port;
		memcpy(msg.req.id.idiag_src, &p->sin6_addr, sizeof(p->sin6_addr));
		memcpy(msg.req.id.idiag_dst, &l->sin6_addr, sizeof(l->sin6_addr));
	}

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0) {
		r = -errno;
		goto out;
	}
	do
		n = recv(nl, reply.buf, sizeof(reply.buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	r = -ENOENT;
	for (h = &reply.align; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			r = e->error < 0 ? e->error : -EPROTO;
			break;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			const struct inet_diag_msg *d = NLMSG_DATA(h);

			*ret_uid = (uid_t)d->idiag_uid;
			r = 0;
			break;
		}
		if (h->nlmsg_type == NLMSG_DONE)
			break;
	}
out:
	close(nl);
	return r;
}
