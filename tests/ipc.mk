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

check_PROGRAMS += test-libinstantd
test_libinstantd_SOURCES = ipc/test-libinstantd.c ipc/ipc-test.h
test_libinstantd_LDADD = $(top_builddir)/ipc/libinstantd.la $(CJSON_LIBS)
TESTS += test-libinstantd

check_PROGRAMS += test-ipc-protocol
test_ipc_protocol_SOURCES = ipc/test-ipc-protocol.c
test_ipc_protocol_LDADD = $(IPC_SERVER_LIBS)
TESTS += test-ipc-protocol

# instantctl against ipc-echo (needs both built).
TESTS += ipc/test-instantctl.sh
EXTRA_DIST += ipc/test-instantctl.sh
