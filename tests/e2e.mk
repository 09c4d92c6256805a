# tests/e2e.mk: end-to-end scenarios driving the real instantd binary, the mock server and
# local clients (issue: offline-first end to end).
E2E_TESTS = e2e/test-offline.mjs e2e/test-rooms.mjs e2e/test-sync.mjs e2e/test-torture.mjs \
	e2e/test-daemon.mjs e2e/test-auth.mjs e2e/test-files.mjs e2e/test-demo.sh
TESTS += $(E2E_TESTS)
EXTRA_DIST += e2e/lib.mjs $(E2E_TESTS)

# The long form of the torture test: 1,000 kills.
torture:
	TORTURE_KILLS=1000 $(MAKE) $(AM_MAKEFLAGS) check TESTS=e2e/test-torture.mjs
.PHONY: torture
