/* JavaScript value semantics for the local InstaQL engine: the coercions,
 * comparisons, date parsing, LIKE matching and collation that
 * @instantdb/core gets from V8 and ICU, re-stated in C. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/instaql-js.h"
#include "store/util.h"

struct jv
instaql_jv_from_vid(const struct tstore *s, uint32_t vid)
{
	const struct tval *t = tstore_tv_get(s, vid);
	struct jv v = { .type = t->type, .num = t->num, .str = t->str, .json = t->json, .vid = vid };

	return v;
}

struct jv
instaql_jv_from_json(const cJSON *j)
{
	struct jv v = { .type = TV_UNDEF };

	if (j == NULL)
		return v;
	if (cJSON_IsNull(j))
		v.type = TV_NULL;
	else if (cJSON_IsFalse(j))
		v.type = TV_FALSE;
	else if (cJSON_IsTrue(j))
		v.type = TV_TRUE;
	else if (cJSON_IsNumber(j)) {
		v.type = TV_NUM;
		v.num = j->valuedouble;
	} else if (cJSON_IsString(j)) {
		v.type = TV_STR;
		v.str = j->valuestring;
	} else if (cJSON_IsRaw(j)) {
		v.type = TV_NUM;
		v.num = strtod(j->valuestring, NULL);
	} else {
		v.type = TV_JSON;
		v.json = j;
	}
	return v;
}

struct jv
instaql_jv_number(double d)
{
	struct jv v = { .type = TV_NUM, .num = d };

	return v;
}

bool
instaql_jv_strict_eq(const struct jv *a, const struct jv *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case TV_NUM:
		return a->num == b->num;
	case TV_STR:
		return strcmp(a->str, b->str) == 0;
	case TV_JSON:
		return a->vid != VID_NONE && a->vid == b->vid;
	default:
		return true;
	}
}

bool
instaql_jv_is_nullish(const struct jv *a)
{
	return a->type == TV_NULL || a->type == TV_UNDEF;
}

/* ---- UTF-8 to UTF-16 ---- */

struct u16it {
	const unsigned char *p;
	uint16_t pending;	/* a low surrogate still to give */
};

/* Next code point of UTF-8 (invalid bytes give U+FFFD). */
static uint32_t
utf8_next(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t c = p[0];
	int n;

	if (c < 0x80) {
		*pp = p + 1;
		return c;
	}
	if ((c & 0xE0) == 0xC0) {
		n = 1;
		c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 2;
		c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 3;
		c &= 0x07;
	} else {
		*pp = p + 1;
		return 0xFFFD;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			*pp = p + i;
			return 0xFFFD;
		}
		c = (c << 6) | (p[i] & 0x3F);
	}
	*pp = p + n + 1;
	return c > 0x10FFFF ? 0xFFFD : c;
}

/* Next UTF-16 code unit, or -1 at the end. */
static int
u16_next(struct u16it *it)
{
	uint32_t c;

	if (it->pending) {
		c = it->pending;
		it->pending = 0;
		return (int)c;
	}
	if (*it->p == 0)
		return -1;
	c = utf8_next(&it->p);
	if (c >= 0x10000) {
		c -= 0x10000;
		it->pending = (uint16_t)(0xDC00 | (c & 0x3FF));
		return (int)(0xD800 | (c >> 10));
	}
	return (int)c;
}

/* Compare by UTF-16 code units, as JS does for strings. */
static int
u16_cmp(const char *a, const char *b)
{
	struct u16it x = { (const unsigned char *)a, 0 }, y = { (const unsigned char *)b, 0 };

	for (;;) {
		int ca = u16_next(&x), cb = u16_next(&y);

		if (ca != cb)
			return ca < cb ? -1 : 1;
		if (ca < 0)
			return 0;
	}
}

static uint16_t *
to_u16(const char *s, size_t *ret_n)
{
	size_t cap = strlen(s) + 1, n = 0;
	uint16_t *out = malloc(cap * sizeof(*out));
	struct u16it it = { (const unsigned char *)s, 0 };
	int c;

	if (out == NULL)
		return NULL;
	while ((c = u16_next(&it)) >= 0)
		out[n++] = (uint16_t)c;
	*ret_n = n;
	return out;
}

/* ---- Number <-> String ---- */

