/* Property check of store/reads.h, driven by reads.mjs: for every query x
 * mutation of a data set, whenever query_reads_affected() says the mutation
 * cannot change the query's result (by attr, or by attr and the entities the
 * base result shows), the result printed with and without it must be
 * byte-equal. And the other way (a write leaving the optimistic layer):
 * whenever it says so by the entities the result *with* the mutation shows,
 * the two results must be byte-equal too.
 *
 * Input, one JSON line per data set:
 *   {"dataset": "zeneca", "attrs": [...]?, "queries": [{"q": {...}, "page-info": {...}?}...],
 *    "mutations": [{"kind": "update", "steps": [...]}...]}
 * "attrs" replaces the data set's own attrs.
 * Output: a line "not ok ..." per violation (query, steps, both results), then
 * one JSON line per data set: {"dataset", "pairs", "kinds": {kind: {"pairs",
 * "unaffected", "unaffected-by-attr", "affected", "sampled", "changed",
 * "removal-checked"}}}
 * (unaffected with the shown entities, unaffected-by-attr without them): of a sample of the
 * affected pairs, how many did change (how sharp the mutations are).
 * Exit 1 on any violation, 2 on a setup failure. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/attrs.h"
#include "store/instaql.h"
#include "store/reads.h"
#include "store/tstore.h"
#include "store/util.h"

static cJSON *
read_json_file(const char *path)
{
	_cleanup_free_ char *buf = NULL;
	FILE *f = fopen(path, "r");
	size_t len = 0;

	if (f == NULL)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	return cJSON_Parse(buf);
}

/* The printed result of q on s: data and page-info, or the error; the
 * entities it shows into *shown if shown is not NULL. */
static char *
render(struct tstore *s, const cJSON *q, const cJSON *page_info, struct instaql_shown *shown)
{
	struct instaql_opts opts = { .page_info = page_info, .shown = shown };
	_cleanup_json_ cJSON *data = NULL, *pi = NULL;
	_cleanup_free_ char *err = NULL, *d = NULL, *p = NULL;
	char *out = NULL;
	int r;

	r = instaql_eval_opts(s, q, &opts, &data, &pi, &err);
	if (r < 0) {
		if (asprintf(&out, "error %d: %s", r, err ? err : "") < 0)
			return NULL;
		return out;
	}
	d = json_print(data);
	p = pi ? json_print(pi) : strdup("null");
	if (d == NULL || p == NULL || asprintf(&out, "%s page-info %s", d, p) < 0)
		return NULL;
	return out;
}

/* The store every mutation is layered on is the data set's own: base. */
static bool
base_has_ref_to(void *ud, const char *attr_id, const char *eid)
{
	cJSON v = { .type = cJSON_String, .valuestring = (char *)eid };

	return tstore_has_av(ud, attr_id, &v);
}

static bool
base_has_entity(void *ud, const char *etype, const char *eid)
{
	return tstore_has_entity(ud, etype, eid);
}

/* One affected pair in this many is evaluated too. */
#define AFFECTED_SAMPLE 8

struct kind_stats {
	char name[32];
	long pairs, unaffected, unaffected_by_attr, affected, sampled, changed, removal_checked;
};

static struct kind_stats *
kind_get(struct kind_stats *ks, size_t *nk, size_t cap, const char *name)
{
	for (size_t i = 0; i < *nk; i++)
		if (strcmp(ks[i].name, name) == 0)
			return &ks[i];
	if (*nk == cap)
		return NULL;
	snprintf(ks[*nk].name, sizeof(ks[*nk].name), "%s", name);
	return &ks[(*nk)++];
}

