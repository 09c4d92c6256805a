# store/db.mk: the profile database (schema, attrs, query cache, outbox, recovery).
noinst_LTLIBRARIES += libstoredb.la
libstoredb_la_SOURCES = db.c db.h db-recover.c db-internal.h
libstore_la_LIBADD += libstoredb.la
