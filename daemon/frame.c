/* frame.c: a large server frame is cut into its computations before it is
 * parsed, so the session can parse and apply them one at a time, the
 * smallest first, and a small result is not kept behind a large one. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/frame.h"
#include "store/util.h"

static size_t
skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The end of the string that starts at s[i] ('"'), or 0 if it never ends. */
static size_t
skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/* The end of the value that starts at s[i], or 0 if it is cut short. Only
 * strings and nesting are followed: whatever else is wrong with the text,
 * cJSON finds when it parses the pieces. */
static size_t
skip_value(const char *s, size_t len, size_t i)
{
	size_t depth = 0;

	if (i >= len)
		return 0;
	if (s[i] == '"')
		return skip_string(s, len, i);
	if (s[i] != '{' && s[i] != '[') {
		size_t j = i;

		while (j < len && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != ' ' &&
		    s[j] != '\t' && s[j] != '\n' && s[j] != '\r')
			j++;
		return j > i ? j : 0;
	}
	while (i < len) {
		if (s[i] == '"') {
			i = skip_string(s, len, i);
			if (i == 0)
				return 0;
			continue;
		}
		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return 0;
}

/* Where the top-level object's "computations" array is: [*start, *end).
 * false if s is not such an object (or its text is cut short). */
static bool
find_computations(const char *s, size_t len, size_t *start, size_t *end)
{
	static const char key[] = "\"computations\"";
	size_t i = skip_ws(s, len, 0);
	bool found = false;

	if (i >= len || s[i] != '{')
		return false;
	i = skip_ws(s, len, i + 1);
	if (i < len && s[i] == '}')
		return false;
	for (;;) {
		size_t k = i, v, e;

		if (i >= len || s[i] != '"' || (i = skip_string(s, len, i)) == 0)
			return false;
		i = skip_ws(s, len, i);
		if (i >= len || s[i] != ':')
			return false;
		v = skip_ws(s, len, i + 1);
		if ((e = skip_value(s, len, v)) == 0)
			return false;
		/* the first one, as json_get finds it */
		if (!found && i - k >= sizeof(key) - 1 && memcmp(s + k, key, sizeof(key) - 1) == 0 &&
		    skip_ws(s, len, k + sizeof(key) - 1) == i && s[v] == '[') {
			*start = v;
			*end = e;
			found = true;
		}
		i = skip_ws(s, len, e);
		if (i < len && s[i] == ',') {
			i = skip_ws(s, len, i + 1);
			continue;
		}
		return i < len && s[i] == '}' && found;
	}
}

/* Each element of the array s[start, end) as a raw item of arr. false if
 * an element is cut short or out of memory (arr then holds some). */
static bool
add_raw_elements(char *s, size_t start, size_t end, cJSON *arr)
{
	size_t i = skip_ws(s, end, start + 1);

	if (i < end && s[i] == ']')
		return true;
	for (;;) {
		size_t e = skip_value(s, end, i);
		cJSON *item;
		char save;

		if (e == 0)
			return false;
		/* cJSON_CreateRaw copies a C string: end it here for a moment */
		save = s[e];
		s[e] = '\0';
		item = cJSON_CreateRaw(s + i);
		s[e] = save;
		if (item == NULL)
			return false;
		cJSON_AddItemToArray(arr, item);
		i = skip_ws(s, end, e);
		if (i < end && s[i] == ',') {
			i = skip_ws(s, end, i + 1);
			continue;
		}
		return i < end && s[i] == ']';
	}
}

/* The frame without its computations' text, parsed, then those as raw
 * items. -ENOENT when the frame is not that shape: it is parsed whole. */
static int
frame_split(char *s, size_t len, cJSON **ret)
{
	_cleanup_free_ char *rest = NULL;
	_cleanup_json_ cJSON *msg = NULL;
	size_t start = 0, end = 0, n;
	cJSON *arr;

	if (!find_computations(s, len, &start, &end))
		return -ENOENT;
	n = start + 2 + (len - end);
	rest = malloc(n);
	if (rest == NULL)
		return -ENOMEM;
	memcpy(rest, s, start);
	memcpy(rest + start, "[]", 2);
	memcpy(rest + start + 2, s + end, len - end);
	msg = cJSON_ParseWithLength(rest, n);
	arr = (cJSON *)json_get(msg, "computations");
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 0)
		return -ENOENT;
	if (!add_raw_elements(s, start, end, arr))
		return -ENOENT;
	*ret = TAKE_PTR(msg);
	return 0;
}

int
frame_parse(char *s, size_t len, cJSON **ret)
{
	cJSON *msg;
	int r;

	if (len >= FRAME_SPLIT_MIN) {
		r = frame_split(s, len, ret);
		if (r != -ENOENT)
			return r;
	}
	msg = cJSON_ParseWithLength(s, len);
	if (msg == NULL)
		return -EINVAL;
	*ret = msg;
	return 0;
}

int
frame_item_parse(const cJSON *item, cJSON **ret)
{
	cJSON *v;

	if (!cJSON_IsRaw(item) || item->valuestring == NULL)
		return -EINVAL;
	v = cJSON_Parse(item->valuestring);
	if (v == NULL)
		return -EINVAL;
	*ret = v;
	return 0;
}
