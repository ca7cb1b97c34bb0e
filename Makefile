# signals — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
# OpenMP threads that spin while waiting fight each other when two processes share the 2 cores
export OMP_WAIT_POLICY ?= PASSIVE

.DEFAULT_GOAL := help
# the extras every dev install and CI get (spark: the Spark tests run in `make test`, needing Java 17+)
EXTRAS := dev,cdnow,spark
.PHONY: help setup system-deps demo test test-fast lint bench measure lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "signals needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install signals with its test tools (and the spark extra)

# Real servers for the integration tests (PostgreSQL, a JRE for Spark and its JDBC drivers for the
# CRM write-back, headless Chromium), from Debian's packages; only what is missing is installed.
# Without them those tests skip with a reason.
SYSTEM_PACKAGES := postgresql default-jre-headless libpostgresql-jdbc-java libxerial-sqlite-jdbc-java chromium
system-deps: ## install PostgreSQL, a JRE, JDBC drivers and Chromium from Debian's packages (root; skips what is there)
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	[ -f /usr/share/java/postgresql.jar ] || missing="$$missing libpostgresql-jdbc-java"; \
	[ -f /usr/share/java/sqlite-jdbc.jar ] || missing="$$missing libxerial-sqlite-jdbc-java"; \
	{ command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then echo "system-deps: all present ($(SYSTEM_PACKAGES))"; \
	elif [ "$$(id -u)" != 0 ]; then echo "system-deps: missing$$missing; run as root (or sudo make system-deps); the tests that need them will skip"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

demo: $(STAMP) ## simulate a CRM, ingest its messy exports, retrain both tasks monthly (MLflow champions), score every customer into crm.db, print a summary
	$(BIN)/signals demo --config configs/demo.yaml

test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP) ## the suite without the slow end-to-end tests
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: $(STAMP) ## ruff
	$(BIN)/ruff check src tests benchmarks notebooks

bench: $(STAMP) ## run the speed benchmarks (JSON on stdout; features runs its NumPy and pandas peers ~15 min, scoring 1M customers ~15 min)
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_views.py
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_spark.py

measure: $(STAMP) ## model figures: simulator (known truth) and CDNOW (real purchases), JSON + tables
	$(BIN)/python benchmarks/simulator_models.py
	$(BIN)/python benchmarks/cdnow.py

lock: ## refresh constraints.txt from a clean install of the current dependency ranges
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet --upgrade pip
	.lockvenv/bin/python -m pip install --quiet -e ".[$(EXTRAS)]"
	.lockvenv/bin/python -m pip freeze --exclude-editable | grep -v '^signals' > constraints.txt
	rm -rf .lockvenv

clean: ## remove generated data, models and runs (keeps .venv)
	rm -rf data reports mlruns mlartifacts mlflow.db crm.db models/*.pkl models/*/
