"""benchmarks.bench_infer: a smoke run on a tiny exported MLP, and the error for an unexported run."""
import json

from benchmarks import bench_infer
from export_fixtures import exported_mlp_dir, make_run_dir, mlp_config  # noqa: F401


def test_smoke_run_writes_every_back_end(exported_mlp_dir, tmp_path, monkeypatch, capsys):
    # TF already runs in this process, so its thread count can no longer be set: skip that step.
    monkeypatch.setattr(bench_infer, "set_tf_threads", lambda threads: None)
    out = tmp_path / "bench.json"
    assert bench_infer.main([exported_mlp_dir, "--calls", "6", "--rounds", "2", "--batches", "1",
                             "--warmup", "1", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["results"]) == {"TF", "ORT", "ORT packed", "NumPy f32"}
    for row in result["results"].values():
        assert 0 < row["batch1_ms_median"] <= row["batch1_ms_p90"]
        assert row["batch256_samples_per_s"] > 0 and len(row["batch256_samples_per_s_rounds"]) == 2
    assert "ORT packed" in capsys.readouterr().out


def test_unexported_run_is_one_line_and_exit_2(tmp_path, capsys):
    run = make_run_dir(tmp_path / "run", mlp_config())
    assert bench_infer.main([run, "--out", str(tmp_path / "bench.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no model.onnx" in err and "bcexport onnx" in err
    assert not (tmp_path / "bench.json").exists()
