# store/engine.mk: sources of this part of store/ (appended to libstore_la_SOURCES).