static int
check_dataset(const cJSON *c, long *violations)
{
	const char *top = getenv("top_srcdir"), *name = json_get_string(c, "dataset");
	const char *label = json_get_string(c, "label") ?: name;
	const cJSON *queries = json_get(c, "queries"), *muts = json_get(c, "mutations");
	_cleanup_json_ cJSON *aj = NULL, *triples = NULL, *summary = NULL;
	struct attrs *attrs = NULL;
	struct tstore *base = NULL;
	struct query_reads **reads = NULL;
	struct instaql_shown *shown = NULL, none = { 0 };
	char **before = NULL;
	struct kind_stats ks[32] = {0};
	size_t nk = 0;
	int nq = cJSON_GetArraySize(queries), r = -ENOMEM, qi;
	long pairs = 0;
	char path[4096];
	const cJSON *m, *q;

	if (name == NULL || strchr(name, '/') || !cJSON_IsArray(queries) || !cJSON_IsArray(muts))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/tests/data/%s/attrs.json", top ? top : ".", name);
	aj = json_get(c, "attrs") ? cJSON_Duplicate(json_get(c, "attrs"), 1) : read_json_file(path);
	snprintf(path, sizeof(path), "%s/tests/data/%s/triples.json", top ? top : ".", name);
	triples = read_json_file(path);
	if (aj == NULL || triples == NULL)
		return -ENOENT;
	attrs = attrs_new();
	reads = calloc((size_t)nq + 1, sizeof(*reads));
	before = calloc((size_t)nq + 1, sizeof(*before));
	shown = calloc((size_t)nq + 1, sizeof(*shown));
	if (attrs == NULL || reads == NULL || before == NULL || shown == NULL)
		goto out;
	if ((r = attrs_set_all(attrs, aj)) < 0 || (r = tstore_new(attrs, &base)) < 0 ||
	    (r = tstore_add_triples(base, triples)) < 0)
		goto out;
	qi = 0;
	cJSON_ArrayForEach(q, queries) {
		const cJSON *qq = json_get(q, "q"), *pi = json_get(q, "page-info");

		/* not an object: no reads, the query fails whatever is written */
		r = query_reads_new(attrs, qq, pi, &reads[qi]);
		if (r < 0 && !(r == -EINVAL && !cJSON_IsObject(qq)))
			goto out;
		if ((before[qi] = render(base, qq, pi, &shown[qi])) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		qi++;
	}
	const struct query_reads_store bst = { .has_ref_to = base_has_ref_to, .has_entity = base_has_entity,
	    .ud = base };

	cJSON_ArrayForEach(m, muts) {
		const cJSON *steps = json_get(m, "steps");
		const char *kind = json_get_string(m, "kind");
		struct kind_stats *k = kind_get(ks, &nk, ELEMENTSOF(ks), kind ? kind : "?");
		struct tstore *s = NULL;
		_cleanup_free_ char *aerr = NULL;
		int ar;

		if (k == NULL) {
			r = -E2BIG;
			goto out;
		}
		if ((r = tstore_dup(base, &s)) < 0)
			goto out;
		/* a failing mutation fails every query layered on it, as in
		 * instaql_eval_layered */
		ar = tstore_apply_steps(s, steps, &aerr);
		if (ar < 0 && ar != -EINVAL) {
			tstore_free(s);
			r = ar;
			goto out;
		}
		qi = 0;
		cJSON_ArrayForEach(q, queries) {
			const cJSON *qq = json_get(q, "q"), *pi = json_get(q, "page-info");
			/* by attr, then by attr and entity (never more affected) */
			bool by_attr = reads[qi] == NULL || query_reads_affected(reads[qi], steps, NULL, NULL);
			bool affected = reads[qi] == NULL || query_reads_affected(reads[qi], steps, &shown[qi], &bst);
			/* with no entity shown: the least affected any shown can make it */
			bool least = reads[qi] == NULL || query_reads_affected(reads[qi], steps, &none, &bst);
			_cleanup_free_ char *after = NULL;

			if (by_attr && !least && ar == 0) {
				/* removal: judged by what the result with the mutation shows */
				struct instaql_shown sa = { 0 };
				_cleanup_free_ char *with = render(s, qq, pi, &sa);
				bool aff_after = query_reads_affected(reads[qi], steps, &sa, &bst);

				instaql_shown_clear(&sa);
				if (with == NULL) {
					tstore_free(s);
					r = -ENOMEM;
					goto out;
				}
				k->removal_checked++;
				if (!aff_after && strcmp(before[qi], with) != 0) {
					_cleanup_free_ char *qs = json_print(qq), *ss = json_print(steps);

					(*violations)++;
					printf("not ok: %s: judged unaffected by the entities shown with it, but the "
					    "result changed\n  query: %s\n  steps: %s\n  without: %.2000s\n  with:    %.2000s\n",
					    label, qs ? qs : "?", ss ? ss : "?", before[qi], with);
				}
			}

			/* the quick test never passes over a pair the full test calls affected */
			if (reads[qi] && by_attr) {
				struct query_reads_filter f;

				if (query_reads_steps_filter(steps, attrs, &f) && !query_reads_may_touch(reads[qi], &f)) {
					printf("not ok: %s: the quick test passed over an affected pair\n", label);
					(*violations)++;
				}
			}
			k->pairs++;
			pairs++;
			k->unaffected_by_attr += !by_attr;
			if (affected && !by_attr) {
				printf("not ok: %s: judged affected by entity but not by attr\n", label);
				(*violations)++;
			}
			if (affected) {
				k->affected++;
				/* only a sample, for the "changed" count: the time goes
				 * to the pairs that are checked */
				if (pairs % AFFECTED_SAMPLE != 0) {
					qi++;
					continue;
				}
				k->sampled++;
			} else
				k->unaffected++;
			if (ar < 0) {
				if (asprintf(&after, "error: mutation fails: %s", aerr ? aerr : "") < 0)
					after = NULL;
			} else
				after = render(s, qq, pi, NULL);
			if (after == NULL) {
				tstore_free(s);
				r = -ENOMEM;
				goto out;
			}
			if (affected) {
				k->changed += strcmp(before[qi], after) != 0;
			} else {
				if (strcmp(before[qi], after) != 0) {
					_cleanup_free_ char *qs = json_print(qq), *ss = json_print(steps);

					(*violations)++;
					printf("not ok: %s: judged unaffected but the result changed\n"
					    "  query: %s\n  steps: %s\n  before: %.2000s\n  after:  %.2000s\n",
					    label, qs ? qs : "?", ss ? ss : "?", before[qi], after);
				}
			}
			qi++;
		}
		tstore_free(s);
	}
	summary = cJSON_CreateObject();
	{
		cJSON *kinds = cJSON_AddObjectToObject(summary, "kinds");

		if (kinds == NULL || cJSON_AddStringToObject(summary, "dataset", label) == NULL ||
		    cJSON_AddNumberToObject(summary, "pairs", (double)pairs) == NULL)
			goto out;
		for (size_t i = 0; i < nk; i++) {
			cJSON *o = cJSON_AddObjectToObject(kinds, ks[i].name);

			if (o == NULL || cJSON_AddNumberToObject(o, "pairs", (double)ks[i].pairs) == NULL ||
			    cJSON_AddNumberToObject(o, "unaffected", (double)ks[i].unaffected) == NULL ||
			    cJSON_AddNumberToObject(o, "unaffected-by-attr", (double)ks[i].unaffected_by_attr) == NULL ||
			    cJSON_AddNumberToObject(o, "affected", (double)ks[i].affected) == NULL ||
			    cJSON_AddNumberToObject(o, "sampled", (double)ks[i].sampled) == NULL ||
			    cJSON_AddNumberToObject(o, "changed", (double)ks[i].changed) == NULL ||
			    cJSON_AddNumberToObject(o, "removal-checked", (double)ks[i].removal_checked) == NULL)
				goto out;
		}
	}
	{
		_cleanup_free_ char *line = json_print(summary);

		if (line == NULL)
			goto out;
		printf("%s\n", line);
	}
	r = 0;
out:
	for (int i = 0; i < nq; i++) {
		if (reads)
			query_reads_free(reads[i]);
		if (before)
			free(before[i]);
		if (shown)
			instaql_shown_clear(&shown[i]);
	}
	free(reads);
	free(before);
	free(shown);
	tstore_free(base);
	attrs_free(attrs);
	return r;
}

int
main(void)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	long violations = 0;

	while (getline(&line, &cap, stdin) > 0) {
		_cleanup_json_ cJSON *c = cJSON_Parse(line);
		int r;

		if (c == NULL) {
			fprintf(stderr, "reads-check: input is not JSON lines\n");
			return 2;
		}
		if ((r = check_dataset(c, &violations)) < 0) {
			fprintf(stderr, "reads-check: data set %s: %s\n",
			    json_get_string(c, "dataset") ?: "?", strerror(-r));
			return 2;
		}
	}
	return violations ? 1 : 0;
}
