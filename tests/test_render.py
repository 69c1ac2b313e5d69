"""benchmarks.render: every results section of README.md and docs/ is what its results file renders
to (re-rendered in memory); a missing file gives its placeholder; the markers are strict."""
import json

import pytest

from benchmarks import render
from benchmarks.tables import mnist

SAMPLE = {"preset": "mnist", "dataset": "mnist-sample", "epochs": 2, "command": "make results-mnist EPOCHS=2",
          "train_command": "bctrain train --binarize MODE",
          "machine": "CPU: T, 2 cores", "date": "2026-12-07T00:00:00+00:00", "code_version": "abc1234",
          "rows": [{"binarize": mode, "best_epoch": 2, "epochs_run": 2, "val_error": 0.05, "test_error": 0.0525,
                    "test_error_binary": None if mode == "none" else 0.06, "seconds_per_epoch": 2.5,
                    "n_train": 6000, "n_val": 2000, "n_test": 2000, "train_command": f"bctrain train --binarize {mode}"}
                   for mode in ("det", "stoch", "none")]}


@pytest.mark.parametrize("path", render.documents(), ids=lambda p: p.split("/")[-1])
def test_every_rendered_section_agrees_with_its_results_file(path):
    assert render.stale_sections(path, render.provenance.RESULTS_DIR) == [], "run `make docs`"


def test_documents_hold_the_sections_readers_look_for():
    text = {p.split("/")[-1]: open(p).read() for p in render.documents()}
    found = {m[1] for t in text.values() for m in render.MARKER.finditer(t)}
    assert {"mnist_sample", "cnn_check", "speed"} <= {m[1] for m in render.MARKER.finditer(text["README.md"])}
    assert found <= set(render.SECTIONS)


def test_a_missing_results_file_is_a_placeholder_naming_its_command(tmp_path):
    doc = "a\n<!-- results:mnist_sample -->\nold figures\n<!-- /results:mnist_sample -->\nb\n"
    assert render.render_document(doc, str(tmp_path)) == (
        "a\n<!-- results:mnist_sample -->\nNot measured yet: run `make results-mnist`.\n"
        "<!-- /results:mnist_sample -->\nb\n")


def test_a_changed_results_file_makes_the_section_stale_until_rendered(tmp_path):
    (tmp_path / "mnist_sample.json").write_text(json.dumps(SAMPLE))
    doc = tmp_path / "doc.md"
    doc.write_text(render.render_document("<!-- results:mnist_sample -->\n<!-- /results:mnist_sample -->\n",
                                          str(tmp_path)))
    assert render.stale_sections(str(doc), str(tmp_path)) == []
    assert "| stoch | 2 of 2 | 5.00 % | 5.25 % (real weights) | 6.00 % | 2.5 |" in doc.read_text()
    (tmp_path / "mnist_sample.json").write_text(json.dumps({**SAMPLE, "epochs": 3}))
    assert render.stale_sections(str(doc), str(tmp_path)) == ["mnist_sample"]
    assert render.main(["--check", "--results-dir", str(tmp_path), str(doc)]) == 1
    assert render.main(["--results-dir", str(tmp_path), str(doc)]) == 0
    assert render.main(["--check", "--results-dir", str(tmp_path), str(doc)]) == 0
    assert "3 epochs" in doc.read_text()


def test_unknown_sections_unreadable_files_and_missing_renderers_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(render.SECTIONS, "planned", render.Section(("planned",), "make planned", None))
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- results:nonsense -->\n<!-- /results:nonsense -->\n")
    assert render.main(["--results-dir", str(tmp_path), str(doc)]) == 2
    (tmp_path / "mnist_sample.json").write_text("{not json")
    doc.write_text("<!-- results:mnist_sample -->\n<!-- /results:mnist_sample -->\n")
    assert render.main(["--results-dir", str(tmp_path), str(doc)]) == 2
    (tmp_path / "planned.json").write_text("{}")
    doc.write_text("<!-- results:planned -->\n<!-- /results:planned -->\n")
    assert render.main(["--results-dir", str(tmp_path), str(doc)]) == 2
    (tmp_path / "mnist_sample.json").write_text(json.dumps({"rows": []}))
    doc.write_text("<!-- results:mnist_sample -->\n<!-- /results:mnist_sample -->\n")
    assert render.main(["--results-dir", str(tmp_path), str(doc)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("render: error: ") for line in err)
    assert "nonsense" in err[0] and "mnist_sample.json" in err[1] and "no renderer" in err[2]


def test_the_sample_table_states_it_is_not_mnist():
    text = mnist.render_sample(SAMPLE)
    assert "**not** MNIST results" in text and "`make results-mnist EPOCHS=2`" in text and "2026-12-07" in text
    assert "| none (float baseline) | 2 of 2 | 5.00 % | 5.25 % | – | 2.5 |" in text