static void
js_number_to_string(double d, char *buf, size_t size)
{
	char digits[32], tmp[40];
	int k, n, exp;

	if (isnan(d)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (d == 0) {
		snprintf(buf, size, "0");
		return;
	}
	if (isinf(d)) {
		snprintf(buf, size, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (d < 0) {
		buf[0] = '-';
		js_number_to_string(-d, buf + 1, size - 1);
		return;
	}
	for (k = 1; k <= 17; k++) {
		snprintf(tmp, sizeof(tmp), "%.*e", k - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	/* tmp is d.ddde[+-]xx */
	{
		char *e = strchr(tmp, 'e');
		int j = 0;

		exp = atoi(e + 1);
		for (char *p = tmp; p < e; p++)
			if (*p != '.')
				digits[j++] = *p;
		digits[j] = 0;
		k = j;
		while (k > 1 && digits[k - 1] == '0')
			digits[--k] = 0;
	}
	n = exp + 1;
	if (k <= n && n <= 21) {
		size_t l = (size_t)snprintf(buf, size, "%s", digits);

		for (int i = 0; i < n - k && l + 1 < size; i++)
			buf[l++] = '0';
		buf[l] = 0;
	} else if (0 < n && n <= 21) {
		snprintf(buf, size, "%.*s.%s", n, digits, digits + n);
	} else if (-6 < n && n <= 0) {
		size_t l = 0;

		l += (size_t)snprintf(buf, size, "0.");
		for (int i = 0; i < -n && l + 1 < size; i++)
			buf[l++] = '0';
		buf[l] = 0;
		snprintf(buf + l, size - l, "%s", digits);
	} else {
		int e1 = n - 1;

		if (k == 1)
			snprintf(buf, size, "%se%c%d", digits, e1 < 0 ? '-' : '+', abs(e1));
		else
			snprintf(buf, size, "%c.%se%c%d", digits[0], digits + 1, e1 < 0 ? '-' : '+', abs(e1));
	}
}

static bool
js_is_space(uint32_t c)
{
	return c == 9 || c == 10 || c == 11 || c == 12 || c == 13 || c == 32 ||
	    c == 0xA0 || c == 0xFEFF || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
	    c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* StringToNumber */
static double
js_string_to_number(const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *start, *end, *q;
	char *buf, *ep;
	double d;
	size_t len;

	/* trim */
	for (;;) {
		const unsigned char *save = p;

		if (*p == 0)
			break;
		if (!js_is_space(utf8_next(&p))) {
			p = save;
			break;
		}
	}
	start = p;
	end = start;
	for (q = start; *q;) {
		uint32_t c = utf8_next(&q);

		if (!js_is_space(c))
			end = q;
	}
	len = (size_t)(end - start);
	if (len == 0)
		return 0;
	buf = strndup((const char *)start, len);
	if (buf == NULL)
		return NAN;
	if (strcmp(buf, "Infinity") == 0 || strcmp(buf, "+Infinity") == 0)
		d = INFINITY;
	else if (strcmp(buf, "-Infinity") == 0)
		d = -INFINITY;
	else if (len > 2 && buf[0] == '0' && strchr("xXoObB", buf[1])) {
		int base = (buf[1] == 'x' || buf[1] == 'X') ? 16 : (buf[1] == 'o' || buf[1] == 'O') ? 8 : 2;

		d = 0;
		for (size_t i = 2; i < len; i++) {
			int dig;
			char c = buf[i];

			if (c >= '0' && c <= '9')
				dig = c - '0';
			else if (c >= 'a' && c <= 'f')
				dig = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				dig = c - 'A' + 10;
			else
				dig = 99;
			if (dig >= base) {
				d = NAN;
				break;
			}
			d = d * base + dig;
		}
	} else {
		/* StrDecimalLiteral: [+-] (digits [. digits?] | . digits) [e [+-] digits] */
		size_t i = 0;
		bool digits = false;

		if (buf[i] == '+' || buf[i] == '-')
			i++;
		while (buf[i] >= '0' && buf[i] <= '9') {
			i++;
			digits = true;
		}
		if (buf[i] == '.') {
			i++;
			while (buf[i] >= '0' && buf[i] <= '9') {
				i++;
				digits = true;
			}
		}
		if (digits && (buf[i] == 'e' || buf[i] == 'E')) {
			size_t j = i + 1;

			if (buf[j] == '+' || buf[j] == '-')
				j++;
			if (buf[j] >= '0' && buf[j] <= '9') {
				while (buf[j] >= '0' && buf[j] <= '9')
					j++;
				i = j;
			}
		}
		if (!digits || i != len)
			d = NAN;
		else
			d = strtod(buf, &ep);
	}
	free(buf);
	return d;
}

/* ToString of a JSON object/array value (Array.prototype.join / Object). */
static int
json_to_js_string(const cJSON *j, char **ret)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	const cJSON *c;
	bool first = true;

	if (cJSON_IsObject(j)) {
		*ret = strdup("[object Object]");
		return *ret ? 0 : -ENOMEM;
	}
	f = open_memstream(&out, &len);
	if (f == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(c, j) {
		struct jv e = instaql_jv_from_json(c);

		if (!first)
			fputc(',', f);
		first = false;
		if (!instaql_jv_is_nullish(&e)) {
			char *s = instaql_jv_to_string(&e);

			if (s == NULL) {
				fclose(f);
				free(out);
				return -ENOMEM;
			}
			fputs(s, f);
			free(s);
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}

char *
instaql_jv_to_string(const struct jv *a)
{
	char buf[64];
	char *s = NULL;

	switch (a->type) {
	case TV_UNDEF:
		return strdup("undefined");
	case TV_NULL:
		return strdup("null");
	case TV_FALSE:
		return strdup("false");
	case TV_TRUE:
		return strdup("true");
	case TV_NUM:
		js_number_to_string(a->num, buf, sizeof(buf));
		return strdup(buf);
	case TV_STR:
		return strdup(a->str);
	default:
		if (json_to_js_string(a->json, &s) < 0)
			return NULL;
		return s;
	}
}

static double
jv_to_number(const struct jv *a)
{
	switch (a->type) {
	case TV_UNDEF:
		return NAN;
	case TV_NULL:
	case TV_FALSE:
		return 0;
	case TV_TRUE:
		return 1;
	case TV_NUM:
		return a->num;
	case TV_STR:
		return js_string_to_number(a->str);
	default: {
		char *s = instaql_jv_to_string(a);
		double d = s ? js_string_to_number(s) : NAN;

		free(s);
		return d;
	}
	}
}

int
instaql_jv_less(const struct jv *a, const struct jv *b)
{
	char *sa = NULL, *sb = NULL;
	double x, y;
	int r;

	/* ToPrimitive: objects and arrays become strings */
	if (a->type == TV_JSON)
		sa = instaql_jv_to_string(a);
	if (b->type == TV_JSON)
		sb = instaql_jv_to_string(b);
	if ((a->type == TV_STR || sa) && (b->type == TV_STR || sb)) {
		r = u16_cmp(sa ? sa : a->str, sb ? sb : b->str) < 0;
		free(sa);
		free(sb);
		return r;
	}
	x = sa ? js_string_to_number(sa) : jv_to_number(a);
	y = sb ? js_string_to_number(sb) : jv_to_number(b);
	free(sa);
	free(sb);
	if (isnan(x) || isnan(y))
		return -1;
	return x < y;
}

bool
instaql_jv_lt(const struct jv *a, const struct jv *b)
{
	return instaql_jv_less(a, b) == 1;
}

bool
instaql_jv_gt(const struct jv *a, const struct jv *b)
{
	return instaql_jv_less(b, a) == 1;
}

bool
instaql_jv_ge(const struct jv *a, const struct jv *b)
{
	return instaql_jv_less(a, b) == 0;
}

bool
instaql_jv_le(const struct jv *a, const struct jv *b)
{
	return instaql_jv_less(b, a) == 0;
}

/* ---- dates ---- */

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool
read_digits(const char **pp, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*pp)[i] < '0' || (*pp)[i] > '9')
			return false;
		v = v * 10 + ((*pp)[i] - '0');
	}
	*pp += n;
	*ret = v;
	return true;
}

/* The ES date-time string format (and V8's acceptance of a space instead of
 * T and of "YYYY/MM/DD"), with the machine in UTC. NaN otherwise. */
double
instaql_js_date_parse(const char *s)
{
	const char *p = s;
	int64_t year;
	int y4, mon = 1, day = 1, hh = 0, mm = 0, ss = 0, ms = 0, tzh = 0, tzm = 0;
	int sign = 0, tzsign = 0;
	bool has_time = false, has_tz = false, slash = false;
	double t;

	while (*p == ' ')
		p++;
	if (*p == '+' || *p == '-') {
		int y6;

		sign = *p == '-' ? -1 : 1;
		p++;
		if (!read_digits(&p, 6, &y6))
			return NAN;
		if (sign < 0 && y6 == 0)
			return NAN;
		year = sign * (int64_t)y6;
	} else {
		if (!read_digits(&p, 4, &y4))
			return NAN;
		year = y4;
	}
	if (*p == '-' || (*p == '/' && !sign)) {
		char sep = *p;

		slash = sep == '/';
		p++;
		if (!read_digits(&p, 2, &mon))
			return NAN;
		if (*p == sep) {
			p++;
			if (!read_digits(&p, 2, &day))
				return NAN;
		} else if (slash)
			return NAN;
	}
	if (*p == 'T' || (*p == ' ' && p[1] >= '0' && p[1] <= '9')) {
		p++;
		has_time = true;
		if (!read_digits(&p, 2, &hh) || *p != ':')
			return NAN;
		p++;
		if (!read_digits(&p, 2, &mm))
			return NAN;
		if (*p == ':') {
			p++;
			if (!read_digits(&p, 2, &ss))
				return NAN;
			if (*p == '.' || *p == ',') {
				int nd = 0;

				p++;
				if (*p < '0' || *p > '9')
					return NAN;
				while (*p >= '0' && *p <= '9') {
					if (nd < 3)
						ms = ms * 10 + (*p - '0');
					nd++;
					p++;
				}
				while (nd < 3) {
					ms *= 10;
					nd++;
				}
			}
		}
		if (*p == 'Z') {
			has_tz = true;
			p++;
		} else if (*p == '+' || *p == '-') {
			tzsign = *p == '-' ? -1 : 1;
			p++;
			if (!read_digits(&p, 2, &tzh))
				return NAN;
			if (*p == ':')
				p++;
			if (!read_digits(&p, 2, &tzm))
				return NAN;
			has_tz = true;
		}
	} else if (*p == 'Z' && !slash) {
		p++;
		has_tz = true;
	}
	if (*p != 0)
		return NAN;
	/* V8 falls back to its legacy parser, which rolls days 29-31 past a
	 * month's end over into the next month */
	if (mon < 1 || mon > 12 || day < 1 || day > 31)
		return NAN;
	if (hh > 24 || mm > 59 || ss > 59 || (hh == 24 && (mm || ss || ms)) || tzh > 23 || tzm > 59)
		return NAN;
	(void)has_time;
	(void)has_tz;
	t = (double)days_from_civil(year, mon, day) * 86400000.0 +
	    hh * 3600000.0 + mm * 60000.0 + ss * 1000.0 + ms;
	if (tzsign)
		t -= tzsign * (tzh * 3600000.0 + tzm * 60000.0);
	if (fabs(t) > 8.64e15)
		return NAN;
	return t;
}

double
instaql_jv_date_ms(const struct jv *a)
{
	double t;

	if (a->type == TV_STR)
		return instaql_js_date_parse(a->str);
	if (a->type == TV_JSON) {
		char *s = instaql_jv_to_string(a);

		t = s ? instaql_js_date_parse(s) : NAN;
		free(s);
		return t;
	}
	t = jv_to_number(a);
	if (!isfinite(t) || fabs(t) > 8.64e15)
		return NAN;
	t = trunc(t);
	return t == 0 ? 0 : t;
}

/* ---- uuidCompare ---- */

static int
hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* parseInt(str, 16) of a string of at most two characters; NaN as -1000. */
static int
parse_hex2(const char *p, size_t n)
{
	size_t i = 0;
	int sign = 1, v = 0, digits = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r' || p[i] == '\v' || p[i] == '\f'))
		i++;
	if (i < n && (p[i] == '+' || p[i] == '-')) {
		sign = p[i] == '-' ? -1 : 1;
		i++;
	}
	if (i + 1 < n && p[i] == '0' && (p[i + 1] == 'x' || p[i + 1] == 'X'))
		i += 2;
	for (; i < n && hex_val((unsigned char)p[i]) >= 0; i++) {
		v = v * 16 + hex_val((unsigned char)p[i]);
		digits++;
	}
	return digits ? sign * v : -1000;
}

int
instaql_js_uuid_compare(const struct jv *a, const struct jv *b)
{
	char ha[80], hb[80];
	size_t na = 0, nb = 0;

	if (a->type != TV_STR || b->type != TV_STR)
		return 0;
	for (const char *p = a->str; *p && na < sizeof(ha) - 1; p++)
		if (*p != '-')
			ha[na++] = *p;
	for (const char *p = b->str; *p && nb < sizeof(hb) - 1; p++)
		if (*p != '-')
			hb[nb++] = *p;
	for (size_t i = 0; i < na; i += 2) {
		int x = parse_hex2(ha + i, na - i >= 2 ? 2 : 1);
		int y = i < nb ? parse_hex2(hb + i, nb - i >= 2 ? 2 : 1) : -1000;

		if (x == -1000 || y == -1000)
			continue;	/* NaN / undefined compare false both ways */
		if (x < y)
			return -1;
		if (x > y)
			return 1;
	}
	return 0;
}

/* ---- collation (Intl.Collator('en-US'), root order, three levels) ---- */

/* ICU root order of ASCII and common punctuation and symbols, one group per
 * primary weight ("'", U+2018 and U+2019 differ only at the third level);
 * control characters other than TAB..CR are ignorable. Taken from
 * Intl.Collator('en-US') in Node 20. */
static const char *const collate_groups[] = {
	"\t", "\n", "\v", "\f", "\r", " \u00a0", "_", "-", "\u2013", "\u2014", ",", ";", ":",
	"!", "\u00a1", "?", "\u00bf", ".", "\u00b7", "'\u2018\u2019", "\"\u201c\u201d",
	"\u00ab", "\u00bb", "(", ")", "[", "]", "{", "}", "\u00a7", "\u00b6", "@", "*", "/",
	"\\", "&", "#", "%", "`", "^", "\u00b0", "\u00a9", "\u00ae", "+", "\u00b1", "\u00f7",
	"\u00d7", "<", "=", ">", "|", "~", "\u00a2", "$", "\u00a3", "\u00a5", "\u20ac",
	"0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
	"aA", "bB", "cC", "dD", "eE", "fF", "gG", "hH", "iI", "jJ", "kK", "lL", "mM",
	"nN", "oO", "pP", "qQ", "rR", "sS", "tT", "uU", "vV", "wW", "xX", "yY", "zZ",
};

#define COLLATE_TABLE 0x2100

struct ce {
	uint32_t p;	/* primary, 0 = ignorable */
	uint8_t s, t;	/* secondary (accent), tertiary (case, variant) */
};

static struct {
	uint16_t p;
	uint8_t t;
} collate_tab[COLLATE_TABLE];

static void
collate_init(void)
{
	static bool init;

	if (init)
		return;
	for (size_t g = 0; g < ELEMENTSOF(collate_groups); g++) {
		const unsigned char *q = (const unsigned char *)collate_groups[g];
		uint8_t t = 0;

		while (*q) {
			uint32_t c = utf8_next(&q);

			if (c < COLLATE_TABLE) {
				collate_tab[c].p = (uint16_t)(g + 1);
				collate_tab[c].t = t;
			}
			t++;
		}
	}
	init = true;
}

static uint32_t
ascii_primary(int c)
{
	collate_init();
	return c < COLLATE_TABLE ? collate_tab[c].p : 0;
}

/* Latin-1 letters: base letter and accent (acute 1, grave 2, circumflex 4,
 * ring 6, diaeresis 7, tilde 9, cedilla 12, stroke 14). */
static const struct {
	uint16_t cp;
	char base;
	uint8_t acc;
} latin1[] = {
	{0xC0, 'A', 2}, {0xC1, 'A', 1}, {0xC2, 'A', 4}, {0xC3, 'A', 9}, {0xC4, 'A', 7}, {0xC5, 'A', 6},
	{0xC7, 'C', 12}, {0xC8, 'E', 2}, {0xC9, 'E', 1}, {0xCA, 'E', 4}, {0xCB, 'E', 7},
	{0xCC, 'I', 2}, {0xCD, 'I', 1}, {0xCE, 'I', 4}, {0xCF, 'I', 7}, {0xD0, 'D', 15},
	{0xD1, 'N', 9}, {0xD2, 'O', 2}, {0xD3, 'O', 1}, {0xD4, 'O', 4}, {0xD5, 'O', 9}, {0xD6, 'O', 7},
	{0xD8, 'O', 14}, {0xD9, 'U', 2}, {0xDA, 'U', 1}, {0xDB, 'U', 4}, {0xDC, 'U', 7}, {0xDD, 'Y', 1},
	{0xE0, 'a', 2}, {0xE1, 'a', 1}, {0xE2, 'a', 4}, {0xE3, 'a', 9}, {0xE4, 'a', 7}, {0xE5, 'a', 6},
	{0xE7, 'c', 12}, {0xE8, 'e', 2}, {0xE9, 'e', 1}, {0xEA, 'e', 4}, {0xEB, 'e', 7},
	{0xEC, 'i', 2}, {0xED, 'i', 1}, {0xEE, 'i', 4}, {0xEF, 'i', 7}, {0xF0, 'd', 15},
	{0xF1, 'n', 9}, {0xF2, 'o', 2}, {0xF3, 'o', 1}, {0xF4, 'o', 4}, {0xF5, 'o', 9}, {0xF6, 'o', 7},
	{0xF8, 'o', 14}, {0xF9, 'u', 2}, {0xFA, 'u', 1}, {0xFB, 'u', 4}, {0xFC, 'u', 7}, {0xFD, 'y', 1},
	{0xFF, 'y', 7},
};

/* Collation elements of one code point: their number, or -n for n copies of
 * out[0]. */
static int
collate_ces(uint32_t c, struct ce out[3])
{
	collate_init();
	if (c < COLLATE_TABLE && collate_tab[c].p) {
		out[0] = (struct ce){ collate_tab[c].p, 0, collate_tab[c].t };
		return 1;
	}
	if (c < 128)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(latin1); i++)
		if (latin1[i].cp == c) {
			char b = latin1[i].base;

			out[0] = (struct ce){ ascii_primary(b), latin1[i].acc, (uint8_t)(b >= 'A' && b <= 'Z') };
			return 1;
		}
	/* æ and ß expand to two letters plus a secondary weight above every
	 * accent's, which the first element carries here */
	if (c == 0xC6 || c == 0xE6) {
		out[0] = (struct ce){ ascii_primary('a'), 20, (uint8_t)(c == 0xC6 ? 3 : 2) };
		out[1] = (struct ce){ ascii_primary('e'), 0, (uint8_t)(c == 0xC6 ? 3 : 2) };
		return 2;
	}
	if (c == 0x2026) {	/* …: . . . (a compatibility expansion) */
		for (int i = 0; i < 2; i++)
			out[i] = (struct ce){ ascii_primary('.'), 0, 2 };
		return -3;
	}
	if (c == 0xDF) {
		out[0] = (struct ce){ ascii_primary('s'), 21, 2 };
		out[1] = (struct ce){ ascii_primary('s'), 0, 2 };
		return 2;
	}
	if (c < 0x20 || (c >= 0x7F && c < 0xA0))
		return 0;
	/* everything else after the letters, in code point order */
	out[0] = (struct ce){ 1000 + c, 0, 0 };
	return 1;
}

struct cebuf {
	struct ce *v;
	size_t n, cap;
};

static int
collate_key(const char *s, struct cebuf *b)
{
	const unsigned char *p = (const unsigned char *)s;

	b->n = 0;
	while (*p) {
		struct ce ce[3];
		int k = collate_ces(utf8_next(&p), ce);

		if (k < 0) {
			/* -n: n copies of the first element */
			k = -k;
			for (int i = 1; i < k; i++)
				ce[i] = ce[0];
		}
		if (b->n + 3 > b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 32;
			struct ce *nv = realloc(b->v, cap * sizeof(*nv));

			if (nv == NULL)
				return -ENOMEM;
			b->v = nv;
			b->cap = cap;
		}
		for (int i = 0; i < k; i++)
			b->v[b->n++] = ce[i];
	}
	return 0;
}

int
instaql_js_collate(const struct jv *a, const struct jv *b)
{
	char *sa = instaql_jv_to_string(a), *sb = instaql_jv_to_string(b);
	struct cebuf ka = {0}, kb = {0};
	int r = 0;

	if (sa == NULL || sb == NULL || collate_key(sa, &ka) < 0 || collate_key(sb, &kb) < 0) {
		r = sa && sb ? strcmp(sa, sb) : 0;
		goto out;
	}
	for (int level = 0; level < 3 && r == 0; level++) {
		size_t i = 0, j = 0;

		for (;;) {
			uint32_t x, y;

			while (i < ka.n && level > 0 && ka.v[i].p == 0)
				i++;
			while (j < kb.n && level > 0 && kb.v[j].p == 0)
				j++;
			if (i >= ka.n || j >= kb.n) {
				if (i < ka.n)
					r = 1;
				else if (j < kb.n)
					r = -1;
				break;
			}
			x = level == 0 ? ka.v[i].p : level == 1 ? ka.v[i].s : ka.v[i].t;
			y = level == 0 ? kb.v[j].p : level == 1 ? kb.v[j].s : kb.v[j].t;
			if (x != y) {
				r = x < y ? -1 : 1;
				break;
			}
			i++;
			j++;
		}
	}
out:
	free(ka.v);
	free(kb.v);
	free(sa);
	free(sb);
	return r;
}

/* ---- LIKE ---- */

/* Canonicalize() of a non-unicode case-insensitive JS regex. */
static uint16_t
js_canon(uint16_t c)
{
	if (c < 128)
		return (c >= 'a' && c <= 'z') ? (uint16_t)(c - 32) : c;
	if ((c >= 0xE0 && c <= 0xFE && c != 0xF7))
		return (uint16_t)(c - 32);
	if (c == 0xFF)
		return 0x178;
	if (c == 0xB5)
		return 0x39C;
	if (c >= 0x100 && c <= 0x17F) {
		if ((c >= 0x100 && c <= 0x137 && c != 0x131) || (c >= 0x14A && c <= 0x177))
			return (c & 1) ? (uint16_t)(c - 1) : c;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
			return (c & 1) ? c : (uint16_t)(c - 1);
		return c;
	}
	if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2)
		return (uint16_t)(c - 32);
	if (c == 0x3C2)
		return 0x3A3;
	if (c >= 0x430 && c <= 0x44F)
		return (uint16_t)(c - 32);
	if (c >= 0x450 && c <= 0x45F)
		return (uint16_t)(c - 80);
	return c;
}

int
instaql_js_like_compile(const cJSON *pattern, bool icase, struct js_like *ret)
{
	struct js_like l = { .icase = icase };

	if (cJSON_IsString(pattern)) {
		l.pat = to_u16(pattern->valuestring, &l.n);
		if (l.pat == NULL)
			return -ENOMEM;
		l.valid = true;
		if (icase)
			for (size_t i = 0; i < l.n; i++)
				l.pat[i] = js_canon(l.pat[i]);
	}
	*ret = l;
	return 0;
}

void
instaql_js_like_free(struct js_like *l)
{
	free(l->pat);
	l->pat = NULL;
}

bool
instaql_js_like_match(const struct js_like *l, const struct jv *v)
{
	uint16_t *s;
	size_t n, i = 0, j = 0, star_j = SIZE_MAX, star_i = 0;
	bool ok;

	if (!l->valid || v->type != TV_STR)
		return false;
	s = to_u16(v->str, &n);
	if (s == NULL)
		return false;
	if (l->icase)
		for (size_t k = 0; k < n; k++)
			s[k] = js_canon(s[k]);
	/* % is any run, _ one code unit, everything else literal */
	while (i < n) {
		if (j < l->n && l->pat[j] == '%') {
			star_j = j++;
			star_i = i;
		} else if (j < l->n && (l->pat[j] == '_' || l->pat[j] == s[i])) {
			i++;
			j++;
		} else if (star_j != SIZE_MAX) {
			j = star_j + 1;
			i = ++star_i;
		} else {
			free(s);
			return false;
		}
	}
	while (j < l->n && l->pat[j] == '%')
		j++;
	ok = j == l->n;
	free(s);
	return ok;
}
