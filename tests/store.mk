# tests/store.mk: tests of this area (appended to TESTS, check_PROGRAMS, EXTRA_DIST).
