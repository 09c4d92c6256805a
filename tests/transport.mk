# tests/transport.mk: transport faults below the sync protocol (silence, closes, resets,
# trickling, TLS, DNS and network loss) against the real instantd (issue 21).
TRANSPORT_TESTS = transport/test-faults.mjs
TESTS += $(TRANSPORT_TESTS)
EXTRA_DIST += transport/fault-proxy.mjs $(TRANSPORT_TESTS)
