# tests/store.mk: tests of the profile database (store/db*): unit tests, the
# kill -9 crash test and the corruption recovery test.
check_PROGRAMS += test-db test-db-crash test-db-recover
TESTS += test-db test-db-crash test-db-recover
test_db_SOURCES = test-db.c
test_db_LDADD = $(STORE_LIBS)
test_db_crash_SOURCES = test-db-crash.c
test_db_crash_LDADD = $(STORE_LIBS)
test_db_recover_SOURCES = test-db-recover.c
test_db_recover_LDADD = $(STORE_LIBS)
# The attr registry.
check_PROGRAMS += test-attrs
TESTS += test-attrs
test_attrs_SOURCES = test-attrs.c
test_attrs_LDADD = $(STORE_LIBS)
# How triple stores share what they hold (the log of a store, the value table).
check_PROGRAMS += test-tstore-share
TESTS += test-tstore-share
test_tstore_share_SOURCES = test-tstore-share.c
test_tstore_share_LDADD = $(STORE_LIBS)
