/* Unit tests of the per-query triple store and the InstaQL engine API:
 * building, steps and their errors, the overlay rule, validation messages,
 * page-info, the shared-base render, query reads, and that malformed input
 * fails cleanly. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/attrs.h"
#include "store/instaql.h"
#include "store/reads.h"
#include "store/tstore.h"
#include "store/util.h"
#include "tests/tap.h"

/* The protocol.md 4.5 example: goals and todos. */
static const char *attrs_json =
    "[{\"id\":\"a1\",\"forward-identity\":[\"i1\",\"goals\",\"id\"],\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
    "{\"id\":\"a2\",\"forward-identity\":[\"i2\",\"goals\",\"title\"],\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":true,\"index?\":false},"
    "{\"id\":\"a3\",\"forward-identity\":[\"i3\",\"goals\",\"n\"],\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":false,\"index?\":false},"
    "{\"id\":\"a4\",\"forward-identity\":[\"i4\",\"todos\",\"id\"],\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
    "{\"id\":\"a5\",\"forward-identity\":[\"i5\",\"todos\",\"text\"],\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":false,\"index?\":false},"
    "{\"id\":\"a6\",\"forward-identity\":[\"i6\",\"goals\",\"todos\"],\"reverse-identity\":[\"i7\",\"todos\",\"goals\"],\"value-type\":\"ref\",\"cardinality\":\"many\",\"unique?\":false,\"index?\":false}]";

static const char *result_json =
    "[{\"data\":{\"datalog-result\":{\"join-rows\":[["
    "[\"G1\",\"a2\",\"x\",1732700000002],[\"G1\",\"a1\",\"G1\",1732700000001],[\"G1\",\"a3\",3,1732700000003],"
    "[\"G1\",\"a6\",\"T1\",1732700000007],[\"G1\",\"a6\",\"T2\",1732700000008],[\"T1\",\"a4\",\"T1\",1732700000004],"
    "[\"T1\",\"a5\",\"a\",1732700000005],[\"zz\",\"unknown-attr\",1,1]]]}},"
    "\"child-nodes\":[{\"data\":{\"datalog-result\":{\"join-rows\":[[[\"T2\",\"a4\",\"T2\",1732700000006],"
    "[\"T2\",\"a5\",\"b\",1732700000009]]]}},\"child-nodes\":[]}]}]";

static struct attrs *
make_attrs(void)
{
	_cleanup_json_ cJSON *a = cJSON_Parse(attrs_json);
	struct attrs *at = attrs_new();

	if (at == NULL || a == NULL || attrs_set_all(at, a) < 0)
		abort();
	return at;
}

static struct tstore *
make_store(struct attrs *at)
{
	_cleanup_json_ cJSON *res = cJSON_Parse(result_json);
	struct tstore *s = NULL;

	if (tstore_new(at, &s) < 0 || tstore_add_result(s, res) < 0)
		abort();
	return s;
}

/* Evaluate q (JSON text) and return the canonical data (malloc'd), or
 * "ERR:<message>". */
static char *
eval_str(struct tstore *s, const char *q)
{
	_cleanup_json_ cJSON *qj = cJSON_Parse(q);
	_cleanup_json_ cJSON *data = NULL;
	cJSON *pi = NULL;
	char *err = NULL, *out;
	int r;

	if (qj == NULL)
		abort();
	r = instaql_eval(s, qj, &data, &pi, &err);
	if (r < 0) {
		if (asprintf(&out, "ERR:%s", err ? err : "?") < 0)
			abort();
		free(err);
		return out;
	}
	cJSON_Delete(pi);
	return json_canonical(data);
}

static void
check_eval(struct tstore *s, const char *q, const char *want)
{
	_cleanup_free_ char *got = eval_str(s, q);

	CHECK_STR(got, want);
}

static void
check_err(struct tstore *s, const char *q, const char *part)
{
	_cleanup_free_ char *got = eval_str(s, q);

	CHECK(strncmp(got, "ERR:", 4) == 0 && strstr(got, part) != NULL);
	if (strncmp(got, "ERR:", 4) != 0 || strstr(got, part) == NULL)
		fprintf(stderr, "# query %s gave %s, wanted an error naming %s\n", q, got, part);
}

static int
apply(struct tstore *s, const char *steps, char **ret_err)
{
	_cleanup_json_ cJSON *j = cJSON_Parse(steps);

	if (j == NULL)
		abort();
	return tstore_apply_steps(s, j, ret_err);
}

