# tests/ipc.mk: tests of this area (appended to TESTS, check_PROGRAMS, EXTRA_DIST).
IPC_SERVER_LIBS = $(top_builddir)/ipc/libipcserver.la $(LWS_LIBS) $(SYSTEMD_LIBS) $(CJSON_LIBS)

# A daemon stand-in: the real server with canned replies.
check_PROGRAMS += ipc-echo
ipc_echo_SOURCES = ipc/ipc-echo.c
ipc_echo_LDADD = $(IPC_SERVER_LIBS)

check_PROGRAMS += test-ipc-server
test_ipc_server_SOURCES = ipc/test-ipc-server.c ipc/ipc-test.h
test_ipc_server_LDADD = $(CJSON_LIBS)
TESTS += test-ipc-server
