"""benchmarks.bench_bnn_c: the medians over rounds, the ratios' verdicts in the rendered table, and
bad flags (the measurement itself trains full-width networks: `make bench-bnn-c`, not a test)."""
import pytest

from benchmarks import bench_bnn_c
from benchmarks.tables import bnnc


def _round(c1, ort1, c256, ort256):
    return {"c_code_version": "abc", "c_build": "cc -O2", "C_batch1_ms_median": c1, "ORT_batch1_ms_median": ort1,
            "C_batch256_samples_per_s": c256, "ORT_batch256_samples_per_s": ort256}


def test_each_figure_is_its_median_over_rounds():
    rows = bench_bnn_c.median_rows([_round(0.3, 9.0, 4000.0, 1000.0), _round(0.5, 10.0, 3000.0, 1100.0),
                                    _round(0.2, 11.0, 5000.0, 900.0)])
    assert (rows["C_batch1_ms_median"], rows["ORT_batch1_ms_median"]) == (0.3, 10.0)
    assert (rows["C_batch256_samples_per_s"], rows["ORT_batch256_samples_per_s"]) == (4000.0, 1000.0)
    assert len(rows["rounds"]) == 3 and rows["c_code_version"] == "abc"


def _variant(c1, ort1, passed=True, differing=0):
    return {**bench_bnn_c.median_rows([_round(c1, ort1, 1000.0 / c1, 100.0)]), "verify_passed": passed,
            "network": "784 -> 4096 -> 10", "binary_weights": 10, "weight_bytes": 2_000_000, "kernel_path": "avx2",
            "microcontroller": {"flash": 4_600_000, "ram": 19_000}, "verified_samples": 2256,
            "hidden_bits_differing": {"c": differing}}


def _results(bnn_ms, bc_ms, ort_ms):
    bnn, bc = _variant(bnn_ms, ort_ms), _variant(bc_ms, ort_ms)
    return {"command": "make bench-bnn-c", "machine": "CPU: T, 2 cores", "date": "2026-12-07", "code_version": "abc",
            "variants": {"binarynet": bnn, "binaryconnect": bc},
            "ratios": {"bc_c_over_bnn_c_batch1": bc_ms / bnn_ms, "ort_over_bnn_c_batch1": ort_ms / bnn_ms,
                       "bnn_c_over_bc_c_batch256": bc_ms / bnn_ms, "bnn_c_over_ort_batch256": 10 / bnn_ms},
            "xnor": {"command": "python -m benchmarks.bench_xnor --rounds 5", "clock_ghz": 2.9,
                     "rows": [{"build": "native", "path": "avx2", "M": 1, "weights_per_cycle": 70.0,
                               "of_roofline": 0.273, "roofline_weights_per_cycle": 256}]}}


def test_the_table_says_which_targets_are_met():
    text = bnnc.render(_results(bnn_ms=0.3, bc_ms=1.8, ort_ms=10.0))       # 6x and 33x
    assert "| batch-1 latency, BinaryConnect C / BinaryNet C | 6.0x | 5x: met |" in text
    assert "| batch-1 latency, onnxruntime / BinaryNet C | 33.3x | 30x: met |" in text
    assert "PASSED (hidden bits differing: c 0) on 2,256 samples" in text
    assert "| native | avx2 | 1 | 70.0 | 27.3 % of 256 |" in text
    text = bnnc.render(_results(bnn_ms=0.3, bc_ms=1.2, ort_ms=8.0))        # 4x and 27x
    assert "| 4.0x | 5x: not met |" in text and "| 26.7x | 30x: not met |" in text


def test_the_cnn_pair_is_shown_without_a_target():
    r = _results(bnn_ms=0.3, bc_ms=1.8, ort_ms=10.0)
    cnn = _results(bnn_ms=5.0, bc_ms=9.0, ort_ms=25.0)
    text = bnnc.render({**r, "cnn": {"variants": cnn["variants"], "ratios": cnn["ratios"]}})
    part = text.split("The `cifar10-bnn` CNN", 1)[1].split("The binary blocks alone", 1)[0]
    assert "| batch-1 latency, onnxruntime / BinaryNet C | 5.0x |  |" in part and "met" not in part
    assert "| 6.0x | 5x: met |" in text.split("The `cifar10-bnn` CNN", 1)[0]


@pytest.mark.parametrize("flags", [["--rounds", "0"], ["--calls", "0"]])
def test_bad_counts_are_refused_before_anything_runs(flags, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_bnn_c.main([*flags, "--keep", str(tmp_path / "k")])
    assert exc.value.code == 2 and "must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


def test_a_keep_path_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("mine\n")
    with pytest.raises(SystemExit) as exc:
        bench_bnn_c.main(["--keep", str(tmp_path / "f")])
    assert exc.value.code == 2 and "exists and is not a directory" in capsys.readouterr().err
    assert (tmp_path / "f").read_text() == "mine\n"
