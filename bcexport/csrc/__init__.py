"""Hand-written C sources of the generated inference code (runtime kernels, templates)."""
from pathlib import Path

CSRC = Path(__file__).resolve().parent
