# tests/bench.mk: `make bench` runs instantd and @instantdb/core side by side against the mock server
# (tests/bench/bench.mjs) and rewrites tests/bench/RESULTS.md; never part of `make check`.
BENCH_FILES = bench/bench.mjs bench/gen.mjs bench/js-client.mjs bench/RESULTS.md bench/PROFILE.md
EXTRA_DIST += $(BENCH_FILES)

bench:
	cd $(top_builddir)/daemon && $(MAKE) $(AM_MAKEFLAGS) instantd
	INSTANTD_NODE_MODULES='$(NODE_MODULES_DIR)' top_builddir='$(abs_top_builddir)' \
	top_srcdir='$(abs_top_srcdir)' $(NODE) $(srcdir)/bench/bench.mjs --results $(srcdir)/bench/RESULTS.md
.PHONY: bench
