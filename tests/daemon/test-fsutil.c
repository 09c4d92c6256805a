/* Unit tests of daemon/fsutil.c: which directories and files instantd trusts,
 * and the atomic replacement of token files (temporary file, rename). */
#include "daemon/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/tap.h"

static char base[] = "/tmp/instantd-fsutil-XXXXXX";

static const char *
at(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, name);
	return buf[i];
}

static void
put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fchmod(fd, mode) < 0) {
		perror(path);
		exit(99);
	}
	close(fd);
}

/* The whole file, or "" when it cannot be read (static buffer). */
static const char *
slurp_fd(int fd)
{
	static char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static const char *
slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const char *s = fd >= 0 ? slurp_fd(fd) : "";

	if (fd >= 0)
		close(fd);
	return s;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void
test_dirs(void)
{
	char *err = NULL;

	CHECK(mkdir(at("private"), 0700) == 0);
	CHECK_INT(fs_check_dir(at("private"), "state directory", &err), 0);
	CHECK(err == NULL);

	/* Readable by others is fine ($HOME is often 0755); writable is not. */
	CHECK(mkdir(at("home"), 0755) == 0 && chmod(at("home"), 0755) == 0);
	CHECK_INT(fs_check_dir(at("home"), "runtime directory", &err), 0);
	CHECK(mkdir(at("shared"), 0700) == 0 && chmod(at("shared"), 0770) == 0);
	CHECK_INT(fs_check_dir(at("shared"), "state directory", &err), -EPERM);
	CHECK(err && strstr(err, "state directory") && strstr(err, at("shared")) &&
	    strstr(err, "chmod 0700"));
	free(err);
	err = NULL;

	/* mkdir -p makes what is missing 0700 and leaves the rest alone. */
	CHECK_INT(fs_make_dir(at("home/a/b"), "state directory", &err), 0);
	{
		struct stat st;

		CHECK(stat(at("home"), &st) == 0 && (st.st_mode & 07777) == 0755);
		CHECK(stat(at("home/a"), &st) == 0 && (st.st_mode & 07777) == 0700);
		CHECK(stat(at("home/a/b"), &st) == 0 && (st.st_mode & 07777) == 0700);
	}
	CHECK_INT(fs_make_dir(at("shared/x"), "state directory", &err), 0);
	CHECK_INT(fs_make_dir(at("shared"), "state directory", &err), -EPERM);
	free(err);
	err = NULL;

	put(at("plain"), "x", 0600);
	CHECK_INT(fs_check_dir(at("plain"), "state directory", &err), -ENOTDIR);
	free(err);
	err = NULL;

	if (geteuid() != 0) {
		fprintf(stderr, "# not root: the directory of another uid is not tested\n");
		return;
	}
	CHECK(mkdir(at("theirs"), 0700) == 0 && chown(at("theirs"), 65534, 65534) == 0);
	CHECK_INT(fs_check_dir(at("theirs"), "state directory", &err), -EPERM);
	CHECK(err && strstr(err, "owned by uid 65534") && strstr(err, "chown"));
	free(err);
}

static void
test_files(void)
{
	char *err = NULL;
	struct stat st;

	put(at("mine"), "x", 0600);
	CHECK_INT(fs_check_file(at("mine"), false, &err), 0);
	CHECK_INT(fs_check_file(at("missing"), false, &err), -ENOENT);
	free(err);
	err = NULL;

	/* Created fresh, 0600, when asked. */
	CHECK_INT(fs_check_file(at("new"), true, &err), 0);
	CHECK(lstat(at("new"), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);

	/* A link is never followed, even to a file of ours; a dangling one is
	 * never created through. */
	CHECK(symlink(at("mine"), at("link")) == 0);
	CHECK_INT(fs_check_file(at("link"), false, &err), -ELOOP);
	CHECK(err && strstr(err, "symbolic link"));
	CHECK(symlink(at("nowhere"), at("dangling")) == 0);
	CHECK_INT(fs_check_file(at("dangling"), true, &err), -ELOOP);
	CHECK(!exists(at("nowhere")));

	put(at("writable"), "x", 0666);
	CHECK_INT(fs_check_file(at("writable"), false, &err), -EPERM);
	CHECK(err && strstr(err, "chmod 0600"));
	CHECK(mkfifo(at("fifo"), 0600) == 0);
	CHECK_INT(fs_check_file(at("fifo"), false, &err), -EINVAL);
	free(err);
	err = NULL;

	if (geteuid() != 0) {
		fprintf(stderr, "# not root: the file of another uid is not tested\n");
		return;
	}
	put(at("theirs.sqlite"), "x", 0644);
	CHECK(chown(at("theirs.sqlite"), 65534, 65534) == 0);
	CHECK_INT(fs_check_file(at("theirs.sqlite"), false, &err), -EPERM);
	CHECK(err && strstr(err, "owned by uid 65534"));
	free(err);
}

static void
test_atomic(void)
{
	char *err = NULL;
	struct stat before, after;
	int old_fd;

	/* New file: 0600, exactly the data, no temporary left. */
	CHECK_INT(fs_write_atomic(at("token"), "first-token", 11, &err), 0);
	CHECK_STR(slurp(at("token")), "first-token");
	CHECK(lstat(at("token"), &before) == 0 && (before.st_mode & 0777) == 0600);
	CHECK(!exists(at("token.tmp")));

	/* Replacing renames a new inode over the name: a reader holding the
	 * old file still sees the whole old token, never a truncated one, and
	 * the name never points at an empty or partial file. */
	old_fd = open(at("token"), O_RDONLY | O_CLOEXEC);
	CHECK(old_fd >= 0);
	CHECK_INT(fs_write_atomic(at("token"), "second-token-longer", 19, &err), 0);
	CHECK(lstat(at("token"), &after) == 0);
	CHECK(after.st_ino != before.st_ino);
	CHECK_STR(slurp_fd(old_fd), "first-token");
	CHECK_STR(slurp(at("token")), "second-token-longer");
	close(old_fd);

	/* A temporary left by a crash (even a planted link) is replaced, not
	 * written through. */
	put(at("victim"), "do not touch", 0600);
	CHECK(symlink(at("victim"), at("token.tmp")) == 0);
	CHECK_INT(fs_write_atomic(at("token"), "third", 5, &err), 0);
	CHECK_STR(slurp(at("token")), "third");
	CHECK_STR(slurp(at("victim")), "do not touch");
	CHECK(!exists(at("token.tmp")));

	/* The target itself a link: refused, the link and its file untouched. */
	CHECK(symlink(at("victim"), at("linked.token")) == 0);
	CHECK_INT(fs_write_atomic(at("linked.token"), "stolen", 6, &err), -ELOOP);
	CHECK(err && strstr(err, "symbolic link"));
	CHECK_STR(slurp(at("victim")), "do not touch");
	CHECK(lstat(at("linked.token"), &after) == 0 && S_ISLNK(after.st_mode));
	CHECK(symlink(at("planted-target"), at("dangling.token")) == 0);
	CHECK_INT(fs_write_atomic(at("dangling.token"), "stolen", 6, &err), -ELOOP);
	CHECK(!exists(at("planted-target")));
	free(err);
	err = NULL;

	/* A directory that is not there: an error, nothing written. */
	CHECK(fs_write_atomic(at("no-such-dir/token"), "x", 1, &err) < 0);
	CHECK(err && strstr(err, "no-such-dir"));
	free(err);
}

int
main(void)
{
	umask(022);
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_dirs();
	test_files();
	test_atomic();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", base);
	}
	return tap_done();
}
