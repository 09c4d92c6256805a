# daemon/daemon.mk: the sync core (the link line is in Makefile.am).
instantd_SOURCES += sync.c sync.h rooms.c rooms.h auth.c auth.h ops-store.c ops-store.h
