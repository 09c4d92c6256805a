/* Unit test of what lets the daemon hold a result once (store/tstore.c): a
 * store's log of the triples it was built from, which the mirror is printed
 * from and a store over other attrs is rebuilt from. */
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

	/* Rebuilt over more attrs, the age counts: as if built from the triples. */
	CHECK_INT(tstore_new(two, &d), 0);
	CHECK_INT(tstore_add_store(d, s), 0);
	CHECK_INT(tstore_new(two, &direct), 0);
	CHECK_INT(tstore_add_triples(direct, triples), 0);
	CHECK_INT(tstore_count(d), 4);
	CHECK(same_json(tstore_to_json(d), tstore_to_json(direct)));
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

int
main(void)
{
	test_log();
	return tap_done();
}
