"""bctrain.data.registry: one table of datasets, each entry complete and loadable."""
import subprocess
import sys

import pytest

from bctrain.data import DataError, load_splits, registry


@pytest.mark.parametrize("name", sorted(registry.DATASETS))
def test_every_entry_is_complete(name):
    entry = registry.DATASETS[name]
    assert entry.name == name and callable(entry.read_function())
    assert entry.n_classes == 10 and len(entry.image_shape) in (2, 3)
    assert "test" not in entry.fit_on and set(entry.fit_on) <= {"train", "val"}
    from bctrain.data.preprocess import KINDS
    assert entry.preprocess in KINDS
    assert not entry.fallback or not registry.DATASETS[entry.fallback].files  # falls back to bundled data


def test_the_papers_datasets_and_defaults():
    d = registry.DATASETS
    assert (d["cifar10"].image_shape, d["cifar10"].preprocess, d["cifar10"].fit_on) == ((32, 32, 3), "gcn_zca", ("train", "val"))
    assert (d["svhn"].image_shape, d["svhn"].preprocess) == ((32, 32, 3), "gcn_lcn")
    assert [f.name for f in d["svhn"].files] == ["train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"]
    assert (d["mnist"].preprocess, d["mnist"].fallback) == ("mean", "mnist-sample")


def test_the_data_package_and_its_registry_import_without_numpy():
    code = "import sys, bctrain.data; sys.exit(1 if 'numpy' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_dataset_and_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'imagenet', expected one of mnist, mnist-sample, cifar10, svhn"):
        load_splits("imagenet")
    for name in ("mnist", "cifar10", "svhn"):
        with pytest.raises(DataError, match="data directory does not exist"):
            load_splits(name, data_dir=tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_no_fallback_for_the_cnn_datasets(name, capsys):
    with pytest.raises(DataError, match="download failed|downloads are disabled"):
        load_splits(name)
    with pytest.raises(DataError, match="downloads are disabled"):
        load_splits(name, allow_download=False)
    assert capsys.readouterr().err == ""
