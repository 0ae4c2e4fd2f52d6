# berth — the two commands a newcomer needs: `make demo` and `make test` (both install first).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PKGS := $(shell grep -v '^\s*\#' packaging/debian-packages.txt | grep -v '^\s*$$')
BENCH_PKGS := $(shell grep -v '^\s*\#' packaging/debian-bench-packages.txt | grep -v '^\s*$$')
PYTEST_ARGS ?= -n 3 --dist loadgroup

.PHONY: install apt venv test demo bench lint clean-state

install: apt venv

# Idempotent: apt only runs when a package is missing.
apt:
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	bash packaging/fast-launchers.sh $(VENV)
	touch $(STAMP)

# The VM tests (pure cgroup v2 / v1 kernels through vm-run) run after the rest, on an otherwise idle
# host: vm-run emulates each guest's one vCPU (TCG) on a host core, so two guests at a time, and
# worksteal lets the short guests share one worker while the long one runs on the other.
test: install
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) -m "not vm" || rc=$$?; \
	$(PY) -m pytest -m vm -n 2 --dist worksteal || rc=$$?; exit $$rc

lint: install
	$(VENV)/bin/ruff check src tests

demo: install
	bash packaging/demo.sh

bench: install
	@missing=$$(for p in $(BENCH_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	bash bench/run-all.sh
