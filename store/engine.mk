# store/engine.mk: the per-query triple store and the local InstaQL engine.
noinst_LTLIBRARIES += libstoreengine.la
libstoreengine_la_SOURCES = \
	tstore.c tstore.h tstore-internal.h \
	instaql.c instaql.h instaql-js.c instaql-js.h \
	reads.c reads.h
libstoreengine_la_LIBADD = $(CJSON_LIBS) -lm
libstore_la_LIBADD += libstoreengine.la
EXTRA_DIST += QUERY-DIFFERENCES.md
