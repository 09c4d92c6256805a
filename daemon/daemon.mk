# daemon/daemon.mk: the sync core and the Instant endpoint (the link line is in Makefile.am).
instantd_SOURCES += core.h core.c sync.c sync.h profile.c profile.h query.c query.h outbox.c outbox.h \
	session.c session.h ops.c ops.h ops-auth.c ops-auth.h ops-store.c ops-store.h rooms.c rooms.h \
	auth.c auth.h endpoint.c endpoint.h peeruid.c peeruid.h
