# tests/mock.mk: the mock Instant sync server (tests/mock/, see tests/mock/README.md) and its tests.
MOCK_TESTS = \
	mock/test-client.mjs \
	mock/test-init.mjs \
	mock/test-query.mjs \
	mock/test-transact.mjs \
	mock/test-rooms.mjs \
	mock/test-faults.mjs \
	mock/test-auth.mjs \
	mock/test-tls.mjs \
	mock/test-robust.mjs
TESTS += $(MOCK_TESTS)
EXTRA_DIST += \
	$(MOCK_TESTS) \
	mock/README.md \
	mock/server.mjs \
	mock/store.mjs \
	mock/query.mjs \
	mock/harness.mjs \
	mock/peer.mjs \
	mock/ctl.mjs
