# Flags shared by every module; included from each Makefile.am.
AM_CPPFLAGS = -I$(top_srcdir) -I$(top_builddir)
AM_CFLAGS = -std=gnu11 $(WARN_CFLAGS) $(SAN_CFLAGS) $(CJSON_CFLAGS)
AM_LDFLAGS = $(SAN_LDFLAGS)
