/* Test driver for the local InstaQL engine: reads JSON-lines cases on stdin
 * and prints one canonical JSON result line per case (used by diff.mjs).
 *
 * A case: {"id": any, "dataset": "zeneca"|"movies" | "attrs": [...], "triples": [...],
 *          "result": <wire result tree>, "mutations": [{"steps": [...], "tx-id": n}],
 *          "processed-tx-id": n, "q": {...}, "page-info": {...}, "aggregate": {...},
 *          "link-index": {...}, "repeat": n, "fresh": bool}
 * Output: {"id": ..., "data": ..., "pageInfo": ...} or {"id": ..., "error": "..."};
 * with "repeat", also "ms": the mean time of one build+layer+eval.
 * Data sets are read from $top_srcdir/tests/data/<name>/{attrs,triples}.json. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/attrs.h"
#include "store/instaql.h"
#include "store/tstore.h"
#include "store/util.h"

struct dataset {
	char name[32];
	struct attrs *attrs;
	cJSON *triples;
	struct tstore *base;	/* built once, duplicated per case */
};

static struct dataset sets[4];
static size_t nsets;

static cJSON *
read_json_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	cJSON *j;

	if (f == NULL)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	j = cJSON_Parse(buf);
	free(buf);
	return j;
}

static struct dataset *
dataset_get(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	struct dataset *d;
	cJSON *a;

	for (size_t i = 0; i < nsets; i++)
		if (strcmp(sets[i].name, name) == 0)
			return &sets[i];
	if (nsets == ELEMENTSOF(sets) || strlen(name) >= sizeof(d->name) || strchr(name, '/'))
		return NULL;
	d = &sets[nsets];
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(path, sizeof(path), "%s/tests/data/%s/attrs.json", top ? top : ".", name);
	a = read_json_file(path);
	if (a == NULL)
		return NULL;
	d->attrs = attrs_new();
	if (d->attrs == NULL || attrs_set_all(d->attrs, a) < 0) {
		cJSON_Delete(a);
		return NULL;
	}
	cJSON_Delete(a);
	snprintf(path, sizeof(path), "%s/tests/data/%s/triples.json", top ? top : ".", name);
	d->triples = read_json_file(path);
	if (d->triples == NULL)
		return NULL;
	if (tstore_new(d->attrs, &d->base) < 0 || tstore_add_triples(d->base, d->triples) < 0)
		return NULL;
	nsets++;
	return d;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One evaluation of a case: 0 with data/page_info, or an error message. */
static int
run_case(const cJSON *c, struct attrs *attrs_own, cJSON **ret_data, cJSON **ret_pi, char **ret_err)
{
	const cJSON *ds = json_get(c, "dataset");
	const cJSON *muts = json_get(c, "mutations");
	int64_t ptx = 0;
	struct instaql_opts opts = {
		.page_info = json_get(c, "page-info"),
		.aggregate = json_get(c, "aggregate"),
		.link_index = json_get(c, "link-index"),
	};
	struct tstore *s = NULL, *shared = NULL;
	_cleanup_free_ struct instaql_mutation *mv = NULL;
	size_t nm = 0;
	const cJSON *m;
	int r;

	(void)json_get_int64(json_get(c, "processed-tx-id"), &ptx);
	if (cJSON_IsString(ds)) {
		struct dataset *d = dataset_get(ds->valuestring);

		if (d == NULL) {
			*ret_err = strdup("cannot load data set");
			return -EINVAL;
		}
		/* "fresh": build from the triples, as a render does; else copy the prebuilt store */
		if (cJSON_IsTrue(json_get(c, "fresh"))) {
			if ((r = tstore_new(d->attrs, &s)) < 0)
				return r;
			if ((r = tstore_add_triples(s, d->triples)) < 0) {
				tstore_free(s);
				return r;
			}
		} else
			shared = d->base;	/* as the daemon's profile store: never changed */
	} else {
		if ((r = tstore_new(attrs_own, &s)) < 0)
			return r;
		if (json_get(c, "triples"))
			r = tstore_add_triples(s, json_get(c, "triples"));
		else if (json_get(c, "result"))
			r = tstore_add_result(s, json_get(c, "result"));
		if (r < 0) {
			tstore_free(s);
			*ret_err = strdup("bad triples or result");
			return r;
		}
	}
	/* the daemon's entry point, so these cases test what it runs */
	mv = calloc((size_t)cJSON_GetArraySize(muts) + 1, sizeof(*mv));
	if (mv == NULL) {
		tstore_free(s);
		return -ENOMEM;
	}
	cJSON_ArrayForEach(m, muts) {
		mv[nm].tx_steps = json_get(m, "steps");
		(void)json_get_int64(json_get(m, "tx-id"), &mv[nm].tx_id);
		nm++;
	}
	r = instaql_eval_base(shared ? shared : s, mv, nm, ptx, 0, json_get(c, "q"), &opts, NULL,
	    ret_data, ret_pi, ret_err);
	tstore_free(s);
	return r;
}

int
main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		_cleanup_json_ cJSON *c = cJSON_Parse(line);
		_cleanup_json_ cJSON *out = cJSON_CreateObject();
		struct attrs *attrs = NULL;
		cJSON *data = NULL, *pi = NULL;
		char *err = NULL, *s;
		int64_t repeat = 0;
		int r;

		if (c == NULL || out == NULL) {
			fprintf(stderr, "engine-eval: bad input line\n");
			return 1;
		}
		if (json_get(c, "id"))
			cJSON_AddItemToObject(out, "id", cJSON_Duplicate(json_get(c, "id"), 1));
		if (json_get(c, "attrs")) {
			attrs = attrs_new();
			if (attrs == NULL || attrs_set_all(attrs, json_get(c, "attrs")) < 0) {
				fprintf(stderr, "engine-eval: bad attrs\n");
				return 1;
			}
		}
		(void)json_get_int64(json_get(c, "repeat"), &repeat);
		if (repeat > 0) {
			double t0 = now_s();

			for (int64_t k = 0; k < repeat; k++) {
				cJSON *d2 = NULL, *p2 = NULL;
				char *e2 = NULL;

				(void)run_case(c, attrs, &d2, &p2, &e2);
				cJSON_Delete(d2);
				cJSON_Delete(p2);
				free(e2);
			}
			cJSON_AddNumberToObject(out, "ms", (now_s() - t0) * 1000.0 / (double)repeat);
		}
		r = run_case(c, attrs, &data, &pi, &err);
		attrs_free(attrs);
		if (r < 0) {
			cJSON_AddStringToObject(out, "error", err ? err : strerror(-r));
			free(err);
		} else {
			cJSON_AddItemToObject(out, "data", data);
			if (pi)
				cJSON_AddItemToObject(out, "pageInfo", pi);
		}
		s = json_canonical(out);
		if (s == NULL)
			return 1;
		puts(s);
		free(s);
		fflush(stdout);
	}
	free(line);
	for (size_t i = 0; i < nsets; i++) {
		attrs_free(sets[i].attrs);
		cJSON_Delete(sets[i].triples);
		tstore_free(sets[i].base);
	}
	return 0;
}
