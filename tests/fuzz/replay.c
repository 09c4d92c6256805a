/* replay.c: a standard main for a fuzz harness, for the normal build: feeds
 * it every file of fuzz/corpus/<target> and fuzz/crashes/<target> (the kept
 * inputs of fixed crashes), or the files and directories named on the command
 * line. A crash or a broken invariant aborts, and the test fails with the
 * name of the input printed last. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif

static unsigned replay_count;

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	/* libFuzzer hands over an exact-size heap copy; so do we, so ASan
	 * catches reads past the end. */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (exact == NULL) {
			free(buf);
			return -ENOMEM;
		}
		if (len)
			memcpy(exact, buf, len);
		free(buf);
		(void)LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	replay_count++;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order; a missing dir is empty. */
static int
replay_path(const char *path, bool must_exist)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int r = 0;

	if (stat(path, &st) < 0) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char **nn;

		if (de->d_name[0] == '.')
			continue;
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (nn == NULL) {
			r = -ENOMEM;
			break;
		}
		names = nn;
		if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (n > 1)	/* qsort(NULL, 0, ...) is undefined, and UBSan says so */
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			r = replay_file(names[i]);
		free(names[i]);
	}
	free(names);
	return r;
}

int
main(int argc, char **argv)
{
	const char *src = getenv("srcdir");
	char *dir;
	int r = 0;

	if (LLVMFuzzerInitialize(&argc, &argv) != 0)
		return 1;
	if (argc > 1) {
		for (int i = 1; i < argc && r == 0; i++)
			r = replay_path(argv[i], true);
	} else {
		if (asprintf(&dir, "%s/fuzz/corpus/%s", src ? src : FUZZ_SRCDIR, fuzz_target_name) < 0)
			return 1;
		r = replay_path(dir, true);
		free(dir);
		if (r == 0) {
			if (asprintf(&dir, "%s/fuzz/crashes/%s", src ? src : FUZZ_SRCDIR,
			    fuzz_target_name) < 0)
				return 1;
			r = replay_path(dir, false);
			free(dir);
		}
	}
	printf("1..1\n%s %u - %s: every saved input replayed without a crash\n",
	    r == 0 && replay_count > 0 ? "ok" : "not ok", 1u, fuzz_target_name);
	printf("# %u inputs\n", replay_count);
	return r == 0 && replay_count > 0 ? 0 : 1;
}
