# contrib/contrib.mk: units, man pages, completion, Python client.
