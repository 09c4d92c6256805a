/* fsutil.h: one place for "a file or directory the user owns": the checks
 * instantd makes before it trusts a path, and the atomic replacement of small
 * secret files (refresh tokens).
 *
 * The rules (see instantd(8), SECURITY): a directory instantd keeps state in,
 * listens in or reads its configuration from must be owned by the effective
 * uid and not writable by group or others; a file it trusts must be a regular
 * file owned by the effective uid, reached without following a symbolic link
 * in the last component, and not writable by group or others. Every error
 * comes back as a negative errno and, when ret_err is not NULL, a malloc'd
 * message naming the path and the fix (the caller frees it). Never logs. */
#ifndef INSTANTD_DAEMON_FSUTIL_H
#define INSTANTD_DAEMON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* `what` names the directory in messages ("state directory", ...).
 * -ENOENT, -ENOTDIR, -EPERM (another owner, or writable by group/others). */
int fs_check_dir(const char *path, const char *what, char **ret_err);

/* mkdir -p with mode 0700 for every directory it creates (existing ones are
 * left as they are: their mode is never changed), then fs_check_dir(path). */
int fs_make_dir(const char *path, const char *what, char **ret_err);

/* path must be a regular file we own that group and others cannot write,
 * and not a symbolic link. With create, a missing file is made empty with
 * mode 0600 by O_CREAT|O_EXCL|O_NOFOLLOW (so never through a dangling link).
 * -ENOENT (missing, !create), -ELOOP (a symbolic link), -EPERM, -EINVAL
 * (not a regular file), -errno. */
int fs_check_file(const char *path, bool create, char **ret_err);

/* Replace path with data atomically: path.tmp is made with
 * O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, written, fsync'd and renamed
 * over path, then the directory is fsync'd; a crash leaves either the old
 * file or the new one, never an empty or partial one. A path that is a
 * symbolic link or not ours is refused (-ELOOP, -EPERM) and left alone. */
int fs_write_atomic(const char *path, const void *data, size_t len, char **ret_err);

#endif
