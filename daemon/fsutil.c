/* fsutil.c: ownership and mode checks for the directories and files instantd
 * trusts, and the atomic replacement of token files (see fsutil.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/fsutil.h"
#include "store/util.h"

static int fs_errorf(char **ret_err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns r; the message is best effort (NULL when out of memory). */
static int
fs_errorf(char **ret_err, int r, const char *fmt, ...)
{
	va_list ap;

	if (ret_err == NULL)
		return r;
	free(*ret_err);
	*ret_err = NULL;
	va_start(ap, fmt);
	if (vasprintf(ret_err, fmt, ap) < 0)
		*ret_err = NULL;
	va_end(ap);
	return r;
}

int
fs_check_dir(const char *path, const char *what, char **ret_err)
{
	struct stat st;
	uid_t me = geteuid();

	if (stat(path, &st) < 0)
		return fs_errorf(ret_err, -errno, "cannot use the %s %s: %s", what, path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fs_errorf(ret_err, -ENOTDIR, "the %s %s is not a directory", what, path);
	if (st.st_uid != me)
		return fs_errorf(ret_err, -EPERM, "the %s %s is owned by uid %u, not by you (uid %u): "
		    "instantd trusts only directories of your own (fix: chown %u %s and chmod 0700 %s, "
		    "or choose another directory)", what, path, (unsigned)st.st_uid, (unsigned)me,
		    (unsigned)me, path, path);
	if ((st.st_mode & 022) != 0)
		return fs_errorf(ret_err, -EPERM, "the %s %s has mode %04o: others could plant files "
		    "in it (fix: chmod 0700 %s)", what, path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

int
fs_make_dir(const char *path, const char *what, char **ret_err)
{
	_cleanup_free_ char *copy = strdup(path);

	if (copy == NULL)
		return fs_errorf(ret_err, -ENOMEM, "out of memory");
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			return fs_errorf(ret_err, -errno, "cannot create %s for the %s %s: %s",
			    copy, what, path, strerror(errno));
		*p = '/';
	}
	if (mkdir(copy, 0700) < 0 && errno != EEXIST)
		return fs_errorf(ret_err, -errno, "cannot create the %s %s: %s", what, path, strerror(errno));
	return fs_check_dir(path, what, ret_err);
}

int
fs_check_file(const char *path, bool create, char **ret_err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	uid_t me = geteuid();

	/* O_NONBLOCK: a planted FIFO must not hang us before fstat tells. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT && create)
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 && errno == ELOOP)
		return fs_errorf(ret_err, -ELOOP, "%s is a symbolic link: instantd does not follow "
		    "links to the files it trusts (fix: replace the link with the file itself)", path);
	if (fd < 0)
		return fs_errorf(ret_err, -errno, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return fs_errorf(ret_err, -errno, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fs_errorf(ret_err, -EINVAL, "%s is not a regular file", path);
	if (st.st_uid != me)
		return fs_errorf(ret_err, -EPERM, "%s is owned by uid %u, not by you (uid %u): "
		    "instantd trusts only files of your own (fix: remove it, or chown %u %s)",
		    path, (unsigned)st.st_uid, (unsigned)me, (unsigned)me, path);
	if ((st.st_mode & 022) != 0)
		return fs_errorf(ret_err, -EPERM, "%s has mode %04o: others could change it "
		    "(fix: chmod 0600 %s)", path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

/* The directory part of path ("." for a bare name), malloc'd. */
static char *
fs_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int
fs_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fs_write_atomic(const char *path, const void *data, size_t len, char **ret_err)
{
	_cleanup_free_ char *tmp = NULL, *dir = NULL;
	_cleanup_close_ int dfd = -1;
	struct stat st;
	int fd, r;

	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode))
			return fs_errorf(ret_err, -ELOOP, "%s is a symbolic link: refusing to replace it "
			    "(fix: remove the link)", path);
		if (!S_ISREG(st.st_mode))
			return fs_errorf(ret_err, -EINVAL, "%s is not a regular file", path);
		if (st.st_uid != geteuid())
			return fs_errorf(ret_err, -EPERM, "%s is owned by uid %u, not by you (uid %u)",
			    path, (unsigned)st.st_uid, (unsigned)geteuid());
	} else if (errno != ENOENT) {
		return fs_errorf(ret_err, -errno, "cannot stat %s: %s", path, strerror(errno));
	}
	if (asprintf(&tmp, "%s.tmp", path) < 0 || (dir = fs_dirname(path)) == NULL)
		return fs_errorf(ret_err, -ENOMEM, "out of memory");

	/* A temporary file left by a crash is ours (the directory is private):
	 * it goes, and the new one is made fresh, never through a link. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return fs_errorf(ret_err, -errno, "cannot remove %s: %s", tmp, strerror(errno));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return fs_errorf(ret_err, -errno, "cannot create %s: %s", tmp, strerror(errno));
	r = fs_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return fs_errorf(ret_err, r, "cannot write %s: %s", path, strerror(-r));
	}
	/* The rename is durable only once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		return fs_errorf(ret_err, -errno, "cannot sync the directory %s: %s", dir, strerror(errno));
	return 0;
}
