/* Unit tests of store/instaml.c: refusal of malformed ops, the mode
 * callbacks, instaml_new_attrs, instaml_rewrite(_queue) and
 * instaml_validate_steps. The transform's agreement with @instantdb/core is
 * tested by diff.mjs. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "store/attrs.h"
#include "store/instaml.h"
#include "store/util.h"
#include "tests/tap.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define A_ID "aaaaaaaa-0000-4000-8000-000000000001"
#define A_HANDLE "aaaaaaaa-0000-4000-8000-000000000002"
#define A_LINK "aaaaaaaa-0000-4000-8000-000000000003"
#define A_NAME "aaaaaaaa-0000-4000-8000-000000000004"
#define X1 "bbbbbbbb-0000-4000-8000-000000000001"
#define X2 "bbbbbbbb-0000-4000-8000-000000000002"
#define X3 "bbbbbbbb-0000-4000-8000-000000000003"
#define I1 "cccccccc-0000-4000-8000-000000000001"

/* users.id, users.handle (unique), users.posts -> posts.author, users.name */
static const char server_attrs_json[] =
	"[{\"id\":\"" A_ID "\",\"forward-identity\":[\"" I1 "\",\"users\",\"id\"],"
	"\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
	"{\"id\":\"" A_HANDLE "\",\"forward-identity\":[\"" I1 "\",\"users\",\"handle\"],"
	"\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":true,\"index?\":true},"
	"{\"id\":\"" A_LINK "\",\"forward-identity\":[\"" I1 "\",\"users\",\"posts\"],"
	"\"reverse-identity\":[\"" I1 "\",\"posts\",\"author\"],"
	"\"value-type\":\"ref\",\"cardinality\":\"many\",\"unique?\":false,\"index?\":false},"
	"{\"id\":\"" A_NAME "\",\"forward-identity\":[\"" I1 "\",\"users\",\"name\"],"
	"\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":false,\"index?\":false}]";

static struct attrs *
server_attrs(void)
{
	struct attrs *a = attrs_new();
	cJSON *list = cJSON_Parse(server_attrs_json);

	if (a == NULL || list == NULL || attrs_set_all(a, list) < 0)
		abort();
	cJSON_Delete(list);
	return a;
}

static cJSON *
parse(const char *s)
{
	cJSON *j = cJSON_Parse(s);

	if (j == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", s);
		abort();
	}
	return j;
}

/* Transform `ops` and expect -EINVAL with an error that has both parts. */
static void
refused(const struct attrs *a, const char *ops, const char *where, const char *problem)
{
	_cleanup_json_ cJSON *j = parse(ops);
	cJSON *steps = (cJSON *)0x1;	/* must stay untouched */
	_cleanup_free_ char *err = NULL;
	int r = instaml_transform(a, j, NULL, &steps, &err);

	CHECK_INT(r, -EINVAL);
	CHECK(steps == (cJSON *)0x1);
	CHECK(err != NULL);
	if (err == NULL)
		return;
	if (strstr(err, where) == NULL || strstr(err, problem) == NULL) {
		fprintf(stderr, "  for %s: got \"%s\", want \"%s\" and \"%s\"\n", ops, err, where, problem);
		CHECK(false);
	}
}

