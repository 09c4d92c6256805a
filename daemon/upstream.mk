# daemon/upstream.mk: the upstream WebSocket session (appended to libupstream_la_SOURCES).
