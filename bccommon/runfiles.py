"""The run-directory contract: every file name a run directory holds, defined once (docs/DESIGN.md).

Training writes the first group, `bcexport` the second; both read each other's files through these
names only. Stdlib only.
"""
# written by `bctrain train`
CONFIG_JSON = "config.json"          # Config (bctrain.config); export reads the architecture from it
DATA_JSON = "data.json"              # identity of the data; a resume must see the same
HISTORY_JSONL = "history.jsonl"      # one JSON object per epoch
METRICS_JSON = "metrics.json"        # summary at the end; its presence means "finished"
BEST_NPZ = "best.npz"                # weights of the selected epoch
PREPROCESS_NPZ = "preprocess.npz"    # fitted preprocessing parameters
CKPT_DIR = "ckpt"                    # ckpt-<epoch>.* of the last two epochs (bctrain.run.checkpoints)
TB_DIR = "tb"                        # TensorBoard events
LOCK = "train.lock"                  # flock-ed by the training process (bctrain.run.runlock)
CURVES_PNG = "curves.png"
WEIGHTS_PNG = "weights_layer0.png"

# written by `bctrain repeat`, in a directory holding one run directory per seed
SEED_DIR = "seed-{seed}"             # the run directory of one seed
SUMMARY_JSON = "summary.json"        # per-seed results and their mean and standard deviation
SUMMARY_MD = "summary.md"            # the same as a Markdown table

# written by `bcexport`
MODEL_ONNX = "model.onnx"
MODEL_PACKED_ONNX = "model.packed.onnx"
MODEL_RAW_ONNX = "model.raw.onnx"
EXPORT_JSON = "export.json"
VERIFY_JSON = "verify.json"
BN_STATS_NPZ = "bn_stats.npz"        # BatchNorm mean/std re-estimated under sign(w) (bcexport.bn_restat)
C_DIR = "c"                          # generated C sources (bcexport c), replaced as a whole
C_RECORD = "export.c.json"           # a C export was made: c/ must hold it whole (bcexport.c.swap)

# inside C_DIR, written by `bcexport c`
C_HEADER = "bcnn_model.h"            # the model's API: sizes, scratch, entry points
C_SOURCE = "bcnn_model.c"            # weights and blocks
C_HARNESS = "harness.c"              # command-line harness (reads a file of samples)
C_EXPORT_JSON = "export.json"        # summary of the C export: files, sizes, kernel path, targets
