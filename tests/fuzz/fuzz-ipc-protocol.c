/* fuzz-ipc-protocol.c: the request check every local request passes
 * (ipc_protocol_check) on whatever cJSON makes of the input, and the op
 * name table both ways. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc-protocol.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target_name[] = "ipc-protocol";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *msg = fuzz_parse(data, size);
	char *err = NULL;
	const cJSON *op;
	int r;

	if (msg == NULL)
		return 0;
	r = ipc_protocol_check(msg, &err);
	if (r == 0) {
		if (err != NULL)
			fuzz_fail("an error message on success");
		/* A request that passed names a known op, and the table agrees. */
		op = cJSON_GetObjectItemCaseSensitive(msg, "op");
		if (!cJSON_IsString(op) || ipc_op_from_string(op->valuestring) == _IPC_OP_INVALID)
			fuzz_fail("a request with no known op passed");
		if (strcmp(ipc_op_to_string(ipc_op_from_string(op->valuestring)), op->valuestring) != 0)
			fuzz_fail("op names do not round-trip");
	} else if (r == -EBADMSG || r == -EOPNOTSUPP || r == -EINVAL) {
		if (err == NULL || ipc_protocol_error_type(r) == NULL)
			fuzz_fail("error %d without a message or a type", r);
	} else if (r != -ENOMEM)
		fuzz_fail("unexpected return %d", r);
	free(err);
	/* Without ret_err the answer is the same. */
	if (ipc_protocol_check(msg, NULL) != r)
		fuzz_fail("the check depends on ret_err");
	cJSON_Delete(msg);
	return 0;
}
