/* Unit test of the attr registry (store/attrs.c): lookups by id and identity,
 * replacement, update, removal, and many attrs staying fast enough to use. */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "store/attrs.h"
#include "store/util.h"
#include "tests/tap.h"

static cJSON *
attr(int i, const char *etype, const char *label)
{
	char json[512];

	snprintf(json, sizeof(json),
	    "{\"id\":\"a-%d\",\"forward-identity\":[\"f-%d\",\"%s\",\"%s\"],"
	    "\"reverse-identity\":[\"r-%d\",\"%s\",\"%s-rev\"],\"value-type\":\"ref\","
	    "\"cardinality\":\"one\",\"unique?\":true,\"index?\":false}",
	    i, i, etype, label, i, label, etype);
	return cJSON_Parse(json);
}

int
main(void)
{
	struct attrs *a = attrs_new(), *d = NULL;
	_cleanup_json_ cJSON *list = cJSON_CreateArray(), *bad = cJSON_Parse("[{\"no\":\"id\"}]");
	_cleanup_json_ cJSON *upd = cJSON_Parse("{\"id\":\"a-7\",\"index?\":true}");
	_cleanup_json_ cJSON *out = NULL;
	char label[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(label, sizeof(label), "l%d", i);
		cJSON_AddItemToArray(list, attr(i, "things", label));
	}
	CHECK_INT(attrs_set_all(a, list), 0);
	CHECK_INT(attrs_count(a), 20000);
	CHECK_STR(attr_fwd_label(attrs_by_id(a, "a-19999")), "l19999");
	CHECK(attrs_by_id(a, "a-20000") == NULL);
	CHECK_STR(attr_id(attrs_by_fwd(a, "things", "l5")), "a-5");
	CHECK_STR(attr_id(attrs_by_rev(a, "l5", "things-rev")), "a-5");
	CHECK(attr_is_ref(attrs_by_id(a, "a-5")) && attr_card_one(attrs_by_id(a, "a-5")) &&
	    attr_unique(attrs_by_id(a, "a-5")) && !attr_indexed(attrs_by_id(a, "a-5")));

	CHECK_INT(attrs_update(a, upd), 0);
	CHECK(attr_indexed(attrs_by_id(a, "a-7")));
	CHECK_INT(attrs_update(a, cJSON_GetArrayItem(bad, 0)), -ENOENT);

	/* Replacing by id keeps one entry; removal keeps every other lookup right. */
	{
		_cleanup_json_ cJSON *x = attr(3, "other", "moved");

		CHECK_INT(attrs_add(a, x), 0);
	}
	CHECK_INT(attrs_count(a), 20000);
	CHECK_STR(attr_fwd_etype(attrs_by_id(a, "a-3")), "other");
	CHECK_INT(attrs_remove(a, "a-10"), 0);
	CHECK_INT(attrs_remove(a, "a-10"), -ENOENT);
	CHECK(attrs_by_id(a, "a-10") == NULL);
	CHECK_STR(attr_fwd_label(attrs_by_id(a, "a-11")), "l11");
	CHECK_STR(attr_fwd_label(attrs_by_id(a, "a-19999")), "l19999");

	CHECK_INT(attrs_dup(a, &d), 0);
	CHECK_INT(attrs_count(d), 19999);
	CHECK_STR(attr_fwd_label(attrs_by_id(d, "a-12345")), "l12345");
	out = attrs_to_json(d);
	CHECK_INT(cJSON_GetArraySize(out), 19999);

	/* A bad list changes nothing. */
	CHECK_INT(attrs_set_all(d, bad), -EINVAL);
	CHECK_INT(attrs_count(d), 19999);
	attrs_free(d);
	attrs_free(a);
	attrs_free(NULL);
	return tap_done();
}
