/* Unit tests of daemon/frame.c: a large frame's computations come back as
 * their own JSON text, equal to what a whole parse gives, and anything else
 * is parsed as before. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/frame.h"
#include "store/util.h"
#include "tests/tap.h"

/* A string of n 'x' (owned by the caller): pads a frame past FRAME_SPLIT_MIN. */
static char *
pad(size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memset(s, 'x', n);
	s[n] = '\0';
	return s;
}

/* frame_parse of text (copied, so the original can be compared after). */
static int
parse(const char *text, cJSON **ret)
{
	_cleanup_free_ char *copy = strdup(text);
	int r;

	if (copy == NULL)
		abort();
	*ret = NULL;
	r = frame_parse(copy, strlen(copy), ret);
	CHECK(strcmp(copy, text) == 0);	/* the text is left as it was */
	return r;
}

/* Whether msg, parsed by frame_parse with its computations raw, equals the
 * whole parse of text once they are parsed too. */
static bool
same_as_whole(const cJSON *msg, const char *text)
{
	_cleanup_json_ cJSON *whole = cJSON_Parse(text), *mine = cJSON_Duplicate(msg, true);
	_cleanup_free_ char *a = NULL, *b = NULL;
	cJSON *comps = mine ? (cJSON *)json_get(mine, "computations") : NULL, *c;
	int i = 0;

	if (whole == NULL || comps == NULL)
		return false;
	for (c = comps->child; c; c = c->next, i++) {
		cJSON *v = NULL;

		if (!cJSON_IsRaw(c) || frame_item_parse(c, &v) < 0)
			return false;
		cJSON_ReplaceItemInArray(comps, i, v);
		c = v;
	}
	a = json_canonical(mine);
	b = json_canonical(whole);
	return a && b && strcmp(a, b) == 0;
}

static void
test_split(void)
{
	_cleanup_free_ char *p = pad(FRAME_SPLIT_MIN), *text = NULL;
	_cleanup_json_ cJSON *msg = NULL;
	const cJSON *comps;

	/* Strings holding brackets, quotes and escapes; "computations" also as a
	 * nested key and as a value; whitespace everywhere JSON allows it. */
	if (asprintf(&text, " {\n\t\"op\" : \"refresh-ok\", \"processed-tx-id\":12,"
	    "\"nested\":{\"computations\":[1,2]}, \"word\":\"computations\","
	    "\"computations\" : [ {\"instaql-query\":{\"a\":{}},\"instaql-result\":[\"]}\\\"[{\\\\\",\"%s\"]} ,"
	    "\r\n{\"instaql-query\":{\"b\":{}},\"instaql-result\":[true,null,-1.5e3,\"\\u005d\"]}\n] ,"
	    "\"attrs\":[{\"id\":\"a1\"}] }\n", p) < 0)
		abort();
	CHECK_INT(parse(text, &msg), 0);
	comps = json_get(msg, "computations");
	CHECK_INT(cJSON_GetArraySize(comps), 2);
	CHECK(cJSON_IsRaw(cJSON_GetArrayItem(comps, 0)));
	CHECK(cJSON_IsRaw(cJSON_GetArrayItem(comps, 1)));
	CHECK_STR(json_get_string(msg, "op"), "refresh-ok");
	CHECK(same_as_whole(msg, text));
	/* Each raw item is exactly its element's text, trimmed. */
	CHECK_STR(cJSON_GetArrayItem(comps, 1)->valuestring,
	    "{\"instaql-query\":{\"b\":{}},\"instaql-result\":[true,null,-1.5e3,\"\\u005d\"]}");
	cJSON_Delete(msg);
	msg = NULL;

	/* An empty array stays empty. */
	free(text);
	if (asprintf(&text, "{\"op\":\"refresh-ok\",\"pad\":\"%s\",\"computations\":[ ]}", p) < 0)
		abort();
	CHECK_INT(parse(text, &msg), 0);
	CHECK_INT(cJSON_GetArraySize(json_get(msg, "computations")), 0);
	CHECK_STR(json_get_string(msg, "op"), "refresh-ok");
}

/* Small frames, other shapes and broken text are parsed whole, as before. */
static void
test_whole(void)
{
	_cleanup_free_ char *p = pad(FRAME_SPLIT_MIN), *text = NULL;
	cJSON *msg = NULL;
	const char *small = "{\"op\":\"refresh-ok\",\"computations\":[{\"instaql-query\":{}}]}";
	const char *shapes[] = {
		/* an array of messages */
		"[{\"op\":\"refresh-ok\",\"computations\":[{\"p\":\"%s\"}]}]",
		/* computations that are not an array */
		"{\"op\":\"refresh-ok\",\"computations\":{\"p\":\"%s\"}}",
		/* no computations */
		"{\"op\":\"transact-ok\",\"p\":\"%s\"}",
	};

	CHECK_INT(parse(small, &msg), 0);
	CHECK(cJSON_IsObject(cJSON_GetArrayItem(json_get(msg, "computations"), 0)));
	cJSON_Delete(msg);
	for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
		free(text);
		if (asprintf(&text, shapes[i], p) < 0)
			abort();
		CHECK_INT(parse(text, &msg), 0);
		CHECK(msg != NULL);
		{
			_cleanup_json_ cJSON *whole = cJSON_Parse(text);
			_cleanup_free_ char *a = json_canonical(msg), *b = json_canonical(whole);

			CHECK(a && b && strcmp(a, b) == 0);
		}
		cJSON_Delete(msg);
	}

	/* Broken text: cut short, an unterminated string. */
	free(text);
	if (asprintf(&text, "{\"op\":\"refresh-ok\",\"computations\":[{\"p\":\"%s\"}", p) < 0)
		abort();
	CHECK_INT(parse(text, &msg), -EINVAL);
	free(text);
	if (asprintf(&text, "{\"op\":\"refresh-ok\",\"computations\":[{\"p\":\"%s}]}", p) < 0)
		abort();
	CHECK_INT(parse(text, &msg), -EINVAL);
	CHECK(msg == NULL);
}

/* An element whose brackets balance but whose text is not JSON is found
 * when it is parsed, alone; the others parse. */
static void
test_bad_element(void)
{
	_cleanup_free_ char *p = pad(FRAME_SPLIT_MIN), *text = NULL;
	_cleanup_json_ cJSON *msg = NULL, *v = NULL;
	const cJSON *comps;

	if (asprintf(&text, "{\"op\":\"refresh-ok\",\"computations\":[{\"p\":\"%s\", oops},{\"ok\":1}]}", p) < 0)
		abort();
	CHECK_INT(parse(text, &msg), 0);
	comps = json_get(msg, "computations");
	CHECK_INT(cJSON_GetArraySize(comps), 2);
	CHECK_INT(frame_item_parse(cJSON_GetArrayItem(comps, 0), &v), -EINVAL);
	CHECK_INT(frame_item_parse(cJSON_GetArrayItem(comps, 1), &v), 0);
	CHECK(v && cJSON_IsNumber(json_get(v, "ok")));
	/* Not a raw item. */
	CHECK_INT(frame_item_parse(json_get(msg, "op"), &v), -EINVAL);
}

int
main(void)
{
	test_split();
	test_whole();
	test_bad_element();
	return tap_done();
}
