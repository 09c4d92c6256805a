# store/instaml.mk: the InstaML transform (ops to tx-steps, attr creation, rewrite, step checks).
noinst_LTLIBRARIES += libstoreinstaml.la
libstoreinstaml_la_SOURCES = instaml.c instaml.h
libstore_la_LIBADD += libstoreinstaml.la