static void
test_malformed_ops(void)
{
	struct attrs *a = server_attrs();
	const char *ok = "[\"update\",\"users\",\"" U1 "\",{\"name\":\"x\"}]";
	char buf[512];

	refused(a, "{}", "", "ops must be an array");
	snprintf(buf, sizeof(buf), "[%s, [\"upsert\",\"users\",\"" U1 "\",{}]]", ok);
	refused(a, buf, "op 1:", "unknown action \"upsert\"");
	refused(a, "[[42,\"users\",\"" U1 "\",{}]]", "op 0:", "missing action");
	refused(a, "[\"update\"]", "op 0:", "must be an array");
	refused(a, "[[\"update\",\"\",\"" U1 "\",{}]]", "op 0:", "missing etype");
	refused(a, "[[\"update\",\"users\"]]", "op 0:", "missing id");
	snprintf(buf, sizeof(buf), "[%s, %s, [\"delete\",\"users\",null]]", ok, ok);
	refused(a, buf, "op 2:", "missing id");
	refused(a, "[[\"update\",\"users\",\"\",{}]]", "op 0:", "empty id");
	refused(a, "[[\"update\",\"users\",42,{}]]", "op 0:", "bad id");
	refused(a, "[[\"update\",\"users\",\"" U1 "\",\"title\"]]", "op 0:", "attributes of update must be an object");
	refused(a, "[[\"create\",\"users\",\"" U1 "\",[1,2]]]", "op 0:", "attributes of create must be an object");
	refused(a, "[[\"merge\",\"users\",\"" U1 "\"]]", "op 0:", "attributes of merge must be an object");
	refused(a, "[[\"link\",\"users\",\"" U1 "\",null]]", "op 0:", "attributes of link must be an object");
	refused(a, "[[\"ruleParams\",\"users\",\"" U1 "\",7]]", "op 0:", "attributes of ruleParams must be an object");
	refused(a, "[[\"update\",\"users\",\"" U1 "\",{},\"opts\"]]", "op 0:", "opts must be an object");
	refused(a, "[[\"update\",\"users\",\"" U1 "\",{},{},1]]", "op 0:", "too many elements");
	/* bad lookups */
	refused(a, "[[\"update\",\"users\",\"lookup__handle\",{}]]", "op 0:", "lookup string has no value");
	refused(a, "[[\"update\",\"users\",\"lookup__handle__{nope\",{}]]", "op 0:", "lookup string's value is not JSON");
	refused(a, "[[\"update\",\"users\",[\"handle\",\"a\",\"b\"],{}]]", "op 0:", "lookup array must be [attribute, value]");
	refused(a, "[[\"update\",\"users\",[1,\"a\"],{}]]", "op 0:", "lookup array must be [attribute, value]");
	refused(a, "[[\"update\",\"users\",[],{}]]", "op 0:", "lookup array must be [attribute, value]");
	refused(a, "[[\"delete\",\"users\",{\"handle\":\"a\",\"name\":\"b\"}]]", "op 0:", "exactly one attribute");
	refused(a, "[[\"delete\",\"users\",{}]]", "op 0:", "exactly one attribute");
	refused(a, "[[\"update\",\"users\",[\"\",1],{}]]", "op 0:", "lookup attribute name is empty");
	refused(a, "[[\"update\",\"users\",[\"name\",\"x\"],{}]]", "op 0:", "name is not a unique attribute of users");
	refused(a, "[[\"update\",\"users\",[\"a.b.c\",\"x\"],{}]]", "op 0:", "a.b.c is not a valid lookup attribute");
	refused(a, "[[\"update\",\"users\",[\"handle.id\",\"x\"],{}]]", "op 0:", "does not reference a valid link attribute");
	/* bad link targets */
	refused(a, "[[\"link\",\"users\",\"" U1 "\",{\"posts\":42}]]", "op 0:", "bad link target for posts");
	refused(a, "[[\"link\",\"users\",\"" U1 "\",{\"posts\":[\"" U2 "\",null]}]]", "op 0:", "bad link target for posts");
	refused(a, "[[\"link\",\"users\",\"" U1 "\",{\"posts\":\"\"}]]", "op 0:", "empty id");
	refused(a, "[[\"link\",\"users\",\"" U1 "\",{\"posts\":[\"lookup__x\"]}]]", "op 0:", "lookup string has no value");
	refused(a, "[[\"unlink\",\"users\",\"" U1 "\",{\"posts\":{\"a\":1,\"b\":2}}]]", "op 0:", "exactly one attribute");
	refused(a, "[[\"link\",\"users\",\"" U1 "\",{\"handle\":\"" U2 "\"}]]", "op 0:", "users.handle is not a link");

	/* ret_err may be NULL */
	{
		_cleanup_json_ cJSON *j = parse("[[\"nope\",\"users\",\"" U1 "\",{}]]");
		cJSON *steps = NULL;

		CHECK_INT(instaml_transform(a, j, NULL, &steps, NULL), -EINVAL);
		CHECK(steps == NULL);
	}
	attrs_free(a);
}