static void
test_build(void)
{
	struct attrs *at = make_attrs();
	struct tstore *s = make_store(at), *d = NULL;
	_cleanup_json_ cJSON *all = NULL;
	_cleanup_json_ cJSON *hello = cJSON_CreateString("x"), *three = cJSON_CreateNumber(3);

	CHECK_INT((int)tstore_count(s), 9);	/* the unknown-attr triple is skipped */
	all = tstore_to_json(s);
	CHECK(all && cJSON_GetArraySize(all) == 9);
	CHECK(tstore_has_entity(s, "goals", "G1"));
	CHECK(!tstore_has_entity(s, "todos", "G1"));
	CHECK(tstore_has_entity(s, "todos", "T2"));
	CHECK(!tstore_has_entity(s, "goals", "nope"));
	CHECK(tstore_has_av(s, "a2", hello));
	CHECK(tstore_has_av(s, "a3", three));
	CHECK(!tstore_has_av(s, "a2", three));
	CHECK(tstore_attrs(s) != NULL && attrs_count(tstore_attrs(s)) == 6);
	check_eval(s, "{\"goals\":{\"todos\":{},\"$\":{\"where\":{\"title\":\"x\"}}}}",
	    "{\"goals\":[{\"id\":\"G1\",\"n\":3,\"title\":\"x\",\"todos\":[{\"id\":\"T1\",\"text\":\"a\"},{\"id\":\"T2\",\"text\":\"b\"}]}]}");
	check_eval(s, "{\"todos\":{\"$\":{\"where\":{\"goals.title\":\"x\"},\"order\":{\"text\":\"desc\"}}}}",
	    "{\"todos\":[{\"id\":\"T2\",\"text\":\"b\"},{\"id\":\"T1\",\"text\":\"a\"}]}");
	check_eval(s, "{\"nothing\":{},\"goals\":{\"$\":{\"where\":{\"nope\":1}}}}", "{\"goals\":[],\"nothing\":[]}");
	/* a dup is independent */
	CHECK(tstore_dup(s, &d) == 0);
	CHECK(apply(d, "[[\"delete-entity\",\"G1\",\"goals\"]]", NULL) == 0);
	check_eval(d, "{\"goals\":{}}", "{\"goals\":[]}");
	check_eval(s, "{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}", "{\"goals\":[{\"id\":\"G1\",\"title\":\"x\"}]}");
	tstore_free(d);
	tstore_free(s);
	attrs_free(at);
}

/* A store with no attrs and no triples (a profile that never mirrored
 * anything, answered partial offline) copies and evaluates. */
static void
test_empty_dup(void)
{
	struct tstore *s = NULL, *d = NULL;

	CHECK(tstore_new(NULL, &s) == 0);
	CHECK(tstore_dup(s, &d) == 0);
	check_eval(d, "{\"goals\":{}}", "{\"goals\":[]}");
	tstore_free(d);
	tstore_free(s);
}

