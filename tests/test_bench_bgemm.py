"""benchmarks.bench_bgemm: a smoke run over every path this CPU runs, and its instruction counters."""
import json
import shutil

import pytest

from benchmarks import bench_bgemm

pytestmark = pytest.mark.skipif(not shutil.which(bench_bgemm.CC), reason=f"no {bench_bgemm.CC} on PATH")


def test_smoke_run_writes_every_path(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_bgemm.main(["--seconds", "0.001", "--rounds", "1", "--batch", "2", "--no-callgrind",
                             "--no-context", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    paths = bench_bgemm.runnable_paths()
    assert "portable" in paths and set(result["results"]) == set(paths)
    for row in result["results"].values():
        assert len(row["shapes"]) == 2 * len(set(bench_bgemm.mnist_layers())) and all(s["us_per_call"] > 0 for s in row["shapes"].values())
        assert row["network_batch1_us"] > 0 and row["network_batch_samples_per_s"] > 0
    assert "network batch 1, µs" in capsys.readouterr().out
    assert result["argv"].startswith("python -m benchmarks.bench_bgemm --seconds") and result["date"]


def test_inner_loops_are_counted(tmp_path):
    simd = [p for p in bench_bgemm.runnable_paths() if p != "portable"]
    if not simd:
        pytest.skip("this CPU runs no SIMD path")
    loops = bench_bgemm.loop_instructions(simd[-1], tmp_path)
    # one loop per row count the path uses (1, 2, 4, and 8 on AVX-512): 2 lookups per row
    assert [lookups for lookups, _, _ in loops][:3] == [2, 4, 8]
    assert all(0 < per_bit < 1 for _, _, per_bit in loops)


def test_callgrind_counts_the_portable_kernel(tmp_path):
    if not shutil.which("valgrind"):
        pytest.skip("valgrind not installed")
    exe = bench_bgemm.build("portable", tmp_path)
    per_bit = bench_bgemm.callgrind_instructions(exe, (2, 64, 64)) / (2 * 64 * 64)
    assert 0.5 < per_bit < 5   # a table lookup and an addition per 4 weight bits, plus decoding