struct seen {
	int entity_calls, lookup_calls;
	char etype[32], eid[64], attr[64], value[64];
};

static bool
cb_entity(void *userdata, const char *etype, const char *eid)
{
	struct seen *s = userdata;

	s->entity_calls++;
	snprintf(s->etype, sizeof(s->etype), "%s", etype);
	snprintf(s->eid, sizeof(s->eid), "%s", eid);
	return strcmp(eid, U1) == 0;
}

static bool
cb_lookup(void *userdata, const char *attr_id, const cJSON *value)
{
	struct seen *s = userdata;
	_cleanup_free_ char *v = json_print(value);

	s->lookup_calls++;
	snprintf(s->attr, sizeof(s->attr), "%s", attr_id);
	snprintf(s->value, sizeof(s->value), "%s", v ? v : "");
	return cJSON_IsString(value) && strcmp(value->valuestring, "alex") == 0;
}

static char *
transform_str(const struct attrs *a, const char *ops, const struct instaml_ctx *ctx)
{
	_cleanup_json_ cJSON *j = parse(ops), *steps = NULL;
	_cleanup_free_ char *err = NULL;
	int r = instaml_transform(a, j, ctx, &steps, &err);

	if (r < 0) {
		fprintf(stderr, "transform %s: %d %s\n", ops, r, err ? err : "");
		return NULL;
	}
	return json_print(steps);
}

static void
test_modes(void)
{
	struct attrs *a = server_attrs();
	struct seen s = {};
	struct instaml_ctx ctx = { cb_entity, cb_lookup, &s };
	char *out;

	out = transform_str(a, "[[\"update\",\"users\",\"" U1 "\",{\"name\":\"n\"}]]", &ctx);
	CHECK_STR(out, "[[\"add-triple\",\"" U1 "\",\"" A_ID "\",\"" U1 "\",{\"mode\":\"update\"}],"
	    "[\"add-triple\",\"" U1 "\",\"" A_NAME "\",\"n\",{\"mode\":\"update\"}]]");
	CHECK_INT(s.entity_calls, 1);
	CHECK_STR(s.etype, "users");
	free(out);

	out = transform_str(a, "[[\"merge\",\"users\",\"" U2 "\",{\"name\":{\"a\":null}}]]", &ctx);
	CHECK_STR(out, "[[\"add-triple\",\"" U2 "\",\"" A_ID "\",\"" U2 "\"],"
	    "[\"deep-merge-triple\",\"" U2 "\",\"" A_NAME "\",{\"a\":null}]]");
	free(out);

	/* upsert: true never asks; create never asks */
	s.entity_calls = 0;
	out = transform_str(a, "[[\"update\",\"users\",\"" U1 "\",{},{\"upsert\":true}],"
	    "[\"create\",\"users\",\"" U1 "\",{}]]", &ctx);
	CHECK_STR(out, "[[\"add-triple\",\"" U1 "\",\"" A_ID "\",\"" U1 "\"],"
	    "[\"add-triple\",\"" U1 "\",\"" A_ID "\",\"" U1 "\",{\"mode\":\"create\"}]]");
	CHECK_INT(s.entity_calls, 0);
	free(out);

	/* lookups ask lookup_exists with the attr id and the parsed value */
	out = transform_str(a, "[[\"update\",\"users\",\"lookup__handle__\\\"alex\\\"\",{}]]", &ctx);
	CHECK_STR(out, "[[\"add-triple\",[\"" A_HANDLE "\",\"alex\"],\"" A_ID "\",[\"" A_HANDLE "\",\"alex\"],{\"mode\":\"update\"}]]");
	CHECK_INT(s.lookup_calls, 1);
	CHECK_STR(s.attr, A_HANDLE);
	CHECK_STR(s.value, "\"alex\"");
	free(out);

	/* NULL ctx: nothing exists */
	out = transform_str(a, "[[\"update\",\"users\",{\"handle\":\"alex\"},{}],[\"delete\",\"users\",\"" U1 "\"]]", NULL);
	CHECK_STR(out, "[[\"add-triple\",[\"" A_HANDLE "\",\"alex\"],\"" A_ID "\",[\"" A_HANDLE "\",\"alex\"]],"
	    "[\"delete-entity\",\"" U1 "\",\"users\"]]");
	free(out);

	/* keys in JSON.parse + Object.entries order: array indexes first, a
	 * repeated key keeps its first place and its last value */
	out = transform_str(a, "[[\"update\",\"users\",\"" U2 "\",{\"name\":1,\"7\":2,\"handle\":3,\"name\":4,\"01\":5,\"3\":6}]]", NULL);
	CHECK(out != NULL);
	if (out) {
		const char *p7 = strstr(out, ",2]"), *p3 = strstr(out, ",6]"), *pn = strstr(out, ",4]");
		const char *ph = strstr(out, ",3]"), *p01 = strstr(out, ",5]");

		CHECK(p3 && p7 && pn && ph && p01 && p3 < p7 && p7 < pn && pn < ph && ph < p01);
		CHECK(strstr(out, ",1]") == NULL);
	}
	free(out);

	/* reverse label: the forward orientation goes out */
	out = transform_str(a, "[[\"link\",\"posts\",\"" U2 "\",{\"author\":\"" U1 "\"}]]", NULL);
	CHECK(out != NULL && strstr(out, "[\"add-triple\",\"" U1 "\",\"" A_LINK "\",\"" U2 "\"]") != NULL);
	free(out);
	attrs_free(a);
}

