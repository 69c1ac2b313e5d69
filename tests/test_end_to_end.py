"""End to end on the bundled sample: `bctrain train` -> `bcexport onnx` -> `bcexport verify`."""
import json

import pytest

from bcexport.cli import main as bcexport_main
from bctrain.cli import main as bctrain_main


def test_train_export_verify_on_the_bundled_sample(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert bctrain_main(["train", "--epochs", "1", "--hidden", "48", "--batch-size", "200",
                         "--jit", "false", "--run-dir", run]) == 0
    assert bcexport_main(["onnx", run]) == 0
    assert bcexport_main(["verify", run]) == 0
    metrics = json.load(open(f"{run}/metrics.json"))
    verify = json.load(open(f"{run}/verify.json"))
    assert metrics["dataset"] == verify["dataset"] == "mnist-sample"
    assert verify["passed"] and verify["n_test"] == metrics["n_test"]
    # The training loop's test error (binary weights) and the TF back end of verify are the same
    # network on the same data, computed by different code: they must agree exactly.
    assert abs((1 - verify["backends"]["tf_net"]["accuracy"]) - metrics["test_error_binary"]) < 1e-12
    for name in ("onnx", "onnx_packed", "onnx_raw"):
        assert verify["backends"][name]["argmax_agreement"] == 1.0
    assert "verify: PASSED" in capsys.readouterr().out


@pytest.mark.parametrize("conv", [(), (4, 8)])  # issue 21: an MLP and a CNN in make test
def test_a_binarynet_trains_exports_and_verifies_every_hidden_bit(conv, tmp_path, capsys):
    """BinaryNet's recipe on the bundled sample (binary activations, dropout, inputs 2x/255 - 1), a tiny
    MLP, or a tiny CNN on the 28x28 images; every hidden bit of TF, ONNX and C checked (bcexport.hidden)."""
    run = str(tmp_path / "run")
    net = (["--input-shape", "28,28,1", "--conv", ",".join(map(str, conv)), "--pool", "0,1", "--hidden", "16"]
           if conv else ["--hidden", "48,32"])
    assert bctrain_main(["train", "--preset", "mnist-bnn", *net, "--epochs", "1", "--batch-size", "200",
                         "--jit", "false", "--run-dir", run]) == 0
    assert bcexport_main(["onnx", run]) == 0
    assert bcexport_main(["c", run]) == 0
    assert bcexport_main(["verify", run]) == 0
    metrics = json.load(open(f"{run}/metrics.json"))
    verify = json.load(open(f"{run}/verify.json"))
    assert {"c", "c_raw"} <= set(verify["backends"])   # c_raw: predict_pixels_hidden, pm1 in C
    assert verify["passed"] and verify["binary_activations"]["hidden_blocks"] == [0, 1, 2][:3 if conv else 2]
    assert metrics["binarize_act"] == "sign" and metrics["test_error"] < 0.5  # chance: 0.9
    for name, b in verify["backends"].items():
        assert all(r["mismatches"] == 0 for r in b["hidden"]["layers"]), name
    # the training loop's test error and TF's in verify: the same network, decided alike
    assert abs((1 - verify["backends"]["tf_net"]["accuracy"]) - metrics["test_error_binary"]) < 1e-12
    assert "verify: PASSED" in capsys.readouterr().out


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_second_training_in_the_same_directory_is_refused(tmp_path, capsys):
    run = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--hidden", "16", "--jit", "false", "--run-dir", run]
    assert bctrain_main(args) == 0
    capsys.readouterr()
    assert bctrain_main(args[:2] + ["2"] + args[3:]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bctrain: error:") and "different run" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["svhn", "cifar10"])
def test_a_small_cnn_trains_exports_and_verifies_on_official_format_files(preset, tmp_path, capsys):
    """Tiny files in the official format (SVHN .mat; CIFAR-10 tar.gz of pickled batches), a small
    CNN of the preset (its dataset, preprocessing with a real fit, optimizer), then the whole chain."""
    from bctrain.data import cifar10
    from dataset_files import cifar_arrays, svhn_arrays, write_cifar_archive, write_svhn_dir
    data_dir = tmp_path / "data"
    if preset == "svhn":
        write_svhn_dir(data_dir, svhn_arrays(n_train=60, n_extra=40, n_test=30))
    else:
        data_dir.mkdir()
        write_cifar_archive(data_dir / cifar10.ARCHIVE, cifar_arrays(n_per_batch=20, n_test=30))
    run = str(tmp_path / "run")
    assert bctrain_main(["train", "--preset", preset, "--conv", "4,8", "--pool", "0,1", "--hidden", "16",
                         "--epochs", "2", "--batch-size", "10", "--jit", "false", "--data-dir", str(data_dir),
                         "--run-dir", run]) == 0
    assert bcexport_main(["onnx", run]) == 0
    assert bcexport_main(["verify", run]) == 0
    metrics = json.load(open(f"{run}/metrics.json"))
    verify = json.load(open(f"{run}/verify.json"))
    assert metrics["dataset"] == verify["dataset"] == preset and verify["n_test"] == 30
    assert verify["passed"] and set(verify["backends"]) == {"tf_net", "onnx", "onnx_packed", "onnx_raw"}
    assert abs((1 - verify["backends"]["tf_net"]["accuracy"]) - metrics["test_error_binary"]) < 1e-12
    assert "verify: PASSED" in capsys.readouterr().out
