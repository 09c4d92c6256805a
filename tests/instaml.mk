# tests/instaml.mk: unit tests of the InstaML transform and its differential test
# against @instantdb/core (instaml/diff.mjs drives instaml/instaml-run).
check_PROGRAMS += instaml/test-instaml instaml/instaml-run
TESTS += instaml/test-instaml instaml/diff.mjs
instaml_test_instaml_SOURCES = instaml/test-instaml.c
instaml_test_instaml_LDADD = $(STORE_LIBS)
instaml_instaml_run_SOURCES = instaml/instaml-run.c
instaml_instaml_run_LDADD = $(STORE_LIBS)
EXTRA_DIST += instaml/diff.mjs instaml/cases.mjs
