/* Crash test of store/db: a child appends to the outbox (and writes cache
 * rows, changes states, removes entries) until it is killed with SIGKILL at a
 * random moment; every write it had acknowledged must be there, intact, and
 * the database must open cleanly. Repeated many times on one database. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sqlite3.h>

#include "store/db.h"
#include "store/util.h"
#include "tap.h"

struct expect {
	int64_t seq;
	char id[40];
	bool removed;		/* the child is about to remove it (or did) */
};

static struct expect *exp_list;
static size_t exp_n, exp_cap;

/* The content of an entry follows from its id, so the checker can tell an
 * intact entry from a damaged one. */
static struct db_mutation *
crash_mut(const char *id)
{
	struct db_mutation *m = calloc(1, sizeof(*m));
	size_t len = 20 + (strlen(id) * 37) % 300;
	char *pad = malloc(len + 1);
	cJSON *step;

	memset(pad, 'a' + (int)(len % 26), len);
	pad[len] = '\0';
	m->mutation_id = strdup(id);
	m->steps = cJSON_CreateArray();
	step = cJSON_CreateArray();
	cJSON_AddItemToArray(step, cJSON_CreateString("add-triple"));
	cJSON_AddItemToArray(step, cJSON_CreateString(id));
	cJSON_AddItemToArray(step, cJSON_CreateString("attr"));
	cJSON_AddItemToArray(step, cJSON_CreateString(pad));
	cJSON_AddItemToArray(m->steps, step);
	m->ops = cJSON_CreateObject();
	cJSON_AddStringToObject(m->ops, "id", id);
	m->origin = strdup("crash-child");
	free(pad);
	return m;
}

static bool
mut_intact(const struct db_mutation *got)
{
	struct db_mutation *want = crash_mut(got->mutation_id);
	bool ok = json_equal(got->steps, want->steps) && json_equal(got->ops, want->ops) &&
	    got->origin && strcmp(got->origin, "crash-child") == 0 &&
	    (unsigned)got->state < DB_MUT_STATE_MAX && got->created_ms > 0;

	db_mutation_free(want);
	return ok;
}

static void
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			_exit(3);
		}
		buf += w;
		len -= (size_t)w;
	}
}

/* The writer. Reports "A <seq> <id>" only after the append returned 0, and
 * "R <id>" before it removes an entry. */