static void
test_new_attrs_and_unsynced(void)
{
	struct attrs *a = attrs_new();
	_cleanup_json_ cJSON *ops = parse("[[\"update\",\"goals\",\"" U1 "\",{\"title\":\"t\"}]]");
	_cleanup_json_ cJSON *ops2 = parse("[[\"update\",\"goals\",\"" U2 "\",{\"title\":\"u\",\"done\":true}]]");
	_cleanup_json_ cJSON *steps = NULL, *steps2 = NULL, *added = NULL, *added2 = NULL;
	const cJSON *c;
	int n_add = 0;

	CHECK_INT(instaml_transform(a, ops, NULL, &steps, NULL), 0);
	CHECK_INT(cJSON_GetArraySize(steps), 4);	/* add-attr goals.id, goals.title, 2 triples */
	CHECK_INT(instaml_new_attrs(steps, &added), 0);
	CHECK_INT(cJSON_GetArraySize(added), 2);
	cJSON_ArrayForEach(c, added) {
		CHECK(attr_unsynced(c));
		CHECK(uuid_valid(attr_id(c)));
		CHECK_INT(attrs_add(a, c), 0);
	}
	CHECK(attr_unique(attrs_by_fwd(a, "goals", "id")));
	CHECK(!attr_unique(attrs_by_fwd(a, "goals", "title")));

	/* the second transform reuses and re-emits both, and creates goals.done */
	CHECK_INT(instaml_transform(a, ops2, NULL, &steps2, NULL), 0);
	CHECK_INT(instaml_new_attrs(steps2, &added2), 0);
	CHECK_INT(cJSON_GetArraySize(added2), 3);
	cJSON_ArrayForEach(c, steps2) {
		const char *k = cJSON_GetArrayItem(c, 0)->valuestring;

		if (strcmp(k, "add-attr") == 0)
			n_add++;
		else if (strcmp(cJSON_GetArrayItem(c, 2)->valuestring, attr_id(attrs_by_fwd(a, "goals", "title"))) == 0)
			CHECK_STR(cJSON_GetArrayItem(c, 3)->valuestring, "u");
	}
	CHECK_INT(n_add, 3);
	CHECK_STR(attr_id(cJSON_GetArrayItem(cJSON_GetArrayItem(steps2, 0), 1)), attr_id(attrs_by_fwd(a, "goals", "id")));

	_cleanup_json_ cJSON *bad = parse("{}");
	cJSON *none = NULL;
	CHECK_INT(instaml_new_attrs(bad, &none), -EINVAL);
	CHECK(none == NULL);
	attrs_free(a);
}

