# motif: `make run` rebuilds the pipeline (dvc repro), `make test` runs the suite.
# Both create .venv from requirements.lock when it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.motif-installed
PROFILE ?= default
PORT   ?= 8501
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING
export MLFLOW_TRACKING_URI ?= sqlite:///mlruns/mlflow.db
export GIT_PYTHON_REFRESH := quiet
# DVC stage commands run `python`: the venv's
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test studio lint env system clean-data lock screenshots

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@bash scripts/setup-system.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# TRAIN_STEPS=N: a smoke training budget (every variant and fine-tune trains N steps).
TRAIN_STEPS ?=
PROFILE_SETS := $(if $(TRAIN_STEPS),--set train.num_steps=$(TRAIN_STEPS) --set 'finetunes.*.num_steps=$(TRAIN_STEPS)')

run: $(STAMP)
	$(BIN)/python -m pipelines.profile use $(PROFILE) $(PROFILE_SETS)
	$(BIN)/python -m pipelines.corpora fetch needed --skip-present
	$(BIN)/dvc repro
	@$(BIN)/python -m pipelines.profile summary

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --timeout 900 tests

studio: $(STAMP)
	$(BIN)/python -m studio --port $(PORT)

# Refresh docs/studio.png from the browser test (the tests themselves write to a temporary folder).
screenshots: $(STAMP)
	rm -rf /tmp/motif-shots && mkdir -p /tmp/motif-shots
	MOTIF_SCREENSHOTS=/tmp/motif-shots $(BIN)/python -m pytest -q -p no:xdist tests/test_studio.py -k chromium
	cp /tmp/motif-shots/studio.png docs/studio.png

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Re-resolve the lock file from pyproject.toml (needs the package registries).
lock:
	rm -rf /tmp/motif-lock && $(PYTHON) -m venv /tmp/motif-lock
	/tmp/motif-lock/bin/pip install -q --upgrade pip && /tmp/motif-lock/bin/pip install -q -e '.[dev]'
	/tmp/motif-lock/bin/pip freeze --exclude-editable | grep -v '^motif' > requirements.lock
