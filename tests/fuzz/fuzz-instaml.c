/* fuzz-instaml.c: the InstaML transform with the zeneca attrs (mode
 * decisions against a small zeneca store), and raw tx-steps validation. What
 * the transform makes is checked, applied to a store and rewritten; raw steps
 * that pass validation are applied. Errors must come with messages. The input is an
 * op list, or raw tx-steps, or both ({"ops":…,"steps":…}). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "store/instaml.h"
#include "store/util.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target_name[] = "instaml";

static bool
fz_entity_exists(void *ud, const char *etype, const char *eid)
{
	return tstore_has_entity(ud, etype, eid);
}

static bool
fz_lookup_exists(void *ud, const char *attr_id, const cJSON *value)
{
	return tstore_has_av(ud, attr_id, value);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)fuzz_zeneca_small();
	return 0;
}

/* Apply steps to a copy of the small store; an error must come with a message. */
static void
fz_apply(const cJSON *steps)
{
	struct tstore *s = NULL;
	char *err = NULL;
	int r;

	if (tstore_dup(fuzz_zeneca_small(), &s) < 0)
		return;
	r = tstore_apply_steps(s, steps, &err);
	if (r == -EINVAL && err == NULL)
		fuzz_fail("tstore_apply_steps failed without a message");
	if (r < 0 && r != -EINVAL && r != -ENOMEM)
		fuzz_fail("tstore_apply_steps returned %d", r);
	free(err);
	tstore_free(s);
}

static void
fz_ops(const cJSON *ops)
{
	struct instaml_ctx ctx = {
		.entity_exists = fz_entity_exists,
		.lookup_exists = fz_lookup_exists,
		.userdata = (void *)fuzz_zeneca_small(),
	};
	cJSON *steps = NULL, *attrs = NULL;
	char *err = NULL, *verr = NULL;
	bool changed;
	int r;

	r = instaml_transform(fuzz_zeneca_attrs(), ops, &ctx, &steps, &err);
	if (r == 0) {
		/* The transform passes on what the JS client would send (two
		 * non-uuid ids from a 2-element link value, for one), so its steps
		 * need not pass the raw-steps check; both must merely not crash. */
		if (instaml_validate_steps(steps, &verr) == -EINVAL && verr == NULL)
			fuzz_fail("refused steps without a message");
		fz_apply(steps);
		if (instaml_new_attrs(steps, &attrs) == 0)
			cJSON_Delete(attrs);
		(void)instaml_rewrite(fuzz_zeneca_attrs(), steps, true, &changed);
		cJSON_Delete(steps);
	} else if (r == -EINVAL) {
		if (err == NULL)
			fuzz_fail("a refused op list without a message");
	} else if (r != -ENOMEM && r != -EIO)
		fuzz_fail("instaml_transform returned %d", r);
	free(err);
	free(verr);
}

static void
fz_steps(const cJSON *steps)
{
	char *err = NULL;
	int r = instaml_validate_steps(steps, &err);

	if (r == 0)
		fz_apply(steps);
	else if (r == -EINVAL && err == NULL)
		fuzz_fail("refused tx-steps without a message");
	free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *in = fuzz_parse(data, size);

	if (in == NULL)
		return 0;
	if (cJSON_IsObject(in)) {
		if (json_get(in, "ops") != NULL)
			fz_ops(json_get(in, "ops"));
		if (json_get(in, "steps") != NULL)
			fz_steps(json_get(in, "steps"));
	} else {
		fz_ops(in);
		fz_steps(in);
	}
	cJSON_Delete(in);
	return 0;
}