static void
test_steps(void)
{
	struct attrs *at = make_attrs();
	struct tstore *s = make_store(at);
	char *err = NULL;

	/* new entities come last in the default order, in apply order */
	CHECK(apply(s, "[[\"add-triple\",\"T9\",\"a4\",\"T9\"],[\"add-triple\",\"T9\",\"a5\",\"z\"],"
	    "[\"add-triple\",\"T3\",\"a4\",\"T3\"],[\"add-triple\",\"G1\",\"a6\",\"T9\"]]", NULL) == 0);
	check_eval(s, "{\"todos\":{\"$\":{\"fields\":[]}}}",
	    "{\"todos\":[{\"id\":\"T1\"},{\"id\":\"T2\"},{\"id\":\"T9\"},{\"id\":\"T3\"}]}");
	/* modes: create on an existing entity and update on a missing one are dropped */
	CHECK(apply(s, "[[\"add-triple\",\"G1\",\"a2\",\"created\",{\"mode\":\"create\"}],"
	    "[\"add-triple\",\"G7\",\"a2\",\"up\",{\"mode\":\"update\"}],"
	    "[\"add-triple\",\"G1\",\"a3\",4,{\"mode\":\"update\"}]]", NULL) == 0);
	check_eval(s, "{\"goals\":{}}", "{\"goals\":[{\"id\":\"G1\",\"n\":4,\"title\":\"x\"}]}");
	/* lookups: resolved, and unresolved (dropped) */
	CHECK(apply(s, "[[\"add-triple\",[\"a2\",\"x\"],\"a3\",5],[\"add-triple\",[\"a2\",\"nope\"],\"a3\",6]]", NULL) == 0);
	check_eval(s, "{\"goals\":{\"$\":{\"fields\":[\"n\"]}}}", "{\"goals\":[{\"id\":\"G1\",\"n\":5}]}");
	/* merge: no-op without a current value, deep merge with one */
	CHECK(apply(s, "[[\"deep-merge-triple\",\"T1\",\"a3\",{\"k\":1}]]", NULL) == 0);
	CHECK(apply(s, "[[\"add-triple\",\"G1\",\"a3\",{\"a\":{\"b\":1,\"c\":2}}],"
	    "[\"deep-merge-triple\",\"G1\",\"a3\",{\"a\":{\"b\":null,\"d\":[1]},\"e\":true}]]", NULL) == 0);
	check_eval(s, "{\"goals\":{\"$\":{\"fields\":[\"n\"]}}}", "{\"goals\":[{\"id\":\"G1\",\"n\":{\"a\":{\"c\":2,\"d\":[1]},\"e\":true}}]}");
	/* unlink, then $isNull sees the link as gone */
	CHECK(apply(s, "[[\"retract-triple\",\"G1\",\"a6\",\"T1\"],[\"retract-triple\",\"G1\",\"a6\",\"T2\"],"
	    "[\"retract-triple\",\"G1\",\"a6\",\"T9\"]]", NULL) == 0);
	check_eval(s, "{\"goals\":{\"$\":{\"where\":{\"todos\":{\"$isNull\":true}},\"fields\":[]}}}", "{\"goals\":[{\"id\":\"G1\"}]}");
	check_eval(s, "{\"todos\":{\"$\":{\"where\":{\"goals\":{\"$isNull\":false}}}}}", "{\"todos\":[]}");
	/* errors leave the store unchanged */
	CHECK_INT(apply(s, "[[\"add-triple\",\"G1\",\"a2\",\"changed\"],[\"frob\",1]]", &err), -EINVAL);
	CHECK(err && strstr(err, "step 1") && strstr(err, "frob"));
	free(err);
	err = NULL;
	CHECK_INT(apply(s, "[[\"deep-merge-triple\",\"G1\",\"a6\",{}]]", &err), -EINVAL);
	CHECK(err && strstr(err, "merge"));
	free(err);
	err = NULL;
	CHECK_INT(apply(s, "{\"not\":\"steps\"}", &err), -EINVAL);
	free(err);
	err = NULL;
	CHECK_INT(apply(s, "[5]", &err), -EINVAL);
	free(err);
	check_eval(s, "{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}", "{\"goals\":[{\"id\":\"G1\",\"title\":\"x\"}]}");
	/* attr steps */
	CHECK(apply(s, "[[\"add-attr\",{\"id\":\"a9\",\"forward-identity\":[\"i9\",\"goals\",\"color\"],\"value-type\":\"blob\",\"cardinality\":\"one\"}],"
	    "[\"add-triple\",\"G1\",\"a9\",\"red\"],[\"delete-attr\",\"a3\"],[\"rule-params\",\"G1\",\"goals\",{}]]", NULL) == 0);
	check_eval(s, "{\"goals\":{}}", "{\"goals\":[{\"color\":\"red\",\"id\":\"G1\",\"title\":\"x\"}]}");
	CHECK(apply(s, "[[\"update-attr\",{\"id\":\"a9\",\"forward-identity\":[\"i9\",\"goals\",\"colour\"]}]]", NULL) == 0);
	check_eval(s, "{\"goals\":{\"$\":{\"where\":{\"colour\":\"red\"}}}}", "{\"goals\":[{\"colour\":\"red\",\"id\":\"G1\",\"title\":\"x\"}]}");
	/* delete-entity with a lookup */
	CHECK(apply(s, "[[\"delete-entity\",[\"a2\",\"x\"],\"goals\"]]", NULL) == 0);
	check_eval(s, "{\"goals\":{}}", "{\"goals\":[]}");
	tstore_free(s);
	attrs_free(at);
}

static void
test_errors(void)
{
	struct attrs *at = make_attrs();
	struct tstore *s = make_store(at);
	static const char *const bad[][2] = {
		{ "{\"goals\":{\"$\":{\"where\":{\"title\":null}}}}", "goals.$.where.title" },
		{ "{\"goals\":{\"$\":{\"where\":{\"title.x\":1}}}}", "goals.$.where.title.x" },
		{ "{\"goals\":{\"title\":{}}}", "goals.title" },
		{ "{\"goals\":{\"todos\":{\"text\":{}}}}", "goals.todos.text" },
		{ "{\"goals\":{\"$\":{\"where\":{\"title\":{\"$regex\":\"x\"}}}}}", "goals.$.where.title" },
		{ "{\"goals\":{\"$\":{\"where\":{\"or\":{\"a\":1}}}}}", "goals.$.where.or" },
		{ "{\"goals\":{\"$\":{\"where\":{\"and\":[{\"title\":{\"$in\":5}}]}}}}", "goals.$.where.and[0].title.$in" },
		{ "{\"goals\":{\"$\":{\"limit\":-2}}}", "goals.$.limit" },
		{ "{\"goals\":{\"$\":{\"order\":{\"title\":1}}}}", "goals.$.order.title" },
		{ "{\"goals\":{\"$\":{\"wat\":1}}}", "goals.$.wat" },
		{ "{\"goals\":7}", "goals" },
		{ "[1,2]", "query" },
		{ "\"goals\"", "query" },
	};
	char *err = NULL;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		check_err(s, bad[i][0], bad[i][1]);
	/* instaql_validate alone */
	{
		_cleanup_json_ cJSON *q = cJSON_Parse("{\"x\":{\"$\":{\"where\":{\"a\":{\"$ilike\":[]}}}}}");

		CHECK_INT(instaql_validate(q, &err), -EINVAL);
		CHECK(err && strstr(err, "x.$.where.a.$ilike"));
		free(err);
		err = NULL;
	}
	{
		_cleanup_json_ cJSON *q = cJSON_Parse("{\"x\":{\"$\":{\"where\":{\"a\":{\"$ne\":null},\"b.c\":{\"$in\":[1,null]}},"
		    "\"order\":{\"a\":\"desc\"},\"limit\":3,\"fields\":[\"a\"]},\"y\":{}},\"$$ruleParams\":{\"k\":1}}");

		CHECK_INT(instaql_validate(q, NULL), 0);
	}
	/* no crash on deep or odd input */
	{
		char buf[8192];
		size_t n = 0;

		for (int i = 0; i < 200; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"goals\":");
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{}");
		for (int i = 0; i < 200; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}");
		check_err(s, buf, "nested too deeply");
	}
	tstore_free(s);
	attrs_free(at);
}

