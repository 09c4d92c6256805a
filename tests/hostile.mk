# tests/hostile.mk: hostile local programs and hostile servers against the real
# daemon (issue: hardening), and `make valgrind`, the end-to-end scenarios with
# the daemon under valgrind (slow; not part of make check).
HOSTILE_TESTS = hostile/test-hostile-clients.mjs hostile/test-hostile-server.mjs
TESTS += $(HOSTILE_TESTS)
EXTRA_DIST += hostile/lib.mjs hostile/valgrind-e2e.sh $(HOSTILE_TESTS) LIMITS.md

valgrind:
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' srcdir='$(abs_srcdir)' \
	NODE='$(NODE)' INSTANTD_NODE_MODULES='$(NODE_MODULES_DIR)' \
	$(SHELL) $(srcdir)/hostile/valgrind-e2e.sh
.PHONY: valgrind
