# ipc/ipc.mk: sources of the IPC server, libinstantd and instantctl.

# The server side, linked into instantd (add $(top_builddir)/ipc/libipcserver.la
# and $(LWS_LIBS) $(SYSTEMD_LIBS) to its LDADD).
noinst_LTLIBRARIES += libipcserver.la
libipcserver_la_SOURCES = ipc-server.c ipc-server.h ipc-protocol.c ipc-protocol.h
libipcserver_la_LIBADD = $(LWS_LIBS) $(SYSTEMD_LIBS) $(CJSON_LIBS)

# The client library for applications.
lib_LTLIBRARIES += libinstantd.la
include_HEADERS += instantd.h
libinstantd_la_SOURCES = libinstantd.c instantd.h
libinstantd_la_LIBADD = $(CJSON_LIBS)
libinstantd_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0

bin_PROGRAMS += instantctl
instantctl_SOURCES = instantctl.c instantctl.h instantctl-status.c instantctl-store.c \
	instantctl-doctor.c instantctl-doctor.h $(top_srcdir)/daemon/tls.c $(top_srcdir)/daemon/tls.h
# doctor does its own DNS, TCP and TLS checks, with the daemon's TLS library and trust rule.
instantctl_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS) -DSYSTEMD_USER_UNIT_DIR='"$(systemduserunitdir)"'
instantctl_LDADD = libinstantd.la $(CJSON_LIBS) $(OPENSSL_LIBS)

noinst_PROGRAMS = example-watch
example_watch_SOURCES = example-watch.c
example_watch_LDADD = libinstantd.la $(CJSON_LIBS)

# The protocol reference (installed and distributed).
dist_doc_DATA = PROTOCOL.md ENDPOINT.md