static void __attribute__((noreturn))
child(const char *path, int iter, int fd)
{
	struct db *db = NULL;
	struct db_mutation **list = NULL;
	size_t n = 0, oldest = 0;
	char **known = NULL;
	size_t nknown = 0, capknown = 0;
	unsigned seed = (unsigned)iter * 2654435761u;

	if (db_open(path, &db) < 0)
		_exit(2);
	if (db_outbox_list(db, ~0u, &list, &n) < 0)
		_exit(2);
	for (size_t i = 0; i < n; i++) {
		if (nknown == capknown) {
			capknown = capknown ? capknown * 2 : 64;
			known = realloc(known, capknown * sizeof(*known));
		}
		known[nknown++] = strdup(list[i]->mutation_id);
	}
	db_mutation_list_free(list, n);
	free(list);

	for (int loop = 0; loop < 100000; loop++) {
		struct db_mutation *b[8];
		size_t nb = 1 + rand_r(&seed) % 8;
		char line[8 * 64];
		size_t off = 0;

		for (size_t i = 0; i < nb; i++) {
			char id[40];

			snprintf(id, sizeof(id), "c%d-%d-%d", iter, loop, (int)i);
			b[i] = crash_mut(id);
		}
		if (db_outbox_append(db, b, nb) < 0)
			_exit(4);
		for (size_t i = 0; i < nb; i++) {
			off += (size_t)snprintf(line + off, sizeof(line) - off, "A %lld %s\n",
			    (long long)b[i]->seq, b[i]->mutation_id);
			if (nknown == capknown) {
				capknown = capknown ? capknown * 2 : 64;
				known = realloc(known, capknown * sizeof(*known));
			}
			known[nknown++] = strdup(b[i]->mutation_id);
			db_mutation_free(b[i]);
		}
		write_all(fd, line, off);

		switch (rand_r(&seed) % 4) {
		case 0:		/* remove the oldest entries we know: the outbox stays small */
			for (int k = 0; k < 24 && oldest < nknown && known[oldest]; k++) {
				int r;

				/* Announced first: killed between the commit and a
				 * report, the entry is gone but not reported. */
				off = (size_t)snprintf(line, sizeof(line), "R %s\n", known[oldest]);
				write_all(fd, line, off);
				r = db_outbox_remove(db, known[oldest]);
				if (r < 0 && r != -ENOENT)
					_exit(5);
				free(known[oldest]);
				known[oldest++] = NULL;
			}
			break;
		case 1: {	/* a cache write (synchronous=NORMAL) */
			char key[16];
			cJSON *q = cJSON_CreateObject(), *t = cJSON_CreateArray();
			int nt = 10 + rand_r(&seed) % 200;

			snprintf(key, sizeof(key), "q%u", rand_r(&seed) % 5);
			cJSON_AddObjectToObject(q, key);
			for (int i = 0; i < nt; i++) {
				cJSON *tr = cJSON_CreateArray();

				cJSON_AddItemToArray(tr, cJSON_CreateString("eeeeeeee-0000-4000-8000-000000000000"));
				cJSON_AddItemToArray(tr, cJSON_CreateString("aaaaaaaa-0000-4000-8000-000000000000"));
				cJSON_AddItemToArray(tr, cJSON_CreateNumber(i));
				cJSON_AddItemToArray(tr, cJSON_CreateNumber(loop));
				cJSON_AddItemToArray(t, tr);
			}
			if (db_query_put(db, key, q, t, NULL, loop) < 0)
				_exit(6);
			cJSON_Delete(q);
			cJSON_Delete(t);
			if (db_query_evict(db, 40000, NULL) < 0)
				_exit(6);
			break;
		}
		case 2:		/* a state change of a recent entry */
			if (nknown > 0 && known[nknown - 1] &&
			    db_outbox_set_state(db, known[nknown - 1], DB_MUT_CONFIRMED, loop + 1, NULL) < 0)
				_exit(7);
			break;
		default:
			break;
		}
	}
	_exit(0);
}

static int
parse_reports(char *buf)
{
	char *save = NULL;

	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		long long seq;
		char id[40];

		if (sscanf(l, "A %lld %39s", &seq, id) == 2) {
			if (exp_n == exp_cap) {
				exp_cap = exp_cap ? exp_cap * 2 : 1024;
				exp_list = realloc(exp_list, exp_cap * sizeof(*exp_list));
			}
			if (exp_n > 0 && exp_list[exp_n - 1].seq >= seq)
				return -1;	/* seqs must grow */
			exp_list[exp_n].seq = seq;
			snprintf(exp_list[exp_n].id, sizeof(exp_list[exp_n].id), "%s", id);
			exp_list[exp_n].removed = false;
			exp_n++;
		} else if (sscanf(l, "R %39s", id) == 1) {
			/* Removals go oldest first: search on from the last one.
			 * An entry whose append was never acknowledged is not listed. */
			static size_t hint;

			for (size_t k = 0; k < exp_n; k++) {
				size_t i = (hint + k) % exp_n;

				if (strcmp(exp_list[i].id, id) == 0) {
					exp_list[i].removed = true;
					hint = i;
					break;
				}
			}
		} else
			return -1;
	}
	return 0;
}

static int
integrity(const char *path)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 &&
		    sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	sqlite3_close(s);
	return ok;
}

/* Everything acknowledged and not removed is present (same seq and id) and
 * intact; whatever else is there is intact too. */
