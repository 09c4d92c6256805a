/* fuzz-instaql.c: InstaQL shape checking and evaluation on the zeneca data
 * set: instaql_validate and instaql_eval on the input as a query. A query
 * the shape check accepts may still fail evaluation (attr-dependent checks,
 * the row bound) but only with -EINVAL and a message. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "store/instaql.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target_name[] = "instaql";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)fuzz_zeneca_store();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *q = fuzz_parse(data, size), *res = NULL, *pi = NULL;
	char *err = NULL;
	int rv, re;

	if (q == NULL)
		return 0;
	rv = instaql_validate(q, &err);
	if (rv < 0 && rv != -EINVAL && rv != -ENOMEM)
		fuzz_fail("instaql_validate returned %d", rv);
	if (rv == -EINVAL && err == NULL)
		fuzz_fail("an invalid query without a message");
	free(err);
	err = NULL;
	if (rv == 0 || size < 512) {
		re = instaql_eval(fuzz_zeneca_store(), q, &res, &pi, &err);
		if (re == 0) {
			if (!cJSON_IsObject(res))
				fuzz_fail("a result that is not an object");
			if (rv != 0)
				fuzz_fail("instaql_eval accepted what instaql_validate refused");
		} else if (re == -EINVAL) {
			if (err == NULL)
				fuzz_fail("an evaluation error without a message");
		} else if (re != -ENOMEM)
			fuzz_fail("instaql_eval returned %d", re);
		cJSON_Delete(res);
		cJSON_Delete(pi);
		free(err);
	}
	cJSON_Delete(q);
	return 0;
}
