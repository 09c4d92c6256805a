# contrib/contrib.mk: systemd user units, man pages, bash, zsh and fish completion, the
# Python client and the example configuration; all installed and in the dist.

# The service names the installed binary, so it is generated with the final bindir.
systemduserunit_DATA = instantd.service
dist_systemduserunit_DATA = instantd.socket instantd-instant.socket
EXTRA_DIST += instantd.service.in
CLEANFILES = instantd.service
instantd.service: $(srcdir)/instantd.service.in Makefile
	$(AM_V_GEN)rm -f $@ $@.tmp && \
	sed -e 's|@bindir[@]|$(bindir)|g' $(srcdir)/instantd.service.in > $@.tmp && \
	mv $@.tmp $@

dist_man_MANS = man/instantd.8 man/instantctl.1 man/instantd.conf.5

# bash-completion's own directory when its pkg-config file is installed (kept
# under our prefix, so that distcheck and --prefix builds stay self-contained).
BASH_COMPLETION_PC_DIR = $(shell $(PKG_CONFIG) --define-variable=prefix='$(prefix)' \
	--define-variable=datadir='$(datadir)' --variable=completionsdir bash-completion 2>/dev/null)
bashcompletiondir = $(if $(BASH_COMPLETION_PC_DIR),$(BASH_COMPLETION_PC_DIR),$(datadir)/bash-completion/completions)
dist_bashcompletion_DATA = bash-completion/instantctl

# zsh looks in $(datadir)/zsh/site-functions (on its default fpath for a zsh
# of the same prefix); fish in the vendor directory its pkg-config file names.
zshcompletiondir = $(datadir)/zsh/site-functions
dist_zshcompletion_DATA = zsh-completion/_instantctl
FISH_COMPLETION_PC_DIR = $(shell $(PKG_CONFIG) --define-variable=prefix='$(prefix)' \
	--define-variable=datadir='$(datadir)' --variable=completionsdir fish 2>/dev/null)
fishcompletiondir = $(if $(FISH_COMPLETION_PC_DIR),$(FISH_COMPLETION_PC_DIR),$(datadir)/fish/vendor_completions.d)
dist_fishcompletion_DATA = fish-completion/instantctl.fish

# The Python client module, in the prefix's site-packages (pythondir, from
# AM_PATH_PYTHON), so that `import instantd` works with no path set.
if HAVE_PYTHON
python_PYTHON = python/instantd.py
else
EXTRA_DIST += python/instantd.py
endif

examplesdir = $(docdir)/examples
dist_examples_DATA = instantd.conf.example instantd-sandbox.conf
