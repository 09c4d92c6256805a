/* The floor for `make bench` row a-small: a Unix-socket server that answers every
 * request line with the same bytes the daemon sent for it, and does nothing else.
 * Usage: floor-echo SOCKET-PATH REPLY-FILE   (the reply file holds one line). */
#define _GNU_SOURCE	/* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The whole reply, heap-owned by main for the process's life. */
static char *reply;
static size_t reply_len;

static int
read_reply(const char *path)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return -EINVAL;
	}
	reply = malloc((size_t)st.st_size + 1);
	if (!reply) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, reply, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size)
		return -EIO;
	reply_len = (size_t)n;
	if (reply[reply_len - 1] != '\n')
		reply[reply_len++] = '\n';
	return 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One program at a time, as in the benchmark: a line in, the reply out. */
static void
serve(int fd)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n' && write_all(fd, reply, reply_len) < 0)
				return;
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, r;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: floor-echo SOCKET-PATH REPLY-FILE\n");
		return 2;
	}
	r = read_reply(argv[2]);
	if (r < 0) {
		fprintf(stderr, "floor-echo: %s: %s\n", argv[2], strerror(-r));
		return 1;
	}
	strcpy(sa.sun_path, argv[1]);
	(void)unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0) {
		fprintf(stderr, "floor-echo: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "floor-echo: accept: %s\n", strerror(errno));
			return 1;
		}
		serve(fd);
		close(fd);
	}
}
