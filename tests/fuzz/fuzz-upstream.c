/* fuzz-upstream.c: what the daemon does with a server message, through the
 * pure functions it uses (daemon/upstream.c exposes no frame parser): attrs
 * into an attr registry and the queued-write rewrite against them
 * (instaml_rewrite), query results into a triple store (tstore_add_result)
 * and a layered render (instaql_eval_layered), presence patches
 * (rooms_apply_edits), and token redaction (upstream_redact). The input is
 * one server message; the whole input is also tried as a bare result and as
 * a bare edit list. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rooms.h"
#include "daemon/upstream.h"
#include "store/instaml.h"
#include "store/instaql.h"
#include "store/util.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target_name[] = "upstream";

/* A queue of writes made offline, as the daemon holds them: steps made by
 * the transform with the zeneca attrs, creating attrs the server may know
 * under other ids. */
static cJSON *fz_queue[2];

static const char *const fz_queue_ops[2] = {
	"[[\"update\",\"goals\",\"7d9bc7a6-1c2e-4f3e-9d8e-3b6f0b1e2a11\",{\"title\":\"offline\",\"n\":1}],"
	" [\"link\",\"goals\",\"7d9bc7a6-1c2e-4f3e-9d8e-3b6f0b1e2a11\",{\"owner\":\"0a4f5e2c-2b1d-4c3e-8f9a-1b2c3d4e5f60\"}]]",
	"[[\"update\",\"users\",[\"handle\",\"alex\"],{\"fullName\":\"A\"}],"
	" [\"delete\",\"bookshelves\",\"1b0b9b77-8d2b-4bb0-9a3f-0f2f2f2f2f2f\"]]",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (size_t i = 0; i < ELEMENTSOF(fz_queue); i++) {
		cJSON *ops = cJSON_Parse(fz_queue_ops[i]);
		char *err = NULL;

		if (ops == NULL || instaml_transform(fuzz_zeneca_attrs(), ops, NULL, &fz_queue[i], &err) < 0)
			fuzz_fail("cannot build the queued write %zu: %s", i, err ? err : "?");
		cJSON_Delete(ops);
	}
	return 0;
}

/* add-query-ok "result" / refresh-ok "instaql-result" with query q. */
static void
fz_result(const struct attrs *attrs, const cJSON *result, const cJSON *q, const cJSON *ptx)
{
	struct tstore *s = NULL;
	struct instaql_opts opts = {
		.page_info = instaql_result_page_info(result),
		.aggregate = instaql_result_aggregate(result),
	};
	struct instaql_mutation muts[ELEMENTSOF(fz_queue)];
	cJSON *data = NULL, *pi = NULL;
	char *err = NULL;
	int64_t processed = 0;

	if (tstore_new(attrs, &s) < 0)
		return;
	(void)tstore_add_result(s, result);
	if (cJSON_IsObject(q) && instaql_validate(q, NULL) == 0) {
		if (instaql_eval_opts(s, q, &opts, &data, &pi, &err) == 0) {
			cJSON_Delete(data);
			cJSON_Delete(pi);
			data = pi = NULL;
		}
		free(err);
		err = NULL;
		(void)json_get_int64(ptx, &processed);
		for (size_t i = 0; i < ELEMENTSOF(fz_queue); i++)
			muts[i] = (struct instaql_mutation){ .tx_steps = fz_queue[i],
			    .tx_id = i == 0 ? 0 : processed };
		if (instaql_eval_layered(attrs, NULL, result, muts, ELEMENTSOF(muts), processed, q,
		    &opts, &data, &pi, &err) == 0) {
			cJSON_Delete(data);
			cJSON_Delete(pi);
		}
		free(err);
	}
	tstore_free(s);
}

/* New server attrs: the registry, then the queue rewritten against them. */
static struct attrs *
fz_attrs(const cJSON *list)
{
	struct attrs *a = attrs_new();
	cJSON *steps[ELEMENTSOF(fz_queue)];
	bool drop[ELEMENTSOF(fz_queue)] = { false, true }, changed[ELEMENTSOF(fz_queue)];

	if (a == NULL)
		return NULL;
	if (attrs_set_all(a, list) < 0) {
		attrs_free(a);
		return NULL;
	}
	for (size_t i = 0; i < ELEMENTSOF(fz_queue); i++) {
		bool ch = false;
		cJSON *copy = cJSON_Duplicate(fz_queue[i], 1);

		(void)instaml_rewrite(a, copy, i == 1, &ch);
		cJSON_Delete(copy);
		steps[i] = cJSON_Duplicate(fz_queue[i], 1);
	}
	(void)instaml_rewrite_queue(a, steps, drop, ELEMENTSOF(steps), changed);
	for (size_t i = 0; i < ELEMENTSOF(steps); i++)
		cJSON_Delete(steps[i]);
	return a;
}

static void
fz_presence(const cJSON *msg)
{
	cJSON *peers = cJSON_CreateObject();
	const cJSON *data = json_get(msg, "data");

	if (peers == NULL)
		return;
	/* refresh-presence gives the whole map; patch-presence edits it. */
	if (cJSON_IsObject(data)) {
		cJSON_Delete(peers);
		peers = cJSON_Duplicate(data, 1);
	}
	if (peers != NULL)
		(void)rooms_apply_edits(peers, json_get(msg, "edits"));
	cJSON_Delete(peers);
}

/* Is token in a string value of v (keys are not values)? */
static bool
fz_has_token(const cJSON *v, const char *token)
{
	const cJSON *c;

	if (cJSON_IsString(v))
		return strstr(v->valuestring, token) != NULL;
	cJSON_ArrayForEach(c, v)
		if (fz_has_token(c, token))
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *msg = fuzz_parse(data, size), *copy;
	const struct attrs *attrs = fuzz_zeneca_attrs();
	struct attrs *server = NULL;
	const cJSON *c;

	if (msg == NULL)
		return 0;

	if (json_get(msg, "attrs") != NULL)
		server = fz_attrs(json_get(msg, "attrs"));
	if (server != NULL)
		attrs = server;
	if (json_get(msg, "result") != NULL)
		fz_result(attrs, json_get(msg, "result"), json_get(msg, "q"), json_get(msg, "processed-tx-id"));
	cJSON_ArrayForEach(c, json_get(msg, "computations"))
		fz_result(attrs, json_get(c, "instaql-result"), json_get(c, "instaql-query"),
		    json_get(msg, "processed-tx-id"));
	fz_presence(msg);

	/* The whole message as a bare result and as an edit list. */
	fz_result(attrs, msg, NULL, NULL);
	{
		cJSON *peers = cJSON_CreateObject();

		if (peers != NULL)
			(void)rooms_apply_edits(peers, msg);
		cJSON_Delete(peers);
	}

	/* The daemon logs server errors only after redacting the token. */
	copy = cJSON_Duplicate(msg, 1);
	if (copy != NULL) {
		upstream_redact(copy, "secret-token");
		/* Only members are redacted, never a bare top-level string. */
		if (!cJSON_IsString(copy) && fz_has_token(copy, "secret-token"))
			fuzz_fail("the token survived redaction");
		cJSON_Delete(copy);
	}
	attrs_free(server);
	cJSON_Delete(msg);
	return 0;
}
