# tests/upstream.mk: tests of the upstream session (daemon/upstream.c): a C unit test,
# the upstream-test harness, and Node scripts that drive it against scripted servers.
UPSTREAM_TEST_LIBS = $(top_builddir)/daemon/libupstream.la $(top_builddir)/store/libstore.la \
	$(LWS_LIBS) $(CJSON_LIBS) $(OPENSSL_LIBS) -lpthread -lm

check_PROGRAMS += upstream/test-upstream-unit upstream/upstream-test
upstream_test_upstream_unit_SOURCES = upstream/test-upstream-unit.c
upstream_test_upstream_unit_LDADD = $(UPSTREAM_TEST_LIBS)
upstream_upstream_test_SOURCES = upstream/upstream-test.c
upstream_upstream_test_LDADD = $(UPSTREAM_TEST_LIBS)

UPSTREAM_NODE_TESTS = upstream/connect.mjs upstream/reconnect.mjs upstream/init-errors.mjs upstream/close.mjs \
	upstream/dns.mjs upstream/dns-silent.mjs upstream/tls.mjs upstream/netlink.mjs upstream/mock.mjs \
	upstream/lws-timeouts.mjs
TESTS += upstream/test-upstream-unit $(UPSTREAM_NODE_TESTS)
EXTRA_DIST += upstream/lib.mjs $(UPSTREAM_NODE_TESTS)
