# daemon/upstream.mk: the upstream WebSocket session, as its own convenience library
# so a half-written neighbour never breaks it. The daemon links libupstream.la.
noinst_LTLIBRARIES += libupstream.la
libupstream_la_SOURCES = upstream.c upstream.h frame.c frame.h tls.c tls.h
libupstream_la_LIBADD = $(LWS_LIBS) $(CJSON_LIBS) $(OPENSSL_LIBS) -lpthread