static int
verify(const char *path, size_t *ret_present)
{
	struct db *db = NULL;
	struct db_mutation **list = NULL;
	size_t n = 0, j = 0;
	int bad = 0;

	struct stat st;

	/* Killed before it even created the file: fine while nothing was acknowledged. */
	if (stat(path, &st) < 0 && errno == ENOENT && exp_n == 0) {
		*ret_present = 0;
		return 0;
	}
	if (!integrity(path)) {
		fprintf(stderr, "integrity_check failed\n");
		return -1;
	}
	if (db_open(path, &db) < 0)
		return -1;
	if (db_recovered_from(db)) {
		fprintf(stderr, "the database was found corrupt\n");
		bad++;
	}
	if (db_outbox_list(db, ~0u, &list, &n) < 0) {
		db_close(db);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!mut_intact(list[i])) {
			fprintf(stderr, "entry %s is damaged\n", list[i]->mutation_id);
			bad++;
		}
	for (size_t i = 0; i < exp_n; i++) {
		if (exp_list[i].removed)
			continue;
		while (j < n && list[j]->seq < exp_list[i].seq)
			j++;
		if (j >= n || list[j]->seq != exp_list[i].seq ||
		    strcmp(list[j]->mutation_id, exp_list[i].id) != 0) {
			fprintf(stderr, "acknowledged entry %s (seq %lld) is missing\n", exp_list[i].id,
			    (long long)exp_list[i].seq);
			bad++;
		}
	}
	*ret_present = n;
	db_mutation_list_free(list, n);
	free(list);
	db_close(db);
	return bad ? -1 : 0;
}

int
main(void)
{
	const char *env = getenv("DB_CRASH_ITERATIONS"), *base = getenv("TMPDIR");
	int iterations = env ? atoi(env) : 250, failures = 0;
	char dir[256], path[300], cmd[300];
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	struct stat st;
	size_t present = 0;
	int64_t t0 = mono_us();

	/* tmpfs keeps this quick; the kill is of the process, not the machine. */
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	snprintf(dir, sizeof(dir), "%s/test-db-crash-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/crash.sqlite", dir);
	fprintf(stderr, "# seed %u, %d iterations in %s\n", seed, iterations, dir);

	for (int it = 0; it < iterations && failures == 0; it++) {
		char *buf = NULL;
		size_t len = 0, cap = 0;
		int p[2], status;
		pid_t pid;

		if (pipe2(p, O_CLOEXEC) < 0)
			return perror("pipe"), 1;
		(void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		pid = fork();
		if (pid < 0)
			return perror("fork"), 1;
		if (pid == 0) {
			close(p[0]);
			child(path, it, p[1]);
		}
		close(p[1]);
		/* Mostly short runs (kills during open, migration, the first commits),
		 * some longer ones (checkpoints, bigger files). */
		usleep(rand_r(&seed) % 4 == 0 ? rand_r(&seed) % 40000 : rand_r(&seed) % 8000);
		kill(pid, SIGKILL);
		for (;;) {
			ssize_t r;

			if (len + 4096 + 1 > cap) {
				cap = cap ? cap * 2 : 65536;
				buf = realloc(buf, cap);
			}
			r = read(p[0], buf + len, cap - len - 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		close(p[0]);
		if (waitpid(pid, &status, 0) != pid)
			return perror("waitpid"), 1;
		if (!WIFSIGNALED(status)) {
			fprintf(stderr, "iteration %d: the writer exited with %d before the kill\n", it,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			failures++;
		}
		buf = buf ? buf : calloc(1, 1);
		buf[len] = '\0';
		if (parse_reports(buf) < 0) {
			fprintf(stderr, "iteration %d: bad report from the writer\n", it);
			failures++;
		}
		free(buf);
		if (verify(path, &present) < 0) {
			fprintf(stderr, "iteration %d: verification failed\n", it);
			failures++;
		}
		CHECK_INT(failures, 0);
	}
	fprintf(stderr, "# %zu acknowledged appends checked, %zu entries in the outbox, %.1f s\n",
	    exp_n, present, (mono_us() - t0) / 1e6);
	CHECK(exp_n > 0);
	free(exp_list);
	if (failures == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	} else
		fprintf(stderr, "kept %s for inspection\n", dir);
	return tap_done();
}
