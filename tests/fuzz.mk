# tests/fuzz.mk: fuzz harnesses (issue: hardening). Each harness in fuzz/ is
# built twice: with replay.c as a plain program in make check, which replays
# every saved input of fuzz/corpus/<target> and fuzz/crashes/<target>; and,
# with configure --enable-fuzzing (CC=clang), as a libFuzzer target that
# `make fuzz` runs for FUZZ_SECONDS each. fuzz/run-fuzz.sh does the whole
# fuzzing build in a directory of its own.
FUZZ_TARGETS = ipc-protocol ipc-server upstream instaql instaml
FUZZ_COMMON = fuzz/fuzz.h fuzz/fuzz-common.c
FUZZ_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TOP_SRCDIR='"$(abs_top_srcdir)"' -DFUZZ_SRCDIR='"$(abs_srcdir)"'
FUZZ_IPC_LIBS = $(top_builddir)/ipc/libipcserver.la $(top_builddir)/store/libstore.la \
	$(LWS_LIBS) $(SYSTEMD_LIBS) $(SQLITE_LIBS) $(CJSON_LIBS) $(OPENSSL_LIBS) -lm
FUZZ_UPSTREAM_LIBS = $(top_builddir)/daemon/libupstream.la $(top_builddir)/daemon/libsupport.la \
	$(top_builddir)/ipc/libipcserver.la $(top_builddir)/store/libstore.la \
	$(LWS_LIBS) $(SYSTEMD_LIBS) $(SQLITE_LIBS) $(CJSON_LIBS) $(OPENSSL_LIBS) -lpthread -lm

FUZZ_REPLAY = fuzz/replay-ipc-protocol fuzz/replay-ipc-server fuzz/replay-upstream \
	fuzz/replay-instaql fuzz/replay-instaml
check_PROGRAMS += $(FUZZ_REPLAY)
TESTS += $(FUZZ_REPLAY)

fuzz_replay_ipc_protocol_SOURCES = fuzz/fuzz-ipc-protocol.c fuzz/replay.c $(FUZZ_COMMON)
fuzz_replay_ipc_protocol_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_replay_ipc_protocol_LDADD = $(FUZZ_IPC_LIBS)
fuzz_replay_ipc_server_SOURCES = fuzz/fuzz-ipc-server.c fuzz/replay.c $(FUZZ_COMMON)
fuzz_replay_ipc_server_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_replay_ipc_server_LDADD = $(FUZZ_IPC_LIBS)
fuzz_replay_upstream_SOURCES = fuzz/fuzz-upstream.c fuzz/rooms-unit.c fuzz/replay.c $(FUZZ_COMMON)
fuzz_replay_upstream_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_replay_upstream_LDADD = $(FUZZ_UPSTREAM_LIBS)
fuzz_replay_instaql_SOURCES = fuzz/fuzz-instaql.c fuzz/replay.c $(FUZZ_COMMON)
fuzz_replay_instaql_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_replay_instaql_LDADD = $(STORE_LIBS)
fuzz_replay_instaml_SOURCES = fuzz/fuzz-instaml.c fuzz/replay.c $(FUZZ_COMMON)
fuzz_replay_instaml_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_replay_instaml_LDADD = $(STORE_LIBS)

EXTRA_DIST += fuzz/run-fuzz.sh fuzz/make-seeds.mjs fuzz/corpus fuzz/crashes fuzz/dict

FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined

if FUZZING
FUZZ_BINS = fuzz/fuzz-ipc-protocol fuzz/fuzz-ipc-server fuzz/fuzz-upstream \
	fuzz/fuzz-instaql fuzz/fuzz-instaml
noinst_PROGRAMS += $(FUZZ_BINS)

fuzz_fuzz_ipc_protocol_SOURCES = fuzz/fuzz-ipc-protocol.c $(FUZZ_COMMON)
fuzz_fuzz_ipc_protocol_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_fuzz_ipc_protocol_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
fuzz_fuzz_ipc_protocol_LDFLAGS = $(FUZZ_FLAGS)
fuzz_fuzz_ipc_protocol_LDADD = $(FUZZ_IPC_LIBS)
fuzz_fuzz_ipc_server_SOURCES = fuzz/fuzz-ipc-server.c $(FUZZ_COMMON)
fuzz_fuzz_ipc_server_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_fuzz_ipc_server_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
fuzz_fuzz_ipc_server_LDFLAGS = $(FUZZ_FLAGS)
fuzz_fuzz_ipc_server_LDADD = $(FUZZ_IPC_LIBS)
fuzz_fuzz_upstream_SOURCES = fuzz/fuzz-upstream.c fuzz/rooms-unit.c $(FUZZ_COMMON)
fuzz_fuzz_upstream_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_fuzz_upstream_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
fuzz_fuzz_upstream_LDFLAGS = $(FUZZ_FLAGS)
fuzz_fuzz_upstream_LDADD = $(FUZZ_UPSTREAM_LIBS)
fuzz_fuzz_instaql_SOURCES = fuzz/fuzz-instaql.c $(FUZZ_COMMON)
fuzz_fuzz_instaql_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_fuzz_instaql_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
fuzz_fuzz_instaql_LDFLAGS = $(FUZZ_FLAGS)
fuzz_fuzz_instaql_LDADD = $(STORE_LIBS)
fuzz_fuzz_instaml_SOURCES = fuzz/fuzz-instaml.c $(FUZZ_COMMON)
fuzz_fuzz_instaml_CPPFLAGS = $(FUZZ_CPPFLAGS)
fuzz_fuzz_instaml_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
fuzz_fuzz_instaml_LDFLAGS = $(FUZZ_FLAGS)
fuzz_fuzz_instaml_LDADD = $(STORE_LIBS)

# Each target runs FUZZ_SECONDS from a scratch copy of its seed corpus (the
# committed seeds stay as they are); a crash is written to
# fuzz-out/<target>/crash-* and fails the run: fix it, then commit the
# input under fuzz/crashes/<target>/ so replay keeps it fixed.
fuzz: $(FUZZ_BINS)
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  out=fuzz-out/$$t; rm -rf $$out; mkdir -p $$out/corpus; \
	  cp $(srcdir)/fuzz/corpus/$$t/* $$out/corpus/; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  top_srcdir='$(abs_top_srcdir)' ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=3072 \
	    -max_len=65536 -dict=$(srcdir)/fuzz/dict/json.dict -print_final_stats=1 \
	    -artifact_prefix=$$out/ $$out/corpus $(srcdir)/fuzz/crashes/$$t \
	    >$$out/log 2>&1 || { fail=1; echo "fuzz: $$t FAILED (see $$out/log)"; tail -n 60 $$out/log; }; \
	  grep -h '^stat::number_of_executed_units\|^stat::new_units_added' $$out/log | sed "s/^/fuzz: $$t /"; \
	done; exit $$fail
else
fuzz:
	@echo "make fuzz needs a build configured with CC=clang --enable-fuzzing (see tests/fuzz/run-fuzz.sh)"; exit 1
endif
.PHONY: fuzz
