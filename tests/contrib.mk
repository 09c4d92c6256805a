# tests/contrib.mk: tests of contrib/: the systemd units (systemd-analyze
# verify), the man pages (groff -ww), the bash completion and the Python client
# (against a fake daemon written in Python).
TESTS += contrib/units.sh contrib/man.sh contrib/completion.sh contrib/python-client.sh \
	contrib/python-install.sh contrib/readme-config.sh
EXTRA_DIST += contrib/units.sh contrib/man.sh contrib/completion.sh \
	contrib/python-client.sh contrib/python-client.py contrib/python-install.sh contrib/readme-config.sh
# The Python configure found, for the install test's virtual environment.
AM_TESTS_ENVIRONMENT += PYTHON='$(PYTHON)'; export PYTHON;