static void
test_overlay(void)
{
	struct attrs *at = make_attrs();
	_cleanup_json_ cJSON *res = cJSON_Parse(result_json);
	_cleanup_json_ cJSON *m1 = cJSON_Parse("[[\"add-triple\",\"G1\",\"a2\",\"one\"]]");
	_cleanup_json_ cJSON *m2 = cJSON_Parse("[[\"add-triple\",\"G1\",\"a3\",42]]");
	_cleanup_json_ cJSON *bad = cJSON_Parse("[[\"nope\"]]");
	_cleanup_json_ cJSON *q = cJSON_Parse("{\"goals\":{\"$\":{\"fields\":[\"title\",\"n\"]}}}");
	struct instaql_mutation muts[] = { { m1, 10 }, { m2, 0 } };
	cJSON *data = NULL, *pi = NULL;
	char *err = NULL, *s;

	CHECK(instaql_mutation_applies(0, 0));
	CHECK(instaql_mutation_applies(0, 100));
	CHECK(!instaql_mutation_applies(10, 0));
	CHECK(!instaql_mutation_applies(10, 10));
	CHECK(!instaql_mutation_applies(10, 20));
	CHECK(instaql_mutation_applies(30, 20));

	CHECK(instaql_eval_layered(at, NULL, res, muts, 2, 5, q, NULL, &data, &pi, &err) == 0);
	s = json_canonical(data);
	CHECK_STR(s, "{\"goals\":[{\"id\":\"G1\",\"n\":42,\"title\":\"one\"}]}");
	free(s);
	cJSON_Delete(data);
	CHECK(pi == NULL);
	/* the result already holds tx 10 */
	CHECK(instaql_eval_layered(at, NULL, res, muts, 2, 10, q, NULL, &data, &pi, &err) == 0);
	s = json_canonical(data);
	CHECK_STR(s, "{\"goals\":[{\"id\":\"G1\",\"n\":42,\"title\":\"x\"}]}");
	free(s);
	cJSON_Delete(data);
	/* a failing mutation fails the render, naming it */
	muts[0].tx_steps = bad;
	CHECK_INT(instaql_eval_layered(at, NULL, res, muts, 2, 5, q, NULL, &data, &pi, &err), -EINVAL);
	CHECK(err && strstr(err, "mutation 0"));
	free(err);
	err = NULL;
	/* page-info is passed through camelCased; a non-leading form needs it */
	{
		_cleanup_json_ cJSON *pinfo = cJSON_Parse("{\"goals\":{\"start-cursor\":[\"G1\",\"a1\",\"G1\",1732700000001],"
		    "\"end-cursor\":[\"G1\",\"a1\",\"G1\",1732700000001],\"has-next-page?\":false,\"has-previous-page?\":true}}");
		_cleanup_json_ cJSON *q2 = cJSON_Parse("{\"goals\":{\"$\":{\"offset\":1,\"fields\":[]}}}");
		struct instaql_opts opts = { .page_info = pinfo };

		CHECK(instaql_eval_layered(at, NULL, res, NULL, 0, 0, q2, &opts, &data, &pi, &err) == 0);
		s = json_canonical(data);
		CHECK_STR(s, "{\"goals\":[{\"id\":\"G1\"}]}");
		free(s);
		s = json_canonical(pi);
		CHECK_STR(s, "{\"goals\":{\"endCursor\":[\"G1\",\"a1\",\"G1\",1732700000001],\"hasNextPage\":false,"
		    "\"hasPreviousPage\":true,\"startCursor\":[\"G1\",\"a1\",\"G1\",1732700000001]}}");
		free(s);
		cJSON_Delete(data);
		cJSON_Delete(pi);
		CHECK(instaql_eval_layered(at, NULL, res, NULL, 0, 0, q2, NULL, &data, &pi, &err) == 0);
		s = json_canonical(data);
		CHECK_STR(s, "{\"goals\":[]}");
		free(s);
		cJSON_Delete(data);
	}
	attrs_free(at);
}

/* instaql_eval_base: one shared store, never changed; the same answers as
 * instaql_eval_layered; failing mutations fail the render or, with
 * INSTAQL_SKIP_FAILING, are left out. */
