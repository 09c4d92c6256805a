# tests/engine.mk: the local InstaQL engine: unit tests, and the differential
# test against @instantdb/core 1.0.67 (engine/diff.mjs drives engine-eval).
check_PROGRAMS += engine/engine-eval engine/test-engine
engine_engine_eval_SOURCES = engine/engine-eval.c
engine_engine_eval_LDADD = $(STORE_LIBS)
engine_test_engine_SOURCES = engine/test-engine.c
engine_test_engine_LDADD = $(STORE_LIBS)
TESTS += engine/test-engine engine/diff.mjs
EXTRA_DIST += \
	engine/diff.mjs \
	engine/reference.mjs \
	engine/corpus.mjs \
	engine/generate.mjs
