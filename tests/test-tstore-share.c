/* Unit test of what lets the daemon hold a result once (store/tstore.c): a
 * store's log of the triples it was built from, which the mirror is printed
 * from and a store over other attrs is rebuilt from; the value table several
 * stores intern into. */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "store/attrs.h"
#include "store/tstore.h"
#include "store/util.h"
#include "tests/tap.h"

#define ATTR(id, label) "{\"id\":\"" id "\",\"forward-identity\":[\"f-" id "\",\"users\",\"" \
	label "\"],\"value-type\":\"blob\",\"cardinality\":\"one\"}"

static struct attrs *
attrs_of(const char *json)
{
	_cleanup_json_ cJSON *list = cJSON_Parse(json);
	struct attrs *a = attrs_new();

	if (a == NULL || list == NULL || attrs_set_all(a, list) < 0) {
		attrs_free(a);
		return NULL;
	}
	return a;
}

static bool
same_json(cJSON *a, const cJSON *b)
{
	bool eq = a && b && cJSON_Compare(a, b, true);

	cJSON_Delete(a);
	return eq;
}

/* The log: every added triple in add order, those of an unknown attr and
 * those a repeat replaced included, read back as it was added. */
static void
test_log(void)
{
	static const char triples_json[] =
	    "[[\"u1\",\"a-name\",\"Ann\",1],[\"u1\",\"a-age\",3,1],[\"u1\",\"a-name\",\"Ann\",2],"
	    "[\"u2\",\"a-name\",{\"x\":[1]}],[\"u3\",\"a-name\"],[\"bad\"],[\"u4\",7,1]]";
	static const char logged_json[] =
	    "[[\"u1\",\"a-name\",\"Ann\",1],[\"u1\",\"a-age\",3,1],[\"u1\",\"a-name\",\"Ann\",2],"
	    "[\"u2\",\"a-name\",{\"x\":[1]}],[\"u3\",\"a-name\"]]";
	_cleanup_json_ cJSON *triples = cJSON_Parse(triples_json), *logged = cJSON_Parse(logged_json);
	_cleanup_json_ cJSON *out = NULL, *steps = cJSON_Parse("[[\"add-triple\",\"u9\",\"a-name\",\"Z\"]]");
	struct attrs *one = attrs_of("[" ATTR("a-name", "name") "]");
	struct attrs *two = attrs_of("[" ATTR("a-name", "name") "," ATTR("a-age", "age") "]");
	struct tstore *s = NULL, *d = NULL, *direct = NULL, *stepped = NULL;

	CHECK(one && two && triples && logged && steps);
	CHECK_INT(tstore_new(one, &s), 0);
	CHECK_INT(tstore_add_triples(s, triples), 0);
	CHECK_INT(tstore_count(s), 3);	/* the age is not known, the repeat replaced */
	CHECK_INT(tstore_added_triples(s, &out), 0);
	CHECK(cJSON_Compare(out, logged, true));

	/* Trimmed, it holds the same and still grows. */
	{
		_cleanup_json_ cJSON *before = tstore_to_json(s), *more = cJSON_Parse(
		    "[[\"u7\",\"a-name\",\"Ed\"],[\"u1\",\"a-name\",\"Al\"]]");
		struct tstore *t = NULL;

		tstore_trim(s);
		CHECK(same_json(tstore_to_json(s), before));
		CHECK_INT(tstore_dup(s, &t), 0);
		tstore_trim(t);
		CHECK_INT(tstore_add_triples(t, more), 0);
		CHECK_INT(tstore_count(t), 5);
		CHECK_INT(tstore_count(s), 3);
		tstore_free(t);
	}

	/* Rebuilt over more attrs, the age counts: as if built from the triples. */
	CHECK_INT(tstore_new(two, &d), 0);
	CHECK_INT(tstore_add_store(d, s), 0);
	CHECK_INT(tstore_new(two, &direct), 0);
	CHECK_INT(tstore_add_triples(direct, triples), 0);
	CHECK_INT(tstore_count(d), 4);
	{
		_cleanup_json_ cJSON *want = tstore_to_json(direct);

		CHECK(same_json(tstore_to_json(d), want));
	}
	CHECK(tstore_has_av(d, "a-age", cJSON_GetArrayItem(cJSON_GetArrayItem(triples, 1), 2)));
	/* The log of the rebuilt store is the same log. */
	cJSON_Delete(out);
	out = NULL;
	CHECK_INT(tstore_added_triples(d, &out), 0);
	CHECK(cJSON_Compare(out, logged, true));

	/* A store that took steps no longer knows what it was built from. */
	CHECK_INT(tstore_dup(s, &stepped), 0);
	CHECK_INT(tstore_apply_steps(stepped, steps, NULL), 0);
	CHECK_INT(tstore_add_store(d, stepped), -EINVAL);
	cJSON_Delete(out);
	out = NULL;
	CHECK_INT(tstore_added_triples(stepped, &out), -EINVAL);
	/* ... while the store it was copied from still does. */
	CHECK_INT(tstore_added_triples(s, &out), 0);
	CHECK(cJSON_Compare(out, logged, true));

	tstore_free(stepped);
	tstore_free(direct);
	tstore_free(d);
	tstore_free(s);
	attrs_free(two);
	attrs_free(one);
}