static void
test_eval_base(void)
{
	struct attrs *at = make_attrs();
	struct tstore *base = make_store(at);
	_cleanup_json_ cJSON *res = cJSON_Parse(result_json);
	_cleanup_json_ cJSON *m1 = cJSON_Parse("[[\"add-triple\",\"G1\",\"a2\",\"one\"]]");
	_cleanup_json_ cJSON *m2 = cJSON_Parse("[[\"delete-entity\",\"G1\",\"goals\"]]");
	_cleanup_json_ cJSON *bad = cJSON_Parse("[[\"nope\"]]");
	_cleanup_json_ cJSON *q = cJSON_Parse("{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}");
	_cleanup_json_ cJSON *before = tstore_to_json(base);
	struct instaql_mutation muts[] = { { m1, 0 }, { bad, 0 }, { m2, 10 } };
	cJSON *data = NULL, *d2 = NULL;
	char *err = NULL, *s1, *s2;
	size_t applied = 99;

	/* nothing applies: base itself */
	CHECK(instaql_eval_base(base, muts + 2, 1, 10, 0, q, NULL, &applied, &data, NULL, &err) == 0);
	s1 = json_canonical(data);
	CHECK_STR(s1, "{\"goals\":[{\"id\":\"G1\",\"title\":\"x\"}]}");
	CHECK(applied == 0);
	free(s1);
	cJSON_Delete(data);
	/* m1 and m2 (past processed-tx-id 5): as instaql_eval_layered */
	muts[1] = muts[2];
	CHECK(instaql_eval_base(base, muts, 2, 5, 0, q, NULL, &applied, &data, NULL, &err) == 0);
	CHECK(instaql_eval_layered(at, NULL, res, muts, 2, 5, q, NULL, &d2, NULL, &err) == 0);
	s1 = json_canonical(data);
	s2 = json_canonical(d2);
	CHECK_STR(s1, "{\"goals\":[]}");
	CHECK_STR(s1, s2);
	CHECK(applied == 2);
	free(s1);
	free(s2);
	cJSON_Delete(data);
	cJSON_Delete(d2);
	/* a failing mutation fails the render, naming it ... */
	muts[1] = (struct instaql_mutation){ bad, 0 };
	CHECK_INT(instaql_eval_base(base, muts, 2, 5, 0, q, NULL, NULL, &data, NULL, &err), -EINVAL);
	CHECK(err && strstr(err, "mutation 1"));
	free(err);
	err = NULL;
	/* ... or is left out */
	CHECK(instaql_eval_base(base, muts, 2, 5, INSTAQL_SKIP_FAILING, q, NULL, &applied, &data, NULL, &err) == 0);
	s1 = json_canonical(data);
	CHECK_STR(s1, "{\"goals\":[{\"id\":\"G1\",\"title\":\"one\"}]}");
	CHECK(applied == 1);
	free(s1);
	cJSON_Delete(data);
	/* the shared store is as it was */
	{
		_cleanup_json_ cJSON *after = tstore_to_json(base);

		CHECK(json_equal(before, after));
	}
	/* a store built from the extracted triples is the one built from the tree */
	{
		_cleanup_json_ cJSON *tr = NULL, *a = NULL, *b = NULL, *badres = cJSON_Parse("[{\"child-nodes\":7}]");
		struct tstore *s2t = NULL;

		CHECK(tstore_result_triples(res, &tr) == 0);
		CHECK(cJSON_GetArraySize(tr) == 10);	/* the unknown-attr triple kept */
		CHECK(tstore_new(at, &s2t) == 0 && tstore_add_triples(s2t, tr) == 0);
		a = tstore_to_json(base);
		b = tstore_to_json(s2t);
		CHECK(json_equal(a, b));
		tstore_free(s2t);
		CHECK_INT(tstore_result_triples(badres, &tr), -EINVAL);
	}
	tstore_free(base);
	attrs_free(at);
}

static bool
store_has_ref_to(void *ud, const char *attr_id, const char *eid)
{
	cJSON v = { .type = cJSON_String, .valuestring = (char *)eid };

	return tstore_has_av(ud, attr_id, &v);
}

static bool
store_has_entity(void *ud, const char *etype, const char *eid)
{
	return tstore_has_entity(ud, etype, eid);
}

/* An add-attr of an attr the reads' attrs hold as sent (a pending write
 * re-sending the attr it created) affects only the queries that read it,
 * also over a store built before the attr existed. q1 reads goals.title
 * (a2) only; q2 todos with a where on goals.n; q3 goals with every field. */
