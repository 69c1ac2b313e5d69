"""TensorFlow for the benchmarks, loaded as quietly as the CLIs load it (bctrain.run.startup).

A benchmark imports `tf` from here before anything that imports TensorFlow: TensorFlow's start-up
lines (absl, oneDNN, and `E0000 ... failed call to cuInit` on a machine without a GPU, which is not
an error) are captured and dropped, or replayed if loading fails, so a real failure is never
hidden. `--verbose` on the command line (every TensorFlow benchmark takes it) shows them.
"""
import sys

from bctrain.run.startup import load_tensorflow

VERBOSE_FLAG = "--verbose"
VERBOSE_HELP = "show TensorFlow's start-up lines (hidden by default, as in bctrain and bcexport)"

tf = load_tensorflow(verbose=VERBOSE_FLAG in sys.argv[1:])