/* Two stores over one table hold a shared value once; each holds what it
 * uses until it goes, and the table is empty when both have gone. */
static void
test_values(void)
{
	_cleanup_json_ cJSON *t1 = cJSON_Parse(
	    "[[\"u1\",\"a-name\",\"Ann\",1],[\"u1\",\"a-age\",3,1],[\"u2\",\"a-name\",{\"o\":1},1]]");
	_cleanup_json_ cJSON *t2 = cJSON_Parse(
	    "[[\"u1\",\"a-name\",\"Ann\",1],[\"u3\",\"a-name\",\"Cy\",1],[\"u2\",\"a-name\",{\"o\":1},1]]");
	_cleanup_json_ cJSON *steps = cJSON_Parse(
	    "[[\"add-triple\",\"u9\",\"a-name\",\"Zed\"],[\"retract-triple\",\"u1\",\"a-name\",\"Ann\"]]");
	_cleanup_json_ cJSON *before = NULL, *ann = cJSON_CreateString("Ann"), *cy = cJSON_CreateString("Cy");
	_cleanup_json_ cJSON *zed = cJSON_CreateString("Zed");
	struct attrs *attrs = attrs_of("[" ATTR("a-name", "name") "," ATTR("a-age", "age") "]");
	struct tstore_values *vt = NULL;
	struct tstore *a = NULL, *b = NULL, *d = NULL, *own = NULL;
	size_t n_attrs, n_a, n_own;

	CHECK(attrs && t1 && t2 && steps && ann && cy && zed);
	CHECK_INT(tstore_values_new(&vt), 0);
	CHECK_INT(tstore_values_count(vt), 0);
	CHECK_INT(tstore_new_shared(vt, attrs, &a), 0);
	/* attr ids, etype and labels */
	n_attrs = tstore_values_count(vt);
	CHECK_INT(n_attrs, 5);
	CHECK_INT(tstore_add_triples(a, t1), 0);
	/* u1, Ann, 1, 3, u2, the object */
	n_a = tstore_values_count(vt);
	CHECK_INT(n_a, n_attrs + 6);
	/* The same store with a table of its own holds as many values. */
	CHECK_INT(tstore_new(attrs, &own), 0);
	CHECK_INT(tstore_add_triples(own, t1), 0);

	/* b adds u3 and Cy; u1, Ann, 1, the attrs are a's values; its object
	 * is another occurrence (objects are identities). */
	CHECK_INT(tstore_new_shared(vt, attrs, &b), 0);
	CHECK_INT(tstore_values_count(vt), n_a);
	CHECK_INT(tstore_add_triples(b, t2), 0);
	CHECK_INT(tstore_values_count(vt), n_a + 3);
	before = tstore_to_json(b);

	/* A copy taking steps interns into the same table; what it added goes with it. */
	CHECK_INT(tstore_dup(b, &d), 0);
	CHECK_INT(tstore_values_count(vt), n_a + 3);
	CHECK_INT(tstore_apply_steps(d, steps, NULL), 0);
	CHECK(tstore_has_av(d, "a-name", zed) && !tstore_has_av(d, "a-name", ann));
	CHECK(tstore_values_count(vt) > n_a + 3);
	tstore_free(d);
	CHECK_INT(tstore_values_count(vt), n_a + 3);
	CHECK(tstore_has_av(b, "a-name", ann) && !tstore_has_av(b, "a-name", zed));

	/* Freeing a leaves b whole and releases what only a held (3 and its object). */
	tstore_free(a);
	CHECK_INT(tstore_values_count(vt), n_a + 1);
	CHECK(same_json(tstore_to_json(b), before));
	CHECK(tstore_has_av(b, "a-name", ann) && tstore_has_av(b, "a-name", cy));
	CHECK(tstore_has_entity(b, "users", "u1") && !tstore_has_entity(b, "users", "u9"));

	/* A value released and interned again is found again. */
	{
		_cleanup_json_ cJSON *t3 = cJSON_Parse("[[\"u5\",\"a-age\",3,1]]");
		_cleanup_json_ cJSON *three = cJSON_CreateNumber(3);
		struct tstore *c = NULL;

		CHECK_INT(tstore_new_shared(vt, attrs, &c), 0);
		CHECK_INT(tstore_add_triples(c, t3), 0);
		CHECK(tstore_has_av(c, "a-age", three) && !tstore_has_av(b, "a-age", three));
		tstore_free(c);
		CHECK_INT(tstore_values_count(vt), n_a + 1);
	}

	/* Two stores that are not copies of each other hold u1's name as one
	 * value; a write to it in one leaves the other's as it was. */
	{
		_cleanup_json_ cJSON *t4 = cJSON_Parse("[[\"u1\",\"a-name\",\"Ann\",1]]");
		_cleanup_json_ cJSON *rename = cJSON_Parse("[[\"add-triple\",\"u1\",\"a-name\",\"Bea\"]]");
		_cleanup_json_ cJSON *y_before = NULL, *bea = cJSON_CreateString("Bea");
		struct tstore *x = NULL, *y = NULL;
		size_t n0;

		CHECK(t4 && rename && bea);
		n0 = tstore_values_count(vt);
		CHECK_INT(tstore_new_shared(vt, attrs, &x), 0);
		CHECK_INT(tstore_new_shared(vt, attrs, &y), 0);
		CHECK_INT(tstore_add_triples(x, t4), 0);
		CHECK_INT(tstore_add_triples(y, t4), 0);
		CHECK_INT(tstore_values_count(vt), n0);	/* u1, Ann, 1: b's already */
		y_before = tstore_to_json(y);
		CHECK_INT(tstore_apply_steps(x, rename, NULL), 0);
		CHECK(tstore_has_av(x, "a-name", bea) && !tstore_has_av(x, "a-name", ann));
		CHECK(tstore_has_av(y, "a-name", ann) && !tstore_has_av(y, "a-name", bea));
		CHECK(same_json(tstore_to_json(y), y_before));
		CHECK(tstore_has_av(b, "a-name", ann));
		tstore_free(x);
		CHECK_INT(tstore_values_count(vt), n0);	/* Bea went with x */
		CHECK(same_json(tstore_to_json(y), y_before));
		tstore_free(y);
		CHECK_INT(tstore_values_count(vt), n0);
	}

	tstore_free(b);
	CHECK_INT(tstore_values_count(vt), 0);
	/* The store with its own table is untouched by all of that. */
	CHECK(tstore_has_av(own, "a-name", ann));
	n_own = tstore_count(own);
	CHECK_INT(n_own, 3);
	tstore_free(own);
	tstore_values_unref(vt);
	attrs_free(attrs);
}

int
main(void)
{
	test_log();
	test_values();
	return tap_done();
}
