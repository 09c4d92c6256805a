/* Minimal assertion helpers for the C unit tests: each failed check prints the
 * expression and location, and the test exits non-zero at the end. */
#ifndef INSTANTD_TESTS_TAP_H
#define INSTANTD_TESTS_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_failed;
static int tap_count;

#define CHECK(expr) do { \
	tap_count++; \
	if (!(expr)) { \
		tap_failed++; \
		fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #expr); \
	} \
} while (0)

#define CHECK_INT(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	tap_count++; \
	if (_a != _b) { \
		tap_failed++; \
		fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", \
		    __FILE__, __LINE__, #a, #b, _a, _b); \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *_a = (a), *_b = (b); \
	tap_count++; \
	if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) { \
		tap_failed++; \
		fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", \
		    __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
	} \
} while (0)

/* Call at the end of main(). */
static inline int
tap_done(void)
{
	fprintf(stderr, "%d checks, %d failed\n", tap_count, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
