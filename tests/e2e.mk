# tests/e2e.mk: end-to-end scenarios driving the real instantd binary, the mock server and
# local clients (issue: offline-first end to end).
E2E_TESTS = \
	e2e/test-offline.mjs \
	e2e/test-rooms.mjs \
	e2e/test-sync.mjs \
	e2e/test-replay.mjs \
	e2e/test-torture.mjs \
	e2e/test-daemon.mjs \
	e2e/test-auth.mjs \
	e2e/test-files.mjs \
	e2e/test-demo.sh \
	e2e/test-manage.mjs \
	e2e/test-operate.mjs \
	e2e/test-errors.mjs \
	e2e/test-doctor.mjs \
	e2e/test-resolve.mjs \
	e2e/test-error-types.mjs \
	e2e/test-soak.mjs \
	e2e/test-auth-faults.mjs \
	e2e/test-partial.mjs \
	e2e/test-incremental.mjs \
	e2e/test-endpoint.mjs \
	e2e/test-endpoint-tcp.mjs \
	e2e/test-endpoint-users.mjs
TESTS += $(E2E_TESTS)
EXTRA_DIST += e2e/lib.mjs $(E2E_TESTS)

# The long form of the torture test: 1,000 kills.
torture:
	TORTURE_KILLS=1000 $(MAKE) $(AM_MAKEFLAGS) check TESTS=e2e/test-torture.mjs
.PHONY: torture

# The long form of the soak test: thousands of programs over ten minutes (the short form,
# a few hundred in about 35 s, is part of make check).
soak:
	SOAK_PROGRAMS=$${SOAK_PROGRAMS:-6000} SOAK_SECONDS=$${SOAK_SECONDS:-600} SOAK_CONCURRENCY=$${SOAK_CONCURRENCY:-48} \
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=e2e/test-soak.mjs
.PHONY: soak
