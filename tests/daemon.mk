# tests/daemon.mk: unit tests of daemon/ (configuration, file ownership, logging, sd_notify).
SUPPORT_LIBS = $(top_builddir)/daemon/libsupport.la $(SYSTEMD_LIBS)
check_PROGRAMS += daemon/test-config daemon/test-log daemon/test-notify daemon/test-fsutil
TESTS += daemon/test-config daemon/test-log daemon/test-notify daemon/test-fsutil
daemon_test_config_SOURCES = daemon/test-config.c
daemon_test_config_LDADD = $(SUPPORT_LIBS) $(STORE_LIBS)
daemon_test_log_SOURCES = daemon/test-log.c
daemon_test_log_LDADD = $(SUPPORT_LIBS)
daemon_test_notify_SOURCES = daemon/test-notify.c
daemon_test_notify_LDADD = $(SUPPORT_LIBS)
daemon_test_fsutil_SOURCES = daemon/test-fsutil.c
daemon_test_fsutil_LDADD = $(SUPPORT_LIBS)
# Presence patches (daemon/rooms.c, built into the test with the upstream session it uses).
check_PROGRAMS += daemon/test-rooms
TESTS += daemon/test-rooms
daemon_test_rooms_SOURCES = daemon/test-rooms.c $(top_srcdir)/daemon/rooms.c
daemon_test_rooms_LDADD = $(top_builddir)/daemon/libupstream.la $(SUPPORT_LIBS) $(top_builddir)/ipc/libipcserver.la \
	$(STORE_LIBS) $(LWS_LIBS) -lpthread
# Cutting a large server frame into its computations (daemon/frame.c).
check_PROGRAMS += daemon/test-frame
TESTS += daemon/test-frame
daemon_test_frame_SOURCES = daemon/test-frame.c $(top_srcdir)/daemon/frame.c
daemon_test_frame_LDADD = $(STORE_LIBS)
