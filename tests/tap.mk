# tests/tap.mk: the shared C test helpers.
EXTRA_DIST += tap.h
