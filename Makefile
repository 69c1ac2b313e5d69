# bcnn: BinaryConnect training (bctrain) and verified export (bcexport).
# Every target creates the virtual environment it needs on first use.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-stamp
LARQ_VENV  := .venv-larq
LARQ_STAMP := $(LARQ_VENV)/.installed-stamp

PRESET   ?= mnist
DATASET  ?=
BINARIZE ?= det
EPOCHS   ?=
SEED     ?=
DATA_DIR ?=
RUN_DIR  ?= runs/$(PRESET)-$(BINARIZE)
RESUME   ?=
SEEDS    ?= 6
PRECISION ?=
PATIENCE ?=
REPEAT_DIR ?= runs/$(PRESET)-$(BINARIZE)-seeds
STRATEGY ?=
REPLICAS ?=
INFER_ARGS ?=
CNN_C_DIR ?= runs/bench-cnn-c

# Results-writing commands record the make command line in their results file (benchmarks.provenance).
RECORD = BCNN_COMMAND="make $@$(if $(strip $(MAKEOVERRIDES)), $(MAKEOVERRIDES))"

# Recursive (=), not :=, so that train-cifar10 / train-svhn set PRESET (and the default RUN_DIR) for
# themselves; a PRESET given on the command line still wins.
CONFIG_ARGS = --preset $(PRESET) --binarize $(BINARIZE) $(if $(EPOCHS),--epochs $(EPOCHS)) \
	$(if $(SEED),--seed $(SEED)) $(if $(DATASET),--dataset $(DATASET)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
	$(if $(PRECISION),--precision $(PRECISION)) $(if $(PATIENCE),--patience $(PATIENCE)) \
	$(if $(STRATEGY),--strategy $(STRATEGY)) $(if $(REPLICAS),--replicas $(REPLICAS))
TRAIN_ARGS = $(CONFIG_ARGS) --run-dir $(RUN_DIR) $(if $(filter 1 yes true,$(RESUME)),--resume)

.PHONY: venv test test-all train-mnist train-cifar10 train-svhn repeat-mnist export export-c verify bench bench-train \
	bench-infer bench-infer-cnn bench-bgemm bench-cnn bench-cnn-c bench-bnn-c results-mnist cnn-check bnn-check docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m bctrain.step.fused_update || echo "(training will use the XLA update)"
	touch $(STAMP)

# Everyday: the tests not marked slow, in TEST_JOBS processes (pytest-xdist; 1: one process);
# test-all: every test, in one process (CI runs it).
TEST_JOBS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(if $(filter-out 1,$(TEST_JOBS)),-n $(TEST_JOBS))

test-all: $(STAMP)
	$(PY) -m pytest -q

train-cifar10: PRESET = cifar10
train-svhn: PRESET = svhn

train-mnist train-cifar10 train-svhn: $(STAMP)
	$(VENV)/bin/bctrain train $(TRAIN_ARGS)

repeat-mnist: $(STAMP)
	$(VENV)/bin/bctrain repeat $(CONFIG_ARGS) --seeds $(SEEDS) --root-dir $(REPEAT_DIR)

export: $(STAMP)
	$(VENV)/bin/bcexport onnx $(RUN_DIR) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

export-c: $(STAMP)
	$(VENV)/bin/bcexport c $(RUN_DIR)

verify: $(STAMP)
	$(VENV)/bin/bcexport verify $(RUN_DIR) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

bench: bench-train bench-infer bench-bgemm bench-cnn

bench-train: $(STAMP)
	@$(MAKE) --no-print-directory $(LARQ_STAMP) || echo "larq venv not created (see $(LARQ_VENV).log): no larq row"
	$(RECORD) $(PY) -m benchmarks.bench_train

# larq needs tf-keras and numpy < 2: its own venv, for the benchmark only.
$(LARQ_STAMP): benchmarks/requirements-larq.txt
	rm -rf $(LARQ_VENV)
	($(PYTHON) -m venv $(LARQ_VENV) && $(LARQ_VENV)/bin/pip install -r benchmarks/requirements-larq.txt) \
		> $(LARQ_VENV).log 2>&1 || (rm -rf $(LARQ_VENV); false)
	touch $(LARQ_STAMP)

# INFER_ARGS: more flags, e.g. INFER_ARGS="--threads 1 --no-numpy --calls 40 --batches 1" for the CNNs.
bench-infer: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.bench_infer $(RUN_DIR) $(INFER_ARGS)

# The CNN presets' generated C against onnxruntime and TensorFlow, one thread, on the run directories
# bench-cnn-c keeps in CNN_C_DIR (made first if missing).
bench-infer-cnn: $(STAMP)
	test -d $(CNN_C_DIR) || $(MAKE) --no-print-directory bench-cnn-c KEEP=$(CNN_C_DIR)
	for p in cifar10 svhn; do $(RECORD) $(PY) -m benchmarks.bench_infer $(CNN_C_DIR)/$$p-run --threads 1 \
		--no-numpy --calls 40 --rounds 4 --batches 1 --warmup 4 || exit 1; done

bench-bgemm: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.bench_bgemm

bench-cnn: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.bench_cnn
	$(RECORD) $(PY) -m benchmarks.bench_preprocess

# The full cifar10 and svhn networks through bcexport onnx / c / verify on tiny official-format files
# (~4 minutes); KEEP=DIR keeps their run directories, e.g. for bench-infer.
bench-cnn-c: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.bench_cnn_c $(if $(KEEP),--keep $(KEEP))

# The full-width mnist-bnn and cifar10-bnn networks in C against their BinaryConnect twins and
# onnxruntime, and the XNOR blocks against their roofline (docs/BINARYNET.md, ~25 minutes); KEEP=DIR
# keeps (and re-uses) the run directories.
bench-bnn-c: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.bench_bnn_c --cnn $(if $(KEEP),--keep $(KEEP))

# The mnist recipe on the bundled sample in det, stoch and none (README's MNIST results): EPOCHS=E
# for a shorter check (written to another results file); re-run to resume an interrupted one.
results-mnist: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.results_mnist $(if $(EPOCHS),--epochs $(EPOCHS))

# Every results section of README.md and docs/*.md, rendered from benchmarks/results/*.json.
docs: $(STAMP)
	$(PY) -m benchmarks.render

# The CNN learning check (docs/CNN_CHECK.md): float, det, stoch and bfloat16 det on the MNIST sample in
# the CIFAR-10 and SVHN formats; re-run to resume. CNN_CHECK_ARGS: more flags, e.g. "--presets svhn".
CNN_CHECK_DIR ?= runs/cnn-check
CNN_CHECK_EPOCHS ?=
CNN_CHECK_ARGS ?=
cnn-check: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.cnn_check --out-dir $(CNN_CHECK_DIR) $(if $(CNN_CHECK_EPOCHS),--epochs $(CNN_CHECK_EPOCHS)) \
		$(CNN_CHECK_ARGS)

# BinaryNet against BinaryConnect and float at a reduced width on the bundled sample (docs/BINARYNET.md);
# BNN_ARGS: e.g. "--width 512 --epochs 50 --seeds 3", or "--dataset mnist" for the full MNIST.
BNN_ARGS ?=
bnn-check: $(STAMP)
	$(RECORD) $(PY) -m benchmarks.bnn_check $(BNN_ARGS)

clean:
	rm -rf $(VENV) $(LARQ_VENV) $(LARQ_VENV).log *.egg-info .pytest_cache