static const char *
blob_attr(char *buf, size_t n, const char *id, const char *etype, const char *label)
{
	snprintf(buf, n, "{\"id\":\"%s\",\"forward-identity\":[\"" I1 "\",\"%s\",\"%s\"],"
	    "\"value-type\":\"blob\",\"cardinality\":\"one\",\"unique?\":false,\"index?\":false,\"isUnsynced\":true}",
	    id, etype, label);
	return buf;
}

static void
rewrite_check(const struct attrs *a, const char *in, bool drop, const char *want, bool want_changed)
{
	_cleanup_json_ cJSON *steps = parse(in);
	_cleanup_free_ char *out = NULL;
	bool changed = !want_changed;

	CHECK_INT(instaml_rewrite(a, steps, drop, &changed), 0);
	out = json_print(steps);
	CHECK_STR(out, want);
	CHECK(changed == want_changed);
}

static void
test_rewrite(void)
{
	struct attrs *a = server_attrs();
	char b1[512], b2[512], in[2048], want[2048];

	/* nothing to do */
	rewrite_check(a, "[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",\"x\"]]", false,
	    "[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",\"x\"]]", false);
	/* an add-attr the server knows under another id: dropped and mapped everywhere */
	snprintf(in, sizeof(in), "[[\"add-attr\",%s],[\"add-triple\",\"" U1 "\",\"" X1 "\",\"h\"],"
	    "[\"add-triple\",[\"" X1 "\",\"h\"],\"" A_ID "\",[\"" X1 "\",\"h\"]],[\"retract-triple\",\"" U1 "\",\"" X1 "\",\"h\"]]",
	    blob_attr(b1, sizeof(b1), X1, "users", "handle"));
	rewrite_check(a, in, false,
	    "[[\"add-triple\",\"" U1 "\",\"" A_HANDLE "\",\"h\"],"
	    "[\"add-triple\",[\"" A_HANDLE "\",\"h\"],\"" A_ID "\",[\"" A_HANDLE "\",\"h\"]],"
	    "[\"retract-triple\",\"" U1 "\",\"" A_HANDLE "\",\"h\"]]", true);
	/* an unknown attr stays, unless the mutation is already processed */
	snprintf(in, sizeof(in), "[[\"add-attr\",%s],[\"add-triple\",\"" U1 "\",\"" X2 "\",1]]",
	    blob_attr(b2, sizeof(b2), X2, "users", "nick"));
	snprintf(want, sizeof(want), "%s", in);
	{
		_cleanup_json_ cJSON *j = parse(want);
		_cleanup_free_ char *canon = json_print(j);

		rewrite_check(a, in, false, canon, false);
	}
	rewrite_check(a, in, true, "[[\"add-triple\",\"" U1 "\",\"" X2 "\",1]]", true);
	/* a ref made in the other direction: mapped, e and v swapped */
	snprintf(in, sizeof(in), "[[\"add-attr\",{\"id\":\"" X3 "\",\"forward-identity\":[\"" I1 "\",\"posts\",\"author\"],"
	    "\"reverse-identity\":[\"" I1 "\",\"author\",\"posts\"],\"value-type\":\"ref\",\"cardinality\":\"many\","
	    "\"unique?\":false,\"index?\":false,\"isUnsynced\":true}],"
	    "[\"add-triple\",\"" U2 "\",\"" X3 "\",\"" U1 "\"],[\"retract-triple\",\"" U2 "\",\"" X3 "\",[\"" A_HANDLE "\",\"a\"]],"
	    "[\"delete-entity\",\"" U2 "\",\"posts\"]]");
	rewrite_check(a, in, false,
	    "[[\"add-triple\",\"" U1 "\",\"" A_LINK "\",\"" U2 "\"],"
	    "[\"retract-triple\",[\"" A_HANDLE "\",\"a\"],\"" A_LINK "\",\"" U2 "\"],"
	    "[\"delete-entity\",\"" U2 "\",\"posts\"]]", true);
	/* update-attr and delete-attr always go */
	rewrite_check(a, "[[\"update-attr\",{\"id\":\"" A_NAME "\"}],[\"delete-attr\",\"" A_NAME "\"],[\"add-triple\",\"" U1 "\",\"" A_NAME "\",\"x\"]]",
	    false, "[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",\"x\"]]", true);

	/* a queue: the mapping of mutation 0 applies to mutation 1; mutation 2 unchanged */
	{
		cJSON *q[3];
		bool drop[3] = { false, false, false }, changed[3] = { false, true, true };
		_cleanup_free_ char *o0 = NULL, *o1 = NULL, *o2 = NULL;

		snprintf(in, sizeof(in), "[[\"add-attr\",%s]]", blob_attr(b1, sizeof(b1), X1, "users", "handle"));
		q[0] = parse(in);
		q[1] = parse("[[\"add-triple\",\"" U1 "\",\"" X1 "\",\"h\"]]");
		q[2] = parse("[[\"add-triple\",\"" U1 "\",\"" X2 "\",\"h\"]]");
		CHECK_INT(instaml_rewrite_queue(a, q, drop, 3, changed), 0);
		o0 = json_print(q[0]);
		o1 = json_print(q[1]);
		o2 = json_print(q[2]);
		CHECK_STR(o0, "[]");
		CHECK_STR(o1, "[[\"add-triple\",\"" U1 "\",\"" A_HANDLE "\",\"h\"]]");
		CHECK_STR(o2, "[[\"add-triple\",\"" U1 "\",\"" X2 "\",\"h\"]]");
		CHECK(changed[0] && changed[1] && !changed[2]);
		for (int i = 0; i < 3; i++)
			cJSON_Delete(q[i]);
	}
	/* not an array */
	{
		_cleanup_json_ cJSON *o = parse("{}");
		bool changed = true;

		CHECK_INT(instaml_rewrite(a, o, false, &changed), -EINVAL);
	}
	attrs_free(a);
}

