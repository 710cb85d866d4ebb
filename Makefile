# make lab | make test | make demo | make bench | make gallery | make benchmark-data
# Each target creates .venv and installs the package with its dev extra when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8888
QUICK  ?= 0

.PHONY: lab test demo bench bench-gpu gallery setup clean-venv benchmark-data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --config=jupyter_server_config.py --notebook-dir=notebooks --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m labutils transfer --method caracalla-roebel --content moonlight_piano --style ode_violin \
		--steps 150 --duration 3
	@echo "The run folder printed above holds result.wav, spectrograms.png, config.json and losses.csv."

bench: $(STAMP)
	$(BIN)/python -m labutils bench --method caracalla-roebel --json

# Issue 16's GPU cases as JSON lines with their targets (about 4 minutes on one GPU; QUICK=1: tiny, on the CPU)
bench-gpu: $(STAMP)
	PYTHON=$(BIN)/python bench/gpu.sh $(if $(filter 1,$(QUICK)),--quick,)

# Render the quality-benchmark set into data/cache/benchmark/ (or $LABUTILS_BENCHMARK_DIR): FluidR3 GM
# for the dev/test splits and the probe's training clips, MuseScore General for the dev-musescore and test-musescore splits
# (211 MB; 214 s on 2 AMD EPYC cores shared with other jobs, FluidR3 alone took about 20 s);
# needs `apt-get install fluidsynth fluid-soundfont-gm musescore-general-soundfont`.
benchmark-data: $(STAMP)
	@$(BIN)/python -c "import mido" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[data]'
	$(BIN)/python data/render.py --benchmark

# Execute every notebook top to bottom into outputs/gallery/ (QUICK=1 for the quick mode).
gallery: $(STAMP)
	@mkdir -p outputs/gallery
	@for nb in notebooks/[0-9]*.ipynb; do \
		name=$$(basename $$nb); echo "== $$name"; \
		(cd notebooks && LAB_QUICK=$(QUICK) ../$(BIN)/papermill --cwd . $$name ../outputs/gallery/$$name) || exit 1; \
	done
	@echo "Executed notebooks are in outputs/gallery/"

clean-venv:
	rm -rf $(VENV)
