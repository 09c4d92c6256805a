/* JavaScript value semantics the local InstaQL engine needs to match
 * @instantdb/core: strict equality, relational comparison with coercion,
 * new Date(x), LIKE matching on UTF-16 code units, uuidCompare and the
 * en-US collator used for checked string attrs. Private to store/instaql*.c. */
#ifndef INSTANTD_INSTAQL_JS_H
#define INSTANTD_INSTAQL_JS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/tstore-internal.h"

/* A JS value seen by the engine: from the store (vid set) or from the query
 * (json set). Objects and arrays are equal only to themselves (same vid). */
struct jv {
	uint8_t type;		/* enum tv_type */
	double num;
	const char *str;	/* TV_STR (NUL-terminated) */
	const cJSON *json;	/* TV_JSON */
	uint32_t vid;		/* VID_NONE when not from the store */
};

struct jv instaql_jv_from_vid(const struct tstore *s, uint32_t vid);
struct jv instaql_jv_from_json(const cJSON *j);	/* NULL j -> undefined */
struct jv instaql_jv_number(double d);

bool instaql_jv_strict_eq(const struct jv *a, const struct jv *b);
bool instaql_jv_is_nullish(const struct jv *a);	/* == null */
/* a < b with JS coercion: 1 true, 0 false, -1 undefined (NaN involved). */
int instaql_jv_less(const struct jv *a, const struct jv *b);
bool instaql_jv_gt(const struct jv *a, const struct jv *b);	/* a > b */
bool instaql_jv_ge(const struct jv *a, const struct jv *b);	/* a >= b */
bool instaql_jv_lt(const struct jv *a, const struct jv *b);	/* a < b */
bool instaql_jv_le(const struct jv *a, const struct jv *b);	/* a <= b */
/* new Date(a).getTime() (NaN when invalid). */
double instaql_jv_date_ms(const struct jv *a);
/* Date.parse of a string, V8 rules for the ISO forms, local time = UTC. */
double instaql_js_date_parse(const char *s);
/* String(a), malloc'd; NULL on ENOMEM. */
char *instaql_jv_to_string(const struct jv *a);

/* uuidCompare of two ids (any value; non-strings compare as equal). */
int instaql_js_uuid_compare(const struct jv *a, const struct jv *b);
/* Intl.Collator('en-US').compare of String(a), String(b). */
int instaql_js_collate(const struct jv *a, const struct jv *b);

/* A compiled $like / $ilike pattern. */
struct js_like {
	uint16_t *pat;
	size_t n;
	bool icase;
	bool valid;		/* pattern was a string */
};
int instaql_js_like_compile(const cJSON *pattern, bool icase, struct js_like *ret);
bool instaql_js_like_match(const struct js_like *l, const struct jv *v);
void instaql_js_like_free(struct js_like *l);

#endif
