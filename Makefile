# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
YEARS ?= 1
RAW_DIR := data/raw
# featurestore's own defaults (FEATURESTORE_DUCKDB_PATH, FEATURESTORE_RAW_DIR) point inside this folder
DUCKDB_PATH := $(CURDIR)/warehouse/featurestore.duckdb

.PHONY: demo test venv data build clean online-down

$(BIN)/featurestore: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,demo]'
	touch $@

venv: $(BIN)/featurestore

# Jaffle Shop data from jafgen (YEARS=3 make data for more). Regenerated only when missing.
$(RAW_DIR)/raw_orders.csv: | $(BIN)/featurestore
	mkdir -p $(RAW_DIR) data/.jafgen
	cd data/.jafgen && ../../$(BIN)/jafgen $(YEARS) > /dev/null
	mv data/.jafgen/jaffle-data/raw_{customers,orders,items,products,stores}.csv $(RAW_DIR)/
	rm -rf data/.jafgen
	$(BIN)/python -m featurestore.testing.jaffle shift $(RAW_DIR)
	rm -f $(DUCKDB_PATH)  # new raw data: rebuild the warehouse from scratch

data: $(RAW_DIR)/raw_orders.csv

build: venv data
	$(BIN)/featurestore build

demo: build
	$(BIN)/featurestore validate
	$(BIN)/featurestore list
	$(BIN)/featurestore describe churn_model
	$(BIN)/featurestore export --entities main.churn_labels --timestamp-column label_ts \
		--service churn_model --out out/churn_training.parquet
	$(BIN)/featurestore stats --service churn_model
	$(BIN)/featurestore online up
	$(BIN)/featurestore sync
	$(BIN)/featurestore sync status
	$(BIN)/featurestore audit customer_features --sample 100
	$(BIN)/featurestore catalog --out site
	@echo "featurestore get --service churn_model (the most recent customer of the churn labels):"
	@row=$$($(BIN)/python -c "import duckdb; print(*duckdb.connect('$(DUCKDB_PATH)', read_only=True).sql('select customer_id, store_id from main.churn_labels order by label_ts desc, customer_id limit 1').fetchall()[0])"); \
	$(BIN)/featurestore get --service churn_model -e customer_id=$${row% *} -e store_id=$${row#* }

test: venv
	$(BIN)/pytest -q

online-down:
	$(BIN)/featurestore online down

clean:
	-$(BIN)/featurestore online down
	rm -rf target logs warehouse data out .featurestore $(VENV)