static void
test_reads_held_attr(const struct attrs *at, const struct query_reads *r1,
    const struct query_reads *r2, const struct query_reads *r3)
{
	static const char *color = "{\"id\":\"a9\",\"forward-identity\":[\"i9\",\"goals\",\"color\"],"
	    "\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":false,\"index?\":false}";
	_cleanup_free_ char *steps_text = NULL, *title_text = NULL, *other_text = NULL, *a2_text = NULL;
	_cleanup_json_ cJSON *steps = NULL, *title = NULL, *other = NULL, *ca = NULL, *q1 = NULL, *q2 = NULL, *q3 = NULL;
	struct query_reads *n1 = NULL, *n2 = NULL, *n3 = NULL;
	struct query_reads_filter f;
	struct attrs *with = NULL;
	struct tstore *before;

	/* a2 exactly as held: only q1 and q3 read it */
	a2_text = json_print(attrs_by_id(at, "a2"));
	CHECK(a2_text && asprintf(&title_text, "[[\"add-attr\",%s]]", a2_text) > 0);
	title = cJSON_Parse(title_text);
	CHECK(!query_reads_affected(r2, title, NULL, NULL));
	CHECK(query_reads_affected(r1, title, NULL, NULL) && query_reads_affected(r3, title, NULL, NULL));
	CHECK(query_reads_steps_filter(title, at, &f) && !query_reads_may_touch(r2, &f) &&
	    query_reads_may_touch(r1, &f));
	/* a2 changed: every query */
	CHECK(asprintf(&other_text, "[[\"add-attr\",{\"id\":\"a2\",\"forward-identity\":[\"i2\",\"goals\",\"name\"],"
	    "\"value-type\":\"blob\",\"cardinality\":\"one\"}]]") > 0);
	other = cJSON_Parse(other_text);
	CHECK(query_reads_affected(r2, other, NULL, NULL));
	CHECK(!query_reads_steps_filter(other, at, &f));

	/* goals.color, new to the store, held by the attrs the reads are computed from */
	ca = cJSON_Parse(color);
	CHECK(attrs_dup(at, &with) == 0 && attrs_add(with, ca) == 0);
	q1 = cJSON_Parse("{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}");
	q2 = cJSON_Parse("{\"todos\":{\"$\":{\"where\":{\"goals.n\":3}}}}");
	q3 = cJSON_Parse("{\"goals\":{\"todos\":{}}}");
	CHECK(query_reads_new(with, q1, NULL, &n1) == 0 && query_reads_new(with, q2, NULL, &n2) == 0 &&
	    query_reads_new(with, q3, NULL, &n3) == 0);
	CHECK(asprintf(&steps_text, "[[\"add-attr\",%s],[\"add-triple\",\"G1\",\"a9\",\"red\"]]", color) > 0);
	steps = cJSON_Parse(steps_text);
	CHECK(!query_reads_affected(n1, steps, NULL, NULL) && !query_reads_affected(n2, steps, NULL, NULL));
	CHECK(query_reads_affected(n3, steps, NULL, NULL));
	before = make_store((struct attrs *)at);
	{
		_cleanup_free_ char *b1 = eval_str(before, "{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}");
		_cleanup_free_ char *b2 = eval_str(before, "{\"todos\":{\"$\":{\"where\":{\"goals.n\":3}}}}");
		_cleanup_free_ char *b3 = eval_str(before, "{\"goals\":{\"todos\":{}}}");
		_cleanup_free_ char *a1 = NULL, *a2 = NULL, *a3 = NULL;

		CHECK(tstore_apply_steps(before, steps, NULL) == 0);
		a1 = eval_str(before, "{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}");
		a2 = eval_str(before, "{\"todos\":{\"$\":{\"where\":{\"goals.n\":3}}}}");
		a3 = eval_str(before, "{\"goals\":{\"todos\":{}}}");
		CHECK_STR(a1, b1);
		CHECK_STR(a2, b2);
		CHECK(strcmp(a3, b3) != 0 && strstr(a3, "red") != NULL);
	}
	tstore_free(before);
	query_reads_free(n1);
	query_reads_free(n2);
	query_reads_free(n3);
	attrs_free(with);
}

/* query_reads: what a query reads, and the predicate on a few steps (the
 * property over the corpus is engine/reads.mjs). */
