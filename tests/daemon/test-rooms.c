/* Unit test of presence patches (daemon/rooms.c): the server's editscript edits
 * applied to a room's peers map as the JS client applies them. */
#include "config.h"

#include "daemon/rooms.h"
#include "store/util.h"
#include "tests/tap.h"

static void
expect(const char *peers_json, const char *edits_json, const char *want_json, int want_r)
{
	_cleanup_json_ cJSON *peers = cJSON_Parse(peers_json);
	_cleanup_json_ cJSON *edits = cJSON_Parse(edits_json);
	_cleanup_json_ cJSON *want = cJSON_Parse(want_json);
	_cleanup_free_ char *got = NULL, *exp = NULL;
	int r = rooms_apply_edits(peers, edits);

	CHECK_INT(r, want_r);
	got = json_canonical(peers);
	exp = json_canonical(want);
	CHECK_STR(got, exp);
}

int
main(void)
{
	/* The server tests' examples (protocol.md 8.4). */
	expect("{\"s1\":{\"peer-id\":\"s1\",\"data\":{}}}",
	    "[[[\"s1\",\"data\"],\"r\",{\"a\":\"a\",\"d\":\"d\",\"e\":\"e\"}]]",
	    "{\"s1\":{\"peer-id\":\"s1\",\"data\":{\"a\":\"a\",\"d\":\"d\",\"e\":\"e\"}}}", 0);
	expect("{\"s1\":{\"data\":{\"a\":\"a\",\"d\":\"d\",\"e\":\"e\"}}}",
	    "[[[\"s1\",\"data\",\"d\"],\"-\"],[[\"s1\",\"data\",\"e\"],\"r\",\"E\"],[[\"s1\",\"data\",\"f\"],\"+\",\"F\"]]",
	    "{\"s1\":{\"data\":{\"a\":\"a\",\"e\":\"E\",\"f\":\"F\"}}}", 0);
	expect("{\"s1\":{\"data\":{}}}",
	    "[[[\"s2\"],\"+\",{\"data\":{},\"peer-id\":\"s2\",\"user\":null}]]",
	    "{\"s1\":{\"data\":{}},\"s2\":{\"data\":{},\"peer-id\":\"s2\",\"user\":null}}", 0);
	expect("{\"s1\":{\"data\":{}},\"s2\":{\"data\":{}}}", "[[[\"s2\"],\"-\"]]",
	    "{\"s1\":{\"data\":{}}}", 0);
	/* Nested values, array inserts by index, and intermediate objects created on the way. */
	expect("{\"s1\":{\"data\":{\"cursor\":{\"x\":1}}}}",
	    "[[[\"s1\",\"data\",\"cursor\",\"x\"],\"r\",5],[[\"s3\",\"data\",\"tags\"],\"+\",[\"a\",\"c\"]],"
	    "[[\"s3\",\"data\",\"tags\",1],\"+\",\"b\"],[[\"s3\",\"data\",\"tags\",0],\"-\"]]",
	    "{\"s1\":{\"data\":{\"cursor\":{\"x\":5}}},\"s3\":{\"data\":{\"tags\":[\"b\",\"c\"]}}}", 0);
	/* An empty path is ignored; malformed edits are refused without a crash. */
	expect("{\"s1\":{}}", "[[[],\"r\",1]]", "{\"s1\":{}}", 0);
	expect("{\"s1\":{}}", "[[[\"s1\"],\"?\",1]]", "{\"s1\":{}}", -EINVAL);
	expect("{\"s1\":{}}", "[[\"s1\",\"r\",1]]", "{\"s1\":{}}", -EINVAL);
	expect("{\"s1\":{}}", "{\"not\":\"edits\"}", "{\"s1\":{}}", -EINVAL);
	return tap_done();
}
