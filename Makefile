# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
YEARS ?= 1
# The dbt-core release line of the venv: 1.12 (current), or 1.11 (until its end of life).
DBT_CORE ?= 1.12
# The demo is its own dbt project, which installs this repository as a package.
DEMO := examples/jaffle_shop
RAW_DIR := $(DEMO)/data/raw
FS := cd $(DEMO) && $(BIN)/featurestore
# in a recipe line of several commands (one shell): the demo's folder once, then this
FSX := $(BIN)/featurestore

.PHONY: demo test unit integration test-compat venv feast-venv data build docs clean online-down

# Everything is resolved against dbt-core 1.11, then .ci/install_dbt_core.py puts the wanted line
# in place (1.12's parser dependency downloads a binary when it is built: see that script).
$(BIN)/featurestore: pyproject.toml .ci/install_dbt_core.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,demo]' 'dbt-core==1.11.*'
	$(BIN)/python .ci/install_dbt_core.py $(DBT_CORE)
	touch $@

venv: $(BIN)/featurestore

# Feast 0.67 in a venv of its own (its pins clash with dbt's), for the import-feast round trip:
# the test runs Feast only through this python, in a subprocess.
FEAST_VENV := $(CURDIR)/.venv-feast
$(FEAST_VENV)/bin/feast:
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/pip install --quiet feast==0.67.0
	touch $@

feast-venv: $(FEAST_VENV)/bin/feast

# Jaffle Shop data from jafgen (YEARS=3 make data for more). Regenerated only when missing.
$(RAW_DIR)/raw_orders.csv: | $(BIN)/featurestore
	mkdir -p $(RAW_DIR) $(DEMO)/data/.jafgen
	cd $(DEMO)/data/.jafgen && $(BIN)/jafgen $(YEARS) > /dev/null
	mv $(DEMO)/data/.jafgen/jaffle-data/raw_{customers,orders,items,products,stores}.csv $(RAW_DIR)/
	rm -rf $(DEMO)/data/.jafgen
	$(BIN)/python $(DEMO)/jaffle_data.py shift $(RAW_DIR)
	$(BIN)/python $(DEMO)/jaffle_data.py pushes $(RAW_DIR)
	rm -f $(DEMO)/jaffle_shop.duckdb  # new raw data: rebuild the warehouse from scratch

data: $(RAW_DIR)/raw_orders.csv

build: venv data
	$(FS) build

demo: build
	$(FS) validate
	$(FS) list
	$(FS) describe churn_model
	$(FS) export --entities main.churn_labels --timestamp-column label_ts \
		--service churn_model --out out/churn_training.parquet
	$(FS) stats --service churn_model
	$(FS) online up
	$(FS) sync
	$(FS) sync status
	$(FS) audit customer_features --sample 100
	$(FS) catalog --out site --exports out
	@echo "featurestore get --service churn_model (the most recent customer of the churn labels):"
	@cd $(DEMO) && row=$$($(BIN)/python -c "import duckdb; print(*duckdb.connect('jaffle_shop.duckdb', read_only=True).sql('select customer_id, store_id from main.churn_labels order by label_ts desc, customer_id limit 1').fetchall()[0])"); \
	$(FSX) get --service churn_model -e customer_id=$${row% *} -e store_id=$${row#* }; \
	echo "on-demand features: request fields come with the keys"; \
	$(FSX) get -f customer_features:avg_order_value_30d -f order_request_features:cart_value_ratio \
		-f order_request_features:order_hour -e customer_id=$${row% *} -e cart_value=42.5 \
		-e ordered_at=2024-03-15T18:30:00+01:00; \
	echo "the same over HTTP: (cd $(DEMO) && $(BIN)/featurestore serve &) then"; \
	echo "curl -s localhost:6566/get-online-features -H 'content-type: application/json' -d '{\"feature_service\": \"churn_model\", \"entities\": {\"customer_id\": [\"$${row% *}\"], \"store_id\": [\"$${row#* }\"]}}'"
	@echo "A day of cart additions and orders replayed through POST /push (streaming views), then read:"
	cd $(DEMO) && $(BIN)/python replay_events.py
	@cd $(DEMO) && customer=$$($(BIN)/python -c "import duckdb; print(duckdb.sql(\"select customer_id from read_parquet('landing/order_events/*.parquet') order by event_at desc limit 1\").fetchall()[0][0])"); \
	$(FSX) get -f order_events:orders_placed_15m -f order_events:order_value_1d -f cart_events:cart_adds_1h \
		-f cart_events:cart_value_1h -e customer_id=$$customer; \
	echo "batch, request-time and streaming features in one read (the checkout_model service):"; \
	$(FSX) get --service checkout_model -e customer_id=$$customer -e cart_value=42.5

# Fast tier first (no dbt, no server), then the integration tier on two workers (pytest-xdist;
# a test file stays on one worker with its module fixtures).
test: venv feast-venv
	@start=$$(date +%s%N); $(BIN)/pytest -q -p no:cacheprovider tests/unit || exit $$?; \
	echo "unit tier: $$(( ($$(date +%s%N) - start) / 1000000 )) ms"
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/integration

unit: venv
	$(BIN)/pytest -q tests/unit

# DBT_AS_COMMAND=1: every dbt command runs as a subprocess (FEATURESTORE_DBT), not in-process.
# MARKS: only the tests it selects (a pytest -m expression).
integration: venv feast-venv
	$(if $(DBT_AS_COMMAND),FEATURESTORE_DBT=$(BIN)/dbt) $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile $(if $(MARKS),-m "$(MARKS)") tests/integration

# The integration tests about what dbt itself does (marked dbt_compat: parsing, the manifest,
# macros, materializations, dbt as a command) again on the other supported dbt-core line (1.11),
# with dbt run as a command: CI runs it after `make test`. The rest (online store, server, CLI
# surfaces) does not depend on dbt's version.
test-compat:
	$(MAKE) integration VENV=$(CURDIR)/.venv-dbt1.11 DBT_CORE=1.11 DBT_AS_COMMAND=1 MARKS=dbt_compat

# docs/cli.md, the CLI reference, from every command's --help (tests/unit/test_cli_docs.py checks it).
docs: venv
	$(BIN)/python docs/cli_reference.py

online-down:
	$(FS) online down

clean:
	-$(FS) online down
	rm -rf $(DEMO)/{target,logs,jaffle_shop.duckdb,data,landing,out,site,.featurestore,dbt_packages,package-lock.yml} $(VENV) $(CURDIR)/.venv-dbt1.11 $(FEAST_VENV)
