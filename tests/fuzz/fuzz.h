/* fuzz.h: what every fuzz harness provides and the helpers they share.
 * A harness is linked either with libFuzzer (make fuzz, --enable-fuzzing)
 * or with replay.c, which feeds it every saved input in make check. */
#ifndef INSTANTD_TESTS_FUZZ_H
#define INSTANTD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "store/attrs.h"
#include "store/tstore.h"

/* The harness's name: its corpus is fuzz/corpus/<name>, its kept crash
 * inputs fuzz/crashes/<name>. */
extern const char fuzz_target_name[];

/* libFuzzer's entry points; replay.c calls them the same way. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A harness found a broken invariant: print why and abort (a crash to the
 * fuzzer, a failed test to replay). */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Parse data as JSON (need not be NUL-terminated). NULL when it is not JSON.
 * The caller owns the result. */
cJSON *fuzz_parse(const uint8_t *data, size_t size);

/* The zeneca data set of tests/data, loaded once and kept for the process:
 * its attrs, a store with all its triples, and a small store with the first
 * few hundred (cheap to tstore_dup per input). Abort when the files are
 * missing: $top_srcdir, else the source tree configure saw. */
const struct attrs *fuzz_zeneca_attrs(void);
struct tstore *fuzz_zeneca_store(void);
const struct tstore *fuzz_zeneca_small(void);

#endif
