# tests/core.mk: unit tests of the sync core (daemon/core.c, sync.c and its modules) without the
# network: fakes of the upstream session, ipc conns, sign-in and the lws timers.
check_PROGRAMS += core/test-core
TESTS += core/test-core
core_test_core_SOURCES = core/test-core.c core/fakes.c core/fakes.h \
	$(top_srcdir)/daemon/core.c $(top_srcdir)/daemon/sync.c $(top_srcdir)/daemon/profile.c \
	$(top_srcdir)/daemon/query.c $(top_srcdir)/daemon/outbox.c $(top_srcdir)/daemon/session.c \
	$(top_srcdir)/daemon/ops.c $(top_srcdir)/daemon/ops-auth.c $(top_srcdir)/daemon/ops-store.c \
	$(top_srcdir)/daemon/rooms.c $(top_srcdir)/daemon/frame.c \
	$(top_srcdir)/ipc/ipc-protocol.c
# Own flags, so these objects are not shared with instantd's build of the same files.
core_test_core_CFLAGS = $(AM_CFLAGS)
# No $(LWS_LIBS): fakes.c defines every lws symbol the core uses, and a link
# error names any new one.
core_test_core_LDADD = $(SUPPORT_LIBS) $(STORE_LIBS)
# The core's own clock reads (mono_us) follow the virtual clock of fakes.c.
core_test_core_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=mono_us
