# ipc/ipc.mk: sources of the IPC server, libinstantd and instantctl.
