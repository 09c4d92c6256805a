# daemon/daemon.mk: main, config, log, sync core sources.
