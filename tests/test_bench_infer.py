"""benchmarks.bench_infer: a smoke run on a tiny exported MLP and CNN (with their C), thread counts
in child processes, and the error for an unexported run."""
import json
import shutil

from benchmarks import bench_infer
from bcexport.c.export import export_c
from c_fixtures import require
from export_fixtures import make_run_dir, mlp_config

SMOKE = ["--calls", "6", "--rounds", "2", "--batches", "1", "--warmup", "1"]


def test_smoke_run_writes_every_back_end(exported_mlp_dir, tmp_path, monkeypatch, capsys):
    require("cc")
    run_dir = str(shutil.copytree(exported_mlp_dir, tmp_path / "run"))
    export_c(run_dir)
    # TF already runs in this process, so its thread count can no longer be set: skip that step.
    monkeypatch.setattr(bench_infer, "set_tf_threads", lambda threads: None)
    out = tmp_path / "bench.json"
    assert bench_infer.main([run_dir, *SMOKE, "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["results"]) == {"TF", "ORT", "ORT packed", "C", "NumPy f32"}
    for row in result["results"].values():
        assert 0 < row["batch1_ms_median"] <= row["batch1_ms_p90"]
        assert row["batch256_samples_per_s"] > 0 and len(row["batch256_samples_per_s_rounds"]) == 2
    held = {name: row["weight_bytes"] for name, row in result["results"].items()}
    # ±1 float32 weights (25,760 x 4 bytes) plus a and c; onnxruntime folds the packed model back to float
    assert held["ORT"] == held["ORT packed"] == held["TF"] >= 4 * 25_760
    assert 25_760 // 8 < held["C"] < held["ORT"] / 20
    assert set(result["ratios"]["1"]) == {"ort_over_c_batch1_latency", "c_over_ort_batch256_throughput",
                                          "ort_over_c_weight_bytes"}
    assert "| C | 1 |" in capsys.readouterr().out


def test_smoke_run_of_a_conv_net(exported_cnn_dir, tmp_path, monkeypatch, capsys):
    require("cc")
    run_dir = str(shutil.copytree(exported_cnn_dir, tmp_path / "run"))
    export_c(run_dir)
    monkeypatch.setattr(bench_infer, "set_tf_threads", lambda threads: None)
    out = tmp_path / "bench.json"
    assert bench_infer.main([run_dir, *SMOKE, "--threads", "1", "--no-numpy", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["input_shape"] == [8, 8, 3] and set(result["results"]) == {"TF", "ORT", "ORT packed", "C"}
    assert all(row["batch256_samples_per_s"] > 0 for row in result["results"].values())
    assert result["ratios"]["1"]["ort_over_c_weight_bytes"] > 5   # a and c weigh much in so small a net
    assert "| C | 1 |" in capsys.readouterr().out


def test_thread_counts_run_in_child_processes(tmp_path, monkeypatch, capsys):
    def fake_child(args, threads):
        row = {"batch1_ms_median": 1.0 / threads, "batch1_ms_p90": 1.0, "batch256_samples_per_s": 100.0 * threads,
               "weight_bytes": 4000}
        return {"threads": threads, "device": "cpu", "versions": {"tensorflow": "t", "onnxruntime": "o",
                                                                  "numpy": "n"},
                "c_build": "cc -O2", "c_kernel_path": "portable", "run_dir": "r", "preset": "p",
                "input_shape": [4], "binary_weights": 8, "calls": 1, "rounds": 1, "batches": 1,
                "results": {"ORT": row, "C": dict(row, batch1_ms_median=0.1, weight_bytes=125)}}
    monkeypatch.setattr(bench_infer, "child_run", fake_child)
    out = tmp_path / "bench.json"
    assert bench_infer.main(["run", "--threads", "1,2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["threads"] == [1, 2] and [r["threads"] for r in result["runs"]] == [1, 2]
    assert result["ratios"]["1"]["ort_over_c_batch1_latency"] == 10.0
    assert result["ratios"]["2"]["ort_over_c_batch1_latency"] == 5.0
    assert result["ratios"]["2"]["ort_over_c_weight_bytes"] == 32.0
    assert "| C | 2 | 0.100 |" in capsys.readouterr().out


def test_unexported_run_is_one_line_and_exit_2(tmp_path, capsys):
    run = make_run_dir(tmp_path / "run", mlp_config())
    assert bench_infer.main([run, "--threads", "1", "--out", str(tmp_path / "bench.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no model.onnx" in err and "bcexport onnx" in err
    assert not (tmp_path / "bench.json").exists()