static void
test_reads(void)
{
	struct attrs *at = make_attrs();
	_cleanup_json_ cJSON *q1 = cJSON_Parse("{\"goals\":{\"$\":{\"fields\":[\"title\"]}}}");
	_cleanup_json_ cJSON *q2 = cJSON_Parse("{\"todos\":{\"$\":{\"where\":{\"goals.n\":3}}}}");
	_cleanup_json_ cJSON *q3 = cJSON_Parse("{\"goals\":{\"todos\":{}}}");
	struct query_reads *r1 = NULL, *r2 = NULL, *r3 = NULL;
	static const struct {
		const char *steps;
		bool a1, a2, a3;	/* affects q1, q2, q3 */
	} cases[] = {
		{ "[[\"add-triple\",\"G1\",\"a3\",4]]", false, true, true },
		{ "[[\"add-triple\",\"G1\",\"a2\",\"t\"]]", true, false, true },
		{ "[[\"add-triple\",\"T1\",\"a5\",\"t\"]]", false, true, true },
		{ "[[\"retract-triple\",\"G1\",\"a6\",\"T1\"]]", false, true, true },
		{ "[[\"add-triple\",[\"a2\",\"x\"],\"a5\",\"t\"]]", false, true, true },
		{ "[[\"delete-entity\",\"T1\",\"todos\"]]", false, true, true },
		{ "[[\"delete-entity\",\"T1\"]]", true, true, true },
		{ "[[\"add-triple\",\"G1\",\"no-such-attr\",1]]", true, true, true },
		{ "[[\"deep-merge-triple\",\"G1\",\"a6\",{}]]", true, true, true },
		{ "[[\"add-attr\",{\"id\":\"a9\"}]]", true, true, true },
		{ "[[\"rule-params\",\"G1\",\"goals\",{}]]", false, false, false },
		{ "[[\"frob\"]]", true, true, true },
		{ "{}", true, true, true },
	};

	CHECK(query_reads_new(at, q1, NULL, &r1) == 0);
	CHECK(query_reads_new(at, q2, NULL, &r2) == 0);
	CHECK(query_reads_new(at, q3, NULL, &r3) == 0);
	{
		_cleanup_json_ cJSON *arr = cJSON_Parse("[]");
		struct query_reads *rx = NULL;

		CHECK_INT(query_reads_new(at, arr, NULL, &rx), -EINVAL);
	}
	CHECK(query_reads_attr(r1, "a1") && query_reads_attr(r1, "a2") && !query_reads_attr(r1, "a3"));
	CHECK(query_reads_attr(r2, "a6") && query_reads_attr(r2, "a3") && !query_reads_attr(r2, "a2"));
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_json_ cJSON *st = cJSON_Parse(cases[i].steps);

		CHECK(st != NULL);
		CHECK(query_reads_affected(r1, st, NULL, NULL) == cases[i].a1);
		CHECK(query_reads_affected(r2, st, NULL, NULL) == cases[i].a2);
		CHECK(query_reads_affected(r3, st, NULL, NULL) == cases[i].a3);
	}
	/* by entity: q1 shows G1 only, and fills objects with a2 */
	{
		struct tstore *s = make_store(at);
		struct instaql_shown sh = {0};
		struct instaql_opts opts = { .shown = &sh };
		_cleanup_json_ cJSON *other = cJSON_Parse("[[\"add-triple\",\"G2\",\"a2\",\"t\"]]");
		_cleanup_json_ cJSON *mine = cJSON_Parse("[[\"add-triple\",\"G1\",\"a2\",\"t\"]]");
		_cleanup_json_ cJSON *look = cJSON_Parse("[[\"add-triple\",[\"a2\",\"z\"],\"a2\",\"t\"]]");
		_cleanup_json_ cJSON *kids = cJSON_Parse("[[\"add-triple\",\"T1\",\"a5\",\"t\"]]");
		_cleanup_json_ cJSON *w = cJSON_Parse("[[\"add-triple\",\"G2\",\"a3\",3]]");
		cJSON *data = NULL;

		CHECK(instaql_eval_opts(s, q1, &opts, &data, NULL, NULL) == 0);
		cJSON_Delete(data);
		CHECK(sh.n == 1 && instaql_shown_has(&sh, "G1") && !instaql_shown_has(&sh, "G2"));
		CHECK(query_reads_affected(r1, other, NULL, NULL));
		CHECK(!query_reads_affected(r1, other, &sh, NULL));
		CHECK(query_reads_affected(r1, mine, &sh, NULL));
		CHECK(query_reads_affected(r1, look, &sh, NULL));
		/* q3 shows the goal and its todos; q2's where makes a3 structural */
		CHECK(instaql_eval_opts(s, q3, &opts, &data, NULL, NULL) == 0);
		cJSON_Delete(data);
		CHECK(sh.n == 3 && instaql_shown_has(&sh, "T1") && instaql_shown_has(&sh, "T2"));
		CHECK(query_reads_affected(r3, kids, &sh, NULL));
		/* todos only under goals: an update of a todo that is neither shown
		 * nor linked leaves q3 alone, judged by the store it is layered on */
		{
			const struct query_reads_store st = { .has_ref_to = store_has_ref_to,
			    .has_entity = store_has_entity, .ud = s };
			_cleanup_json_ cJSON *upd9 = cJSON_Parse("[[\"add-triple\",\"T9\",\"a4\",\"T9\"],"
			    "[\"add-triple\",\"T9\",\"a5\",\"z\"]]");
			_cleanup_json_ cJSON *upd1 = cJSON_Parse("[[\"add-triple\",\"T1\",\"a4\",\"T1\"]]");
			_cleanup_json_ cJSON *link9 = cJSON_Parse("[[\"add-triple\",\"G1\",\"a6\",\"T9\"]]");
			_cleanup_json_ cJSON *g9 = cJSON_Parse("[[\"add-triple\",\"G9\",\"a1\",\"G9\"]]");

			CHECK(!query_reads_affected(r3, upd9, &sh, &st));
			CHECK(query_reads_affected(r3, upd9, &sh, NULL));
			CHECK(query_reads_affected(r3, upd9, NULL, &st));
			CHECK(query_reads_affected(r3, upd1, &sh, &st));
			CHECK(query_reads_affected(r3, g9, &sh, &st));	/* goals is a namespace */
			CHECK(tstore_apply_steps(s, link9, NULL) == 0);
			CHECK(query_reads_affected(r3, upd9, &sh, &st));	/* now linked */
		}
		CHECK(instaql_eval_opts(s, q2, &opts, &data, NULL, NULL) == 0);
		cJSON_Delete(data);
		CHECK(query_reads_affected(r2, w, &sh, NULL));
		instaql_shown_clear(&sh);
		tstore_free(s);
	}
	test_reads_held_attr(at, r1, r2, r3);
	query_reads_free(r1);
	query_reads_free(r2);
	query_reads_free(r3);
	attrs_free(at);
}

