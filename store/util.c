/* Shared helpers: safe JSON numbers, canonical JSON, UUIDs and clocks. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

#include "store/util.h"

int
json_get_int64(const cJSON *item, int64_t *ret)
{
	double v;

	if (item == NULL || !cJSON_IsNumber(item))
		return -EINVAL;
	v = item->valuedouble;
	if (isnan(v) || floor(v) != v)
		return -EINVAL;
	if (fabs(v) > (double)JSON_INT_PARSE_MAX)
		return -ERANGE;
	*ret = (int64_t)v;
	return 0;
}

cJSON *
json_new_int64(int64_t v)
{
	char buf[32];

	if (v > -JSON_INT_PRINT_MAX && v < JSON_INT_PRINT_MAX)
		return cJSON_CreateNumber((double)v);
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cJSON_CreateRaw(buf);
}

const cJSON *
json_get(const cJSON *obj, const char *key)
{
	if (obj == NULL || !cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const char *
json_get_string(const cJSON *obj, const char *key)
{
	const cJSON *v = json_get(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static int
key_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

static void
canon(struct sbuf *b, const cJSON *v)
{
	const cJSON *c;

	if (cJSON_IsObject(v)) {
		size_t n = 0, i = 0;
		const cJSON **kids;

		for (c = v->child; c; c = c->next)
			n++;
		kids = calloc(n ? n : 1, sizeof(*kids));
		if (kids == NULL) {
			b->oom = true;
			return;
		}
		for (c = v->child; c; c = c->next)
			kids[i++] = c;
		qsort(kids, n, sizeof(*kids), key_cmp);
		sbuf_add(b, "{", 1);
		for (i = 0; i < n; i++) {
			cJSON key = { .type = cJSON_String, .valuestring = kids[i]->string };
			char *ks;

			if (i)
				sbuf_add(b, ",", 1);
			ks = cJSON_PrintUnformatted(&key);
			if (ks == NULL) {
				b->oom = true;
				break;
			}
			sbuf_add(b, ks, strlen(ks));
			cJSON_free(ks);
			sbuf_add(b, ":", 1);
			canon(b, kids[i]);
		}
		sbuf_add(b, "}", 1);
		free(kids);
	} else if (cJSON_IsArray(v)) {
		sbuf_add(b, "[", 1);
		for (c = v->child; c; c = c->next) {
			if (c != v->child)
				sbuf_add(b, ",", 1);
			canon(b, c);
		}
		sbuf_add(b, "]", 1);
	} else {
		/* Print a detached copy of the scalar so siblings are not printed. */
		cJSON tmp = *v;
		char *s;

		tmp.next = tmp.prev = NULL;
		tmp.string = NULL;
		s = cJSON_PrintUnformatted(&tmp);
		if (s == NULL) {
			b->oom = true;
			return;
		}
		sbuf_add(b, s, strlen(s));
		cJSON_free(s);
	}
}

char *
json_canonical(const cJSON *v)
{
	struct sbuf b = { 0 };

	if (v == NULL)
		return strdup("null");
	canon(&b, v);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

char *
json_print(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v), *r;

	if (s == NULL)
		return NULL;
	r = strdup(s);
	cJSON_free(s);
	return r;
}

bool
json_equal(const cJSON *a, const cJSON *b)
{
	_cleanup_free_ char *x = json_canonical(a);
	_cleanup_free_ char *y = json_canonical(b);

	return x && y && strcmp(x, y) == 0;
}

int
uuid_v4(char out[37])
{
	unsigned char r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -EIO;
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
	    r[10], r[11], r[12], r[13], r[14], r[15]);
	return 0;
}

bool
uuid_valid(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		char c = s[i];

		if (pat[i] == '-') {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
