# tests/bench.mk: `make bench` runs instantd and @instantdb/core side by side against the mock server
# (tests/bench/bench.mjs) and rewrites tests/bench/RESULTS.md and results.json; never part of `make check`.
BENCH_FILES = bench/bench.mjs bench/gen.mjs bench/js-client.mjs bench/RESULTS.md bench/PROFILE.md \
	bench/results.json
EXTRA_DIST += $(BENCH_FILES)

# The floor of row a-small: an echo of the daemon's reply bytes over a Unix socket. Built
# only for make bench.
EXTRA_PROGRAMS = bench/floor-echo
bench_floor_echo_SOURCES = bench/floor-echo.c
CLEANFILES += $(EXTRA_PROGRAMS)

bench: bench/floor-echo$(EXEEXT)
	cd $(top_builddir)/daemon && $(MAKE) $(AM_MAKEFLAGS) instantd
	INSTANTD_NODE_MODULES='$(NODE_MODULES_DIR)' top_builddir='$(abs_top_builddir)' \
	top_srcdir='$(abs_top_srcdir)' $(NODE) $(srcdir)/bench/bench.mjs --results $(srcdir)/bench/RESULTS.md \
	--json $(srcdir)/bench/results.json --floor-echo bench/floor-echo$(EXEEXT)
.PHONY: bench
