# daemon/support.mk: configuration, logging, file ownership checks and sd_notify (libsupport.la).
noinst_LTLIBRARIES += libsupport.la
libsupport_la_SOURCES = config.c config.h fsutil.c fsutil.h log.c log.h notify.c notify.h