static void
valid(const char *steps)
{
	_cleanup_json_ cJSON *j = parse(steps);
	_cleanup_free_ char *err = NULL;
	int r = instaml_validate_steps(j, &err);

	if (r != 0)
		fprintf(stderr, "  %s: %s\n", steps, err ? err : "");
	CHECK_INT(r, 0);
}

static void
invalid(const char *steps, const char *want)
{
	_cleanup_json_ cJSON *j = parse(steps);
	_cleanup_free_ char *err = NULL;
	int r = instaml_validate_steps(j, &err);

	CHECK_INT(r, -EINVAL);
	if (err == NULL || strstr(err, want) == NULL) {
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", steps, err ? err : "(null)", want);
		CHECK(false);
	}
}

static void
test_validate_steps(void)
{
	char b[512], s[1024];

	valid("[]");
	valid("[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",\"x\"],"
	    "[\"add-triple\",[\"" A_HANDLE "\",\"h\"],\"" A_ID "\",[\"" A_HANDLE "\",\"h\"],{\"mode\":\"create\"}],"
	    "[\"deep-merge-triple\",\"" U1 "\",\"" A_NAME "\",{\"a\":null},{\"mode\":\"update\"}],"
	    "[\"retract-triple\",\"" U1 "\",\"" A_LINK "\",\"" U2 "\"],"
	    "[\"delete-entity\",\"" U1 "\",\"users\"],[\"delete-entity\",\"" U1 "\"],"
	    "[\"rule-params\",\"" U1 "\",\"users\",{\"k\":1}],"
	    "[\"update-attr\",{\"id\":\"" A_NAME "\",\"index?\":true}],"
	    "[\"delete-attr\",\"" A_NAME "\"],[\"restore-attr\",\"" A_NAME "\"]]");
	snprintf(s, sizeof(s), "[[\"add-attr\",%s]]", blob_attr(b, sizeof(b), X1, "users", "nick"));
	valid(s);

	invalid("{}", "tx-steps must be an array");
	invalid("[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",1],\"add-triple\"]", "tx-step 1:");
	invalid("[[\"frobnicate\",\"" U1 "\"]]", "tx-step 0: unknown tx-step kind \"frobnicate\"");
	invalid("[[]]", "tx-step 0: a tx-step must be an array starting with its kind");
	invalid("[[\"add-triple\",\"" U1 "\",\"" A_NAME "\"]]", "tx-step 0: add-triple takes");
	invalid("[[\"add-triple\",\"not-a-uuid\",\"" A_NAME "\",1]]", "the entity must be a uuid");
	invalid("[[\"add-triple\",[\"" A_HANDLE "\"],\"" A_NAME "\",1]]", "the entity must be a uuid");
	invalid("[[\"add-triple\",\"" U1 "\",\"name\",1]]", "the attr id must be a uuid");
	invalid("[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",1,\"create\"]]", "opts must be an object");
	invalid("[[\"add-triple\",\"" U1 "\",\"" A_NAME "\",1,{\"mode\":\"replace\"}]]", "mode must be");
	invalid("[[\"retract-triple\",\"" U1 "\",\"" A_NAME "\",1,{},2]]", "retract-triple takes");
	invalid("[[\"delete-entity\"]]", "delete-entity takes");
	invalid("[[\"delete-entity\",\"" U1 "\",3]]", "the etype must be a non-empty string");
	invalid("[[\"rule-params\",\"" U1 "\",\"users\"]]", "rule-params takes");
	invalid("[[\"rule-params\",\"" U1 "\",\"users\",[]]]", "the params must be an object");
	invalid("[[\"add-attr\"]]", "add-attr takes");
	invalid("[[\"add-attr\",{\"id\":\"x\"}]]", "the attr's id must be a uuid");
	invalid("[[\"add-attr\",{\"id\":\"" X1 "\",\"forward-identity\":[\"" I1 "\",\"users\"]}]]", "forward-identity must be");
	invalid("[[\"add-attr\",{\"id\":\"" X1 "\",\"forward-identity\":[\"" I1 "\",\"users\",\"n\"],"
	    "\"value-type\":\"ref\",\"cardinality\":\"many\",\"unique?\":false,\"index?\":false}]]", "needs reverse-identity");
	invalid("[[\"add-attr\",{\"id\":\"" X1 "\",\"forward-identity\":[\"" I1 "\",\"users\",\"n\"],"
	    "\"value-type\":\"text\",\"cardinality\":\"one\",\"unique?\":false,\"index?\":false}]]", "value-type must be");
	invalid("[[\"add-attr\",{\"id\":\"" X1 "\",\"forward-identity\":[\"" I1 "\",\"users\",\"n\"],"
	    "\"value-type\":\"blob\",\"cardinality\":\"some\",\"unique?\":false,\"index?\":false}]]", "cardinality must be");
	invalid("[[\"add-attr\",{\"id\":\"" X1 "\",\"forward-identity\":[\"" I1 "\",\"users\",\"n\"],"
	    "\"value-type\":\"blob\",\"cardinality\":\"one\",\"index?\":false}]]", "unique? and index? must be booleans");
	invalid("[[\"update-attr\",{\"index?\":true}]]", "update-attr takes");
	invalid("[[\"delete-attr\",42]]", "delete-attr takes");
	invalid("[[\"restore-attr\"]]", "restore-attr takes");
}

int
main(void)
{
	test_malformed_ops();
	test_modes();
	test_new_attrs_and_unsynced();
	test_rewrite();
	test_validate_steps();
	return tap_done();
}
