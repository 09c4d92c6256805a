# tests/engine.mk: the local InstaQL engine: unit tests, and the differential
# test against @instantdb/core 1.0.67 (engine/diff.mjs drives engine-eval),
# and the property test of store/reads.h (engine/reads.mjs drives reads-check).
check_PROGRAMS += engine/engine-eval engine/test-engine engine/reads-check
engine_engine_eval_SOURCES = engine/engine-eval.c
engine_engine_eval_LDADD = $(STORE_LIBS)
engine_test_engine_SOURCES = engine/test-engine.c
engine_test_engine_LDADD = $(STORE_LIBS)
engine_reads_check_SOURCES = engine/reads-check.c
engine_reads_check_LDADD = $(STORE_LIBS)
TESTS += engine/test-engine engine/diff.mjs engine/reads.mjs
EXTRA_DIST += \
	engine/diff.mjs \
	engine/reads.mjs \
	engine/reference.mjs \
	engine/corpus.mjs \
	engine/generate.mjs
