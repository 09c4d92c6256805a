# tests/e2e.mk: end-to-end scenarios driving the real instantd binary, the mock server and
# local clients (issue: offline-first end to end).
TESTS += e2e/test-offline.mjs e2e/test-rooms.mjs
EXTRA_DIST += e2e/lib.mjs e2e/test-offline.mjs e2e/test-rooms.mjs
