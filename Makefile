# make demo  - install what is needed, run the chat demo on http://127.0.0.1:8000
# make test  - install what is needed, run every test (Python, Node client, browser), build the docs
# make docs  - build the documentation site into site/ (mkdocs build --strict)
# make bench-instructions [BASE=ref] - server instructions per message, this tree vs BASE (callgrind)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test docs lint typecheck pytest node-test install node-install bench bench-quick bench-relay bench-install bench-instructions clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,redis]'
	touch $@

install: $(VENV)/.installed

client-js/node_modules/.installed: client-js/package-lock.json
	cd client-js && npm ci --no-audit --no-fund
	touch $@

tests/node/node_modules/.installed: tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	touch $@

node-install: client-js/node_modules/.installed tests/node/node_modules/.installed

demo: install
	$(BIN)/python examples/chat/app.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install node-install
	$(BIN)/pytest

node-test: install node-install
	cd client-js && npm test

$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck pytest node-test docs

benchmarks/node_modules/.installed: benchmarks/package-lock.json
	cd benchmarks && npm ci --no-audit --no-fund
	touch $@

bench-install: install benchmarks/node_modules/.installed
	$(BIN)/python -m pip install -q -e '.[bench]'

bench-quick: bench-install
	$(BIN)/python -m benchmarks.run --quick

bench: bench-install
	$(BIN)/python -m benchmarks.run --full

# sessions relayed between nodes: needs nginx (apt-get install -y nginx) and Redis at 127.0.0.1:6379
bench-relay: bench-install
	$(BIN)/python -m benchmarks.run --relay

# Needs valgrind (Debian package). BASE: the git ref to compare with.
BASE ?= main
bench-instructions: bench-install
	$(BIN)/python -m benchmarks.instructions --base $(BASE) --repeats 2

clean:
	rm -rf $(VENV) site client-js/node_modules tests/node/node_modules benchmarks/node_modules
