/* Test driver for the differential InstaML test (diff.mjs): reads JSONL cases
 * on stdin, runs instaml_transform / instaml_rewrite_queue, writes one JSONL
 * result per case on stdout.
 *
 *   {"define": NAME, "value": ...}                        remember attrs or triples (no output);
 *                                                         "attrs" and "triples" may name them
 *   {"id": ID, "kind": "transform", "attrs": NAME|[...], "triples": [[e,a,v],...],
 *    "seq": [OPS, OPS, ...]}                              -> {"id", "results": [{"steps", "invalid"?}|{"error"}]}
 *       Each OPS is transformed against the attrs plus the attrs that the
 *       earlier successful transforms of the sequence created (as the daemon
 *       remembers them, instaml_new_attrs). "triples" are the server stores'
 *       triples that decide update mode. "invalid" is instaml_validate_steps'
 *       complaint about the steps, if any.
 *   {"id": ID, "kind": "rewrite", "attrs": NAME|[...], "muts": [{"steps": [...], "drop": bool}]}
 *                                                         -> {"id", "muts": [[...]], "changed": [bool]} */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/attrs.h"
#include "store/instaml.h"
#include "store/util.h"

struct named {
	char *name;
	cJSON *value;
};

static struct named defs[64];
static size_t n_defs;

struct world {
	const struct attrs *attrs;	/* the case's base attrs: a triple counts only if its attr is known */
	const cJSON *triples;
};

static bool
world_entity_exists(void *userdata, const char *etype, const char *eid)
{
	const struct world *w = userdata;
	const cJSON *t;

	cJSON_ArrayForEach(t, w->triples) {
		const cJSON *e = cJSON_GetArrayItem(t, 0), *a = cJSON_GetArrayItem(t, 1);
		const cJSON *attr;
		const char *et;

		if (!cJSON_IsString(e) || !cJSON_IsString(a) || strcmp(e->valuestring, eid) != 0)
			continue;
		attr = attrs_by_id(w->attrs, a->valuestring);
		et = attr ? attr_fwd_etype(attr) : NULL;
		if (et && strcmp(et, etype) == 0)
			return true;
	}
	return false;
}

/* JavaScript ===: objects and arrays never equal a parsed lookup value. */
static bool
strict_equal(const cJSON *a, const cJSON *b)
{
	if (cJSON_IsString(a) && cJSON_IsString(b))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble;
	if (cJSON_IsBool(a) && cJSON_IsBool(b))
		return cJSON_IsTrue(a) == cJSON_IsTrue(b);
	return cJSON_IsNull(a) && cJSON_IsNull(b);
}

static bool
world_lookup_exists(void *userdata, const char *attr_id, const cJSON *value)
{
	const struct world *w = userdata;
	const cJSON *t;

	if (attrs_by_id(w->attrs, attr_id) == NULL)
		return false;
	cJSON_ArrayForEach(t, w->triples) {
		const cJSON *a = cJSON_GetArrayItem(t, 1);

		if (cJSON_IsString(a) && strcmp(a->valuestring, attr_id) == 0 &&
		    strict_equal(cJSON_GetArrayItem(t, 2), value))
			return true;
	}
	return false;
}

static const cJSON *
resolve(const cJSON *spec)
{
	if (!cJSON_IsString(spec))
		return spec;
	for (size_t i = 0; i < n_defs; i++)
		if (strcmp(defs[i].name, spec->valuestring) == 0)
			return defs[i].value;
	return NULL;
}