/* ---- random input: never a crash, only 0 or -EINVAL with a message ---- */

static uint64_t fz_state = 0x1234567887654321ULL;

static unsigned
fz(unsigned n)
{
	fz_state = fz_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((fz_state >> 33) % n);
}

static const char *const fz_words[] = {
	"goals", "todos", "title", "n", "text", "$", "where", "order", "limit", "first", "last",
	"offset", "after", "before", "fields", "or", "and", "$in", "in", "$not", "$ne", "$isNull",
	"$gt", "$gte", "$lt", "$lte", "$like", "$ilike", "todos.text", "goals.title", "id",
	"$entityIdStartsWith", "aggregate", "asc", "desc", "x", "%", "_a%", "?x", "G1", "T1", "a2",
	"todos.goals.todos.text", "title.x", "", "serverCreatedAt", "$$ruleParams",
};

static cJSON *
fz_value(int depth)
{
	unsigned k = depth > 5 ? fz(5) : fz(9);
	cJSON *v;

	switch (k) {
	case 0: return cJSON_CreateNull();
	case 1: return cJSON_CreateBool(fz(2));
	case 2: return cJSON_CreateNumber((double)((int)fz(2000) - 1000) / (fz(3) ? 1 : 7));
	case 3: case 4: return cJSON_CreateString(fz_words[fz(ELEMENTSOF(fz_words))]);
	case 5: case 6:
		v = cJSON_CreateArray();
		for (unsigned i = fz(4); i > 0; i--)
			cJSON_AddItemToArray(v, fz_value(depth + 1));
		return v;
	default:
		v = cJSON_CreateObject();
		for (unsigned i = fz(4); i > 0; i--)
			cJSON_AddItemToObject(v, fz_words[fz(ELEMENTSOF(fz_words))], fz_value(depth + 1));
		return v;
	}
}

static void
test_fuzz(void)
{
	struct attrs *at = make_attrs();
	struct tstore *s = make_store(at);
	static const char *const actions[] = {
		"add-triple", "deep-merge-triple", "retract-triple", "delete-entity", "add-attr",
		"update-attr", "delete-attr", "restore-attr", "rule-params", "bogus",
	};
	static const char *const ids[] = { "G1", "T1", "T2", "a1", "a2", "a3", "a4", "a5", "a6", "goals", "todos" };
	int ok = 0, inval = 0, other = 0;

	for (int i = 0; i < 20000; i++) {
		cJSON *q = cJSON_CreateObject(), *data = NULL, *pi = NULL;
		char *err = NULL;
		int r;

		for (unsigned k = 1 + fz(2); k > 0; k--)
			cJSON_AddItemToObject(q, fz(3) ? (fz(2) ? "goals" : "todos") : fz_words[fz(ELEMENTSOF(fz_words))],
			    fz(6) ? fz_value(1) : cJSON_CreateObject());
		r = instaql_eval(s, q, &data, &pi, &err);
		if (r == 0)
			ok++;
		else if (r == -EINVAL && err != NULL)
			inval++;
		else
			other++;
		cJSON_Delete(q);
		cJSON_Delete(data);
		cJSON_Delete(pi);
		free(err);
	}
	CHECK_INT(other, 0);
	CHECK(ok > 1000 && inval > 1000);
	fprintf(stderr, "# random queries: %d evaluated, %d rejected\n", ok, inval);
	for (int i = 0; i < 3000; i++) {
		struct tstore *d = NULL;
		cJSON *steps = cJSON_CreateArray(), *data = NULL;
		_cleanup_json_ cJSON *q = cJSON_Parse("{\"goals\":{\"todos\":{}},\"todos\":{\"goals\":{}}}");
		char *err = NULL;
		int r;

		CHECK(tstore_dup(s, &d) == 0);
		for (unsigned k = 1 + fz(5); k > 0; k--) {
			cJSON *st = cJSON_CreateArray();

			cJSON_AddItemToArray(st, cJSON_CreateString(actions[fz(ELEMENTSOF(actions))]));
			for (unsigned j = fz(5); j > 0; j--)
				cJSON_AddItemToArray(st, fz(2) ? cJSON_CreateString(ids[fz(ELEMENTSOF(ids))]) : fz_value(3));
			cJSON_AddItemToArray(steps, st);
		}
		r = tstore_apply_steps(d, steps, &err);
		CHECK(r == 0 || (r == -EINVAL && err != NULL));
		free(err);
		err = NULL;
		r = instaql_eval(d, q, &data, NULL, &err);
		CHECK(r == 0);
		cJSON_Delete(data);
		free(err);
		cJSON_Delete(steps);
		tstore_free(d);
	}
	tstore_free(s);
	attrs_free(at);
}

int
main(void)
{
	test_build();
	test_empty_dup();
	test_steps();
	test_errors();
	test_overlay();
	test_eval_base();
	test_reads();
	test_fuzz();
	return tap_done();
}
