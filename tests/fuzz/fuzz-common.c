/* fuzz-common.c: helpers shared by the fuzz harnesses (see fuzz.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/util.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_TOP_SRCDIR
#define FUZZ_TOP_SRCDIR "."
#endif

/* The small store's size: enough entities of several etypes for mode
 * decisions and lookups, small enough to copy for every input. */
#define FUZZ_SMALL_TRIPLES 600

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz %s: invariant broken: ", fuzz_target_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

cJSON *
fuzz_parse(const uint8_t *data, size_t size)
{
	return cJSON_ParseWithLength((const char *)data, size);
}

static cJSON *
fuzz_read_json(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	cJSON *j;

	snprintf(path, sizeof(path), "%s/tests/data/zeneca/%s", top ? top : FUZZ_TOP_SRCDIR, name);
	f = fopen(path, "r");
	if (f == NULL)
		fuzz_fail("cannot open %s (set top_srcdir)", path);
	if (getdelim(&buf, &len, '\0', f) < 0)
		fuzz_fail("cannot read %s", path);
	fclose(f);
	j = cJSON_Parse(buf);
	free(buf);
	if (j == NULL)
		fuzz_fail("%s is not JSON", path);
	return j;
}

static struct attrs *zeneca_attrs;
static struct tstore *zeneca_store, *zeneca_small;

static void
fuzz_zeneca_load(void)
{
	cJSON *a, *t, *few;
	int i = 0;
	const cJSON *row;

	if (zeneca_attrs != NULL)
		return;
	a = fuzz_read_json("attrs.json");
	t = fuzz_read_json("triples.json");
	zeneca_attrs = attrs_new();
	if (zeneca_attrs == NULL || attrs_set_all(zeneca_attrs, a) < 0)
		fuzz_fail("cannot load the zeneca attrs");
	if (tstore_new(zeneca_attrs, &zeneca_store) < 0 ||
	    tstore_add_triples(zeneca_store, t) < 0)
		fuzz_fail("cannot build the zeneca store");
	few = cJSON_CreateArray();
	cJSON_ArrayForEach(row, t) {
		if (i++ == FUZZ_SMALL_TRIPLES)
			break;
		cJSON_AddItemToArray(few, cJSON_Duplicate(row, 1));
	}
	if (tstore_new(zeneca_attrs, &zeneca_small) < 0 ||
	    tstore_add_triples(zeneca_small, few) < 0)
		fuzz_fail("cannot build the small zeneca store");
	cJSON_Delete(few);
	cJSON_Delete(t);
	cJSON_Delete(a);
}

const struct attrs *
fuzz_zeneca_attrs(void)
{
	fuzz_zeneca_load();
	return zeneca_attrs;
}

struct tstore *
fuzz_zeneca_store(void)
{
	fuzz_zeneca_load();
	return zeneca_store;
}

const struct tstore *
fuzz_zeneca_small(void)
{
	fuzz_zeneca_load();
	return zeneca_small;
}
