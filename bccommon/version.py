"""Which commit of this repository produced something: `git describe --always --dirty`.

Results files record it (benchmarks.provenance), and so does `bcexport c` in c/export.json
(`code_version`), so that a timing of the generated C names the commit that generated it, not
the checkout that happens to time it. Stdlib only.
"""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def code_version(root: str = ROOT):
    """`git describe --always --dirty` of `root` (the commit, '-dirty' if files changed), or None
    (no git, or not a checkout)."""
    try:
        proc = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None
