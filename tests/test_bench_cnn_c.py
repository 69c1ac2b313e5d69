"""benchmarks.bench_cnn_c: its data files load as the presets' datasets, with correlated pixels;
bad arguments are usage errors. (The benchmark itself runs the full presets: `make bench-cnn-c`.)"""
import numpy as np
import pytest

from benchmarks import bench_cnn_c
from bctrain.data import load_splits


@pytest.mark.parametrize("preset", ["cifar10", "svhn"])
def test_data_files_load_as_the_preset(preset, tmp_path):
    bench_cnn_c.write_data(preset, tmp_path / "data")
    splits = load_splits(preset, str(tmp_path / "data"), allow_sample=False)
    assert splits.x_train.shape[1:] == (32, 32, 3) and len(splits.x_test) == 30
    x = splits.x_train.astype(np.float64)
    neighbours = np.corrcoef(x[:, :, :-1].ravel(), x[:, :, 1:].ravel())[0, 1]
    assert neighbours > 0.8     # smooth images (uniform noise: 0): their ZCA cancels as a photograph's does


def test_bad_arguments_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_cnn_c.main(["--presets", "mnist"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        bench_cnn_c.main(["--keep", str(tmp_path)])
    assert "already exists" in capsys.readouterr().err