static int
load_attrs(const cJSON *spec, struct attrs **ret)
{
	struct attrs *a = attrs_new();
	const cJSON *list = resolve(spec);
	int r;

	if (a == NULL)
		return -ENOMEM;
	if (list == NULL) {
		attrs_free(a);
		return -ENOENT;
	}
	r = attrs_set_all(a, list);
	if (r < 0) {
		attrs_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

static int
run_transform(const cJSON *c, cJSON *out)
{
	struct attrs *base = NULL, *cur = NULL;
	cJSON *results = cJSON_AddArrayToObject(out, "results");
	const cJSON *ops;
	struct world w;
	int r;

	if (results == NULL)
		return -ENOMEM;
	r = load_attrs(json_get(c, "attrs"), &base);
	if (r < 0)
		return r;
	r = attrs_dup(base, &cur);
	if (r < 0)
		goto out;
	w.attrs = base;
	w.triples = resolve(json_get(c, "triples"));
	struct instaml_ctx ctx = {
		.entity_exists = world_entity_exists,
		.lookup_exists = world_lookup_exists,
		.userdata = &w,
	};
	cJSON_ArrayForEach(ops, json_get(c, "seq")) {
		_cleanup_json_ cJSON *steps = NULL, *added = NULL;
		_cleanup_free_ char *err = NULL;
		cJSON *res = cJSON_CreateObject();
		const cJSON *attr;

		if (res == NULL) {
			r = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToArray(results, res);
		r = instaml_transform(cur, ops, &ctx, &steps, &err);
		if (r == -EINVAL) {
			cJSON_AddStringToObject(res, "error", err ? err : "(no message)");
			continue;
		}
		if (r < 0)
			goto out;
		r = instaml_new_attrs(steps, &added);
		if (r < 0)
			goto out;
		cJSON_ArrayForEach(attr, added) {
			r = attrs_add(cur, attr);
			if (r < 0)
				goto out;
		}
		/* what the transform makes must pass the raw-step check too */
		{
			_cleanup_free_ char *verr = NULL;

			r = instaml_validate_steps(steps, &verr);
			if (r == -EINVAL)
				cJSON_AddStringToObject(res, "invalid", verr ? verr : "(no message)");
			else if (r < 0)
				goto out;
		}
		cJSON_AddItemToObject(res, "steps", TAKE_PTR(steps));
	}
	r = 0;
out:
	attrs_free(base);
	attrs_free(cur);
	return r;
}

static int
run_rewrite(const cJSON *c, cJSON *out)
{
	struct attrs *server = NULL;
	const cJSON *muts = json_get(c, "muts"), *m;
	size_t n = (size_t)cJSON_GetArraySize(muts), i = 0;
	cJSON **steps = calloc(n + 1, sizeof(*steps));
	bool *drop = calloc(n + 1, sizeof(*drop)), *changed = calloc(n + 1, sizeof(*changed));
	cJSON *res_muts = cJSON_AddArrayToObject(out, "muts");
	cJSON *res_changed = cJSON_AddArrayToObject(out, "changed");
	int r = -ENOMEM;

	if (steps == NULL || drop == NULL || changed == NULL || res_muts == NULL || res_changed == NULL)
		goto out;
	r = load_attrs(json_get(c, "attrs"), &server);
	if (r < 0)
		goto out;
	cJSON_ArrayForEach(m, muts) {
		steps[i] = cJSON_Duplicate(json_get(m, "steps"), 1);
		drop[i] = cJSON_IsTrue(json_get(m, "drop"));
		if (steps[i] == NULL) {
			r = -ENOMEM;
			goto out;
		}
		i++;
	}
	r = instaml_rewrite_queue(server, steps, drop, n, changed);
	if (r < 0)
		goto out;
	for (i = 0; i < n; i++) {
		cJSON_AddItemToArray(res_muts, TAKE_PTR(steps[i]));
		cJSON_AddItemToArray(res_changed, cJSON_CreateBool(changed[i]));
	}
out:
	for (i = 0; i < n && steps; i++)
		cJSON_Delete(steps[i]);
	free(steps);
	free(drop);
	free(changed);
	attrs_free(server);
	return r;
}

int
main(void)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	while (getline(&line, &cap, stdin) > 0) {
		_cleanup_json_ cJSON *c = cJSON_Parse(line), *out = NULL;
		_cleanup_free_ char *text = NULL;
		const char *kind, *define;
		int r;

		if (c == NULL) {
			fprintf(stderr, "instaml-run: bad JSON line\n");
			rc = 1;
			break;
		}
		define = json_get_string(c, "define");
		if (define) {
			if (n_defs == ELEMENTSOF(defs))
				return 1;
			defs[n_defs].name = strdup(define);
			defs[n_defs].value = cJSON_DetachItemFromObjectCaseSensitive(c, "value");
			n_defs++;
			continue;
		}
		out = cJSON_CreateObject();
		if (out == NULL)
			return 1;
		cJSON_AddItemToObject(out, "id", cJSON_Duplicate(json_get(c, "id"), 1));
		kind = json_get_string(c, "kind");
		if (kind && strcmp(kind, "transform") == 0)
			r = run_transform(c, out);
		else if (kind && strcmp(kind, "rewrite") == 0)
			r = run_rewrite(c, out);
		else
			r = -EINVAL;
		if (r < 0) {
			fprintf(stderr, "instaml-run: case failed: %s\n", strerror(-r));
			rc = 1;
			break;
		}
		text = json_print(out);
		if (text == NULL)
			return 1;
		printf("%s\n", text);
		fflush(stdout);
	}
	free(line);
	for (size_t i = 0; i < n_defs; i++) {
		free(defs[i].name);
		cJSON_Delete(defs[i].value);
	}
	return rc;
}
