"""Render benchmarks/results/*.json into README.md and docs/*.md between markers: `make docs`.

A document holds a section as

    <!-- results:NAME -->
    (generated: do not edit; `make docs` rewrites it)
    <!-- /results:NAME -->

and `SECTIONS[NAME]` says which results files the section reads, which command writes them, and
which function (benchmarks.tables) turns them into Markdown. A results file that does not exist yet
gives a one-line placeholder naming its command. So a re-measurement changes the JSON and, through
this script, the rendered table; nobody edits a figure by hand. `--check` changes nothing and exits
1 naming every section whose text differs from what its results render to (tests/test_render.py
runs the same check). TensorFlow-free.

Usage: make docs   (or: python -m benchmarks.render [--check] [--results-dir DIR] [DOCUMENT ...])
"""
import argparse
import dataclasses
import glob
import json
import os
import re
import sys
from typing import Callable

from benchmarks import provenance
from benchmarks.tables import bnn, bnnc, ckernels, cnn, cnn_check, infer, mnist, speed, train

MARKER = re.compile(r"<!-- results:([\w-]+) -->\n(.*?)<!-- /results:\1 -->", re.S)


@dataclasses.dataclass(frozen=True)
class Section:
    files: tuple          # results files it reads (names in benchmarks/results/, without .json)
    command: str          # the command that writes them
    render: Callable      # {name: contents or None} -> Markdown; None: no renderer yet
    partial: bool = False  # renders with some files missing (it writes their placeholders itself)


def one(fn, name):
    """A renderer of one results file."""
    return lambda results: fn(results[name])


def _single(name, command, fn):
    return Section((name,), command, one(fn, name) if fn else None)


SECTIONS = dict((
    ("mnist_sample", _single("mnist_sample", "make results-mnist", mnist.render_sample)),
    ("cnn_check", _single("cnn_check", "make cnn-check", cnn_check.render)),
    ("speed", Section(tuple(part[0] for part in speed.PARTS), "(each row names its own)", speed.render_speed,
                      partial=True)),
    ("bench_train", _single("bench_train", "make bench-train", train.render)),
    ("bench_infer_mnist", _single("bench_infer_mnist", "make train-mnist EPOCHS=5 && make export export-c bench-infer",
                                  infer.render)),
    ("bench_infer_cifar10", _single("bench_infer_cifar10", "make bench-infer-cnn", infer.render)),
    ("bench_infer_svhn", _single("bench_infer_svhn", "make bench-infer-cnn", infer.render)),
    ("bench_bgemm", _single("bench_bgemm", "make bench-bgemm", ckernels.render_bgemm)),
    ("bench_cnn_c", _single("bench_cnn_c", "make bench-cnn-c", ckernels.render_cnn_c)),
    ("bench_cnn", _single("bench_cnn", "make bench-cnn", cnn.render_cnn)),
    ("bench_preprocess", _single("bench_preprocess", "make bench-cnn", cnn.render_preprocess)),
    ("bnn_check", _single("bnn_check", "make bnn-check", bnn.render)),
    ("bench_bnn_c", _single("bench_bnn_c", "make bench-bnn-c", bnnc.render)),
))


class RenderError(Exception):
    """A document or results file this script cannot use (one line: which, and why)."""


def load_results(names, results_dir) -> dict:
    """{name: the results file's contents, or None if it does not exist}."""
    out = {}
    for name in names:
        path = os.path.join(results_dir, name + ".json")
        try:
            with open(path) as fh:
                out[name] = json.load(fh)
        except FileNotFoundError:
            out[name] = None
        except (OSError, json.JSONDecodeError) as exc:
            raise RenderError(f"{path}: unreadable results file ({exc})") from None
    return out


def render_section(name: str, results_dir: str) -> str:
    """The Markdown of section `name` (without its markers), ending in a newline."""
    if name not in SECTIONS:
        raise RenderError(f"unknown results section {name!r} (expected one of: {', '.join(SECTIONS)})")
    section = SECTIONS[name]
    results = load_results(section.files, results_dir)
    missing = [f for f, r in results.items() if r is None]
    if missing and not section.partial:
        return f"Not measured yet: run `{section.command}`.\n"
    if section.render is None:
        raise RenderError(f"{name}: results exist but no renderer is registered in benchmarks/render.py SECTIONS")
    try:
        return section.render(results).rstrip("\n") + "\n"
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise RenderError(f"{name}: results file(s) {', '.join(section.files)} lack what the table needs "
                          f"({type(exc).__name__}: {exc})") from None


def render_document(text: str, results_dir: str) -> str:
    """`text` with every marked section rendered afresh from `results_dir`."""
    return MARKER.sub(lambda m: f"<!-- results:{m[1]} -->\n{render_section(m[1], results_dir)}"
                                f"<!-- /results:{m[1]} -->", text)


def documents(root: str = provenance.ROOT) -> list:
    """README.md and docs/*.md: every document that may hold results sections."""
    return [os.path.join(root, "README.md"), *sorted(glob.glob(os.path.join(root, "docs", "*.md")))]


def stale_sections(path: str, results_dir: str) -> list:
    """Names of the sections of `path` whose text differs from what their results render to."""
    with open(path) as fh:
        text = fh.read()
    return [m[1] for m in MARKER.finditer(text) if m[2] != render_section(m[1], results_dir)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("documents", nargs="*", help="documents to render (default: README.md and docs/*.md)")
    parser.add_argument("--results-dir", default=provenance.RESULTS_DIR, help="where the results files are")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a section is stale")
    args = parser.parse_args(argv)
    from bccommon import atomic
    stale = []
    try:
        for path in args.documents or documents():
            if args.check:
                stale += [f"{path}: {name}" for name in stale_sections(path, args.results_dir)]
                continue
            with open(path) as fh:
                text = fh.read()
            new = render_document(text, args.results_dir)
            if new != text:
                atomic.write_text(path, new)
                print(f"rendered {path}")
    except (RenderError, OSError) as exc:
        print(f"render: error: {exc}", file=sys.stderr)
        return 2
    if stale:
        print("stale results sections (run `make docs`): " + "; ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
