# bcnn: BinaryConnect training (bctrain) and verified export (bcexport).
# Every target creates the virtual environment it needs on first use.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-stamp

PRESET   ?= mnist
DATASET  ?=
BINARIZE ?= det
EPOCHS   ?=
SEED     ?=
DATA_DIR ?=
RUN_DIR  ?= runs/$(PRESET)-$(BINARIZE)
RESUME   ?=
INFER_ARGS ?=

# Recursive (=), not :=, so that train-cifar10 / train-svhn set PRESET (and the default RUN_DIR) for
# themselves; a PRESET given on the command line still wins.
TRAIN_ARGS = --preset $(PRESET) --binarize $(BINARIZE) --run-dir $(RUN_DIR) \
	$(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(SEED),--seed $(SEED)) $(if $(DATASET),--dataset $(DATASET)) \
	$(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(filter 1 yes true,$(RESUME)),--resume)

.PHONY: venv test train-mnist train-cifar10 train-svhn export export-c verify bench bench-train bench-infer bench-bgemm bench-cnn-c clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

train-cifar10: PRESET = cifar10
train-svhn: PRESET = svhn

train-mnist train-cifar10 train-svhn: $(STAMP)
	$(VENV)/bin/bctrain train $(TRAIN_ARGS)

export: $(STAMP)
	$(VENV)/bin/bcexport onnx $(RUN_DIR)

export-c: $(STAMP)
	$(VENV)/bin/bcexport c $(RUN_DIR)

verify: $(STAMP)
	$(VENV)/bin/bcexport verify $(RUN_DIR) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

bench: bench-train bench-infer

bench-train: $(STAMP)
	$(PY) -m benchmarks.bench_train

# INFER_ARGS: more flags, e.g. INFER_ARGS="--threads 1 --no-numpy --calls 40 --batches 1" for the CNNs.
bench-infer: $(STAMP)
	$(PY) -m benchmarks.bench_infer $(RUN_DIR) $(INFER_ARGS)

bench-bgemm: $(STAMP)
	$(PY) -m benchmarks.bench_bgemm

# The full cifar10 and svhn networks through bcexport onnx / c / verify on tiny official-format files
# (~10 minutes); KEEP=DIR keeps their run directories, e.g. for bench-infer.
bench-cnn-c: $(STAMP)
	$(PY) -m benchmarks.bench_cnn_c $(if $(KEEP),--keep $(KEEP))

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
