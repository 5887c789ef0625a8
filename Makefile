# Two commands do everything on a fresh Debian machine (as root):
#   make run    set-up, then the whole experiment on the bundled data (results/)
#   make test   set-up, then every test
# and two more:
#   make report the report of the finished run, results/report.html
#   make repair (a run names it when it finds damaged results) damaged curves set aside (the next run retrains
#               them), damaged data files rewritten
# Set-up is idempotent: system packages FFCV builds against, a virtual environment in .venv with
# the exact versions of requirements.txt (the package under src/ is not installed: workflow/scripts/algoprogress_path.py)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := pkg-config libopencv-dev libturbojpeg0-dev
CORES ?= all
SNAKEMAKE_ARGS ?=

export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run report repair test test-fast lint bench clean

setup: $(VENV)/.installed

$(VENV)/.system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed, found " + sys.version' 
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@touch $@

$(VENV)/.installed: $(VENV)/.system-packages requirements.txt pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)

# the Snakemake report of the finished run (results/report.html: the headline figure, tables, every figure, the
# method's captions); run it after `make run` with the same SNAKEMAKE_ARGS
report: setup
	$(BIN)/snakemake --cores $(CORES) --report results/report.html $(SNAKEMAKE_ARGS)

repair: setup
	$(BIN)/python workflow/scripts/repair.py

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/make_run_timing.py

clean:
	rm -rf results/* logs .snakemake
	@touch results/.gitkeep
