"""Config: presets, overrides, validation, JSON round trip, and the CLI flags built from it."""
import dataclasses
import json
import math

import pytest

from bctrain.cli import build_parser
from bctrain.config import PRESETS, Config, ConfigError, load_config, with_overrides


def test_mnist_preset_is_the_authors_recipe():
    cfg = PRESETS["mnist"]
    assert cfg.hidden == (2048, 2048, 2048) and cfg.batch_size == 100 and cfg.epochs == 250
    assert (cfg.optimizer, cfg.lr_start, cfg.lr_end, cfg.bn_alpha, cfg.bn_eps) == ("adam", 1e-3, 3e-6, 0.15, 1e-4)
    assert (cfg.h, cfg.lr_scale) == ("1", "glorot")


def test_mnist_paper_preset_uses_sgd_and_glorot_h():
    cfg = PRESETS["mnist-paper"]
    assert cfg.hidden == (1024, 1024, 1024) and cfg.batch_size == 200 and cfg.epochs == 1000
    assert (cfg.optimizer, cfg.h, cfg.lr_scale) == ("sgd", "glorot", "1")


@pytest.mark.parametrize("name, conv, lr, epochs, decay, dataset, kind", [
    ("cifar10", (128, 128, 256, 256, 512, 512), (3e-3, 2e-6), 500, 0.985480, "cifar10", "gcn_zca"),
    ("svhn", (64, 64, 128, 128, 256, 256), (1e-2, 3e-6), 200, 0.960253, "svhn", "gcn_lcn"),
])
def test_cnn_presets_are_the_authors_recipes(name, conv, lr, epochs, decay, dataset, kind):
    cfg = PRESETS[name]
    assert (cfg.preset, cfg.dataset, cfg.preprocess, cfg.input_shape) == (name, dataset, kind, (32, 32, 3))
    assert cfg.conv == conv and cfg.pool == (0, 1, 0, 1, 0, 1) and cfg.hidden == (1024, 1024)
    assert (cfg.optimizer, (cfg.lr_start, cfg.lr_end), cfg.epochs) == ("adam", lr, epochs)
    assert (cfg.batch_size, cfg.bn_alpha, cfg.bn_eps, cfg.beta1, cfg.beta2, cfg.adam_eps) == (50, 0.1, 1e-4, 0.9, 0.999, 1e-8)
    assert (cfg.h, cfg.lr_scale, cfg.binarize) == ("1", "glorot", "det")
    assert round((cfg.lr_end / cfg.lr_start) ** (1 / cfg.epochs), 6) == decay


@pytest.mark.parametrize("name, lr, epochs, dataset", [
    ("mnist-bnn", (3e-3, 3e-7), 1000, "mnist"), ("cifar10-bnn", (1e-3, 3e-7), 500, "cifar10"),
    ("svhn-bnn", (1e-3, 1e-6), 200, "svhn")])
def test_binarynet_presets_are_the_authors_recipes(name, lr, epochs, dataset):
    """BinaryNet's Train-time/mnist.py, cifar10.py, svhn.py (PAPER.md §10)."""
    cfg = PRESETS[name]
    assert (cfg.preset, cfg.dataset, cfg.binarize, cfg.binarize_act, cfg.preprocess) == (name, dataset, "det", "sign",
                                                                                          "pm1")
    assert ((cfg.lr_start, cfg.lr_end), cfg.epochs, cfg.bn_alpha, cfg.bn_eps) == (lr, epochs, 0.1, 1e-4)
    assert (cfg.optimizer, cfg.h, cfg.lr_scale) == ("adam", "1", "glorot")
    if dataset == "mnist":
        assert cfg.hidden == (4096,) * 3 and cfg.batch_size == 100 and (cfg.dropout_in, cfg.dropout_hidden) == (.2, .5)
    else:
        twin = PRESETS[dataset]  # the BinaryConnect preset's CNN
        assert (cfg.conv, cfg.pool, cfg.hidden, cfg.batch_size) == (twin.conv, twin.pool, twin.hidden, 50)
        assert (cfg.dropout_in, cfg.dropout_hidden) == (0, 0)


def test_binary_activations_need_h_a_power_of_two_and_dropout_a_probability():
    assert with_overrides("mnist-bnn", h="0.5").h == "0.5"
    assert with_overrides("mnist", binarize="none", binarize_act="sign", h="glorot").h == "glorot"  # float weights
    with pytest.raises(ConfigError, match="h='glorot': binary activations .* power of two"):
        with_overrides("mnist-bnn", h="glorot")
    with pytest.raises(ConfigError, match="h='3': binary activations"):
        with_overrides("mnist-bnn", h="3")
    for field in ("dropout_in", "dropout_hidden"):
        with pytest.raises(ConfigError, match=rf"{field}=1.0: expected a finite number in \[0, 1\)"):
            with_overrides("mnist", **{field: 1.0})
    with pytest.raises(ConfigError, match="binarize_act='tanh': expected one of none, sign"):
        with_overrides("mnist", binarize_act="tanh")


def test_dataset_and_preprocessing_choices_are_the_tables():
    from bctrain.data.preprocess import KINDS
    from bctrain.data.registry import DATASETS
    fields = {f.name: f for f in dataclasses.fields(Config)}
    assert fields["dataset"].metadata["choices"] == tuple(DATASETS)
    assert fields["preprocess"].metadata["choices"] == tuple(KINDS)
    with pytest.raises(ConfigError, match="dataset='imagenet'"):
        with_overrides("cifar10", dataset="imagenet")


def test_mnist_small_preset_fits_a_256_kb_flash_part():
    from bctrain.paper.arch import count_binary_weights, layer_specs
    cfg = PRESETS["mnist-small"]
    assert cfg.hidden == (256, 256, 256) and dataclasses.replace(cfg, preset="mnist", hidden=PRESETS["mnist"].hidden) \
        == PRESETS["mnist"]
    assert count_binary_weights(layer_specs(cfg)) == 784 * 256 + 2 * 256 * 256 + 256 * 10 == 334_336


def test_json_round_trip(tmp_path):
    cfg = with_overrides("mnist", epochs=3, hidden=(16, 8), binarize="stoch", steps_per_call=2)
    (tmp_path / "config.json").write_text(cfg.to_json())
    assert load_config(str(tmp_path)) == cfg


def test_the_recipe_is_what_decides_the_results_and_the_runtime_how_they_are_computed():
    assert Config.runtime_fields() == ("jit", "update_kernel", "eval_batch_size", "steps_per_call", "strategy",
                                       "replicas")
    assert {"hidden", "conv", "dataset", "preprocess", "optimizer", "lr_start", "epochs", "binarize", "seed",
            "precision", "bn_stats", "patience"} <= set(Config.recipe_fields())
    assert set(Config.recipe_fields()) | set(Config.runtime_fields()) == {f.name for f in dataclasses.fields(Config)}
    data = json.loads(PRESETS["cifar10"].to_json())
    assert set(data) == {"recipe", "runtime"} and data["runtime"]["eval_batch_size"] == 500


def test_a_config_json_of_earlier_releases_is_read(tmp_path):
    """Flat, without strategy and replicas: those take their defaults."""
    cfg = with_overrides("mnist", epochs=3, hidden=(16, 8))
    flat = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()
            if k not in ("strategy", "replicas")}
    (tmp_path / "config.json").write_text(json.dumps(flat))
    assert load_config(str(tmp_path)) == cfg


def test_a_config_json_from_before_binary_activations_is_read_with_their_defaults(tmp_path):
    cfg = with_overrides("mnist", epochs=3, hidden=(16, 8))
    data = json.loads(cfg.to_json())
    for name in ("binarize_act", "dropout_in", "dropout_hidden"):
        del data["recipe"][name]
    (tmp_path / "config.json").write_text(json.dumps(data))
    loaded = load_config(str(tmp_path))
    assert loaded == cfg and (loaded.binarize_act, loaded.dropout_in, loaded.dropout_hidden) == ("none", 0, 0)


def test_a_field_under_the_wrong_heading_or_a_missing_recipe_field_is_refused(tmp_path):
    data = json.loads(Config().to_json())
    data["recipe"]["jit"] = data["runtime"].pop("jit")
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="config.json: fields under the wrong heading: jit"):
        load_config(str(tmp_path))
    data = json.loads(Config().to_json())
    del data["recipe"]["epochs"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="config.json: missing recipe fields: epochs"):
        load_config(str(tmp_path))


@pytest.mark.parametrize("change, word", [
    ({"binarize": "sign"}, "binarize"), ({"epochs": 0}, "epochs"), ({"h": "big"}, "h="),
    ({"bn_alpha": 0.0}, "bn_alpha"), ({"pool": (1,)}, "pool"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"patience": -1}, "patience"), ({"precision": "float64"}, "precision"),
])
def test_bad_values_are_refused_with_the_field_name(change, word):
    with pytest.raises(ConfigError, match=word):
        with_overrides("mnist", **change)


@pytest.mark.parametrize("field, value", [
    ("seed", -1), ("seed", 2 ** 32), ("h", "nan"), ("h", "inf"), ("h", "-1"), ("lr_scale", "nan"),
    ("adam_eps", 0.0), ("bn_eps", math.nan), ("bn_eps", -1.0), ("beta1", 2.0), ("beta2", 1.0),
    ("lr_start", math.inf), ("lr_end", math.nan), ("bn_alpha", math.nan), ("n_classes", 1),
    ("pool", (2,)), ("input_shape", (0,)), ("input_shape", (28, 28)),
])
def test_values_that_would_crash_or_give_nan_later_are_refused(field, value):
    overrides = {"conv": (8,), "input_shape": (8, 8, 1)} if field == "pool" else {}
    with pytest.raises(ConfigError, match=f"^{field}="):
        with_overrides("mnist", **{**overrides, field: value})


@pytest.mark.parametrize("field, value, words", [
    ("epochs", "3", "expected an integer"), ("epochs", 2.5, "expected an integer"),
    ("epochs", True, "expected an integer"), ("lr_start", "0.001", "expected a number"),
    ("hidden", "16", "expected a list of integers"), ("hidden", [16, "8"], "expected a list of integers"),
    ("jit", 1, "expected true or false"), ("h", 1, "expected a string"),
])
def test_config_json_with_wrongly_typed_values_is_refused(tmp_path, field, value, words):
    data = json.loads(Config().to_json())
    data["runtime" if field in Config.runtime_fields() else "recipe"][field] = value
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"config.json: {field}=.*{words}"):
        load_config(str(tmp_path))


@pytest.mark.parametrize("text", ["[1, 2]", '"mnist"', "null"])
def test_config_json_that_is_not_an_object_is_refused(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError, match="config.json: expected a JSON object"):
        load_config(str(tmp_path))


def test_unknown_preset_and_unknown_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        with_overrides("imagenet")
    data = json.loads(Config().to_json())
    data["recipe"]["colour"] = "blue"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="unknown config keys: colour"):
        load_config(str(tmp_path))
    data["recipe"].pop("colour")
    (tmp_path / "config.json").write_text(json.dumps({**data, "colour": "blue"}))
    with pytest.raises(ConfigError, match='"recipe" and "runtime" only, got colour, recipe, runtime'):
        load_config(str(tmp_path))
    data["recipe"]["preset"] = "imagenet"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(str(tmp_path))


def test_missing_run_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        load_config(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="no config.json"):
        load_config(str(tmp_path))


def test_every_config_field_has_a_flag():
    args = build_parser().parse_args(["train", "--hidden", "64,32", "--jit", "false", "--lr-start", "0.01"])
    assert args.hidden == (64, 32) and args.jit is False and args.lr_start == 0.01
    flags = build_parser()._subparsers._group_actions[0].choices["train"]._option_string_actions
    for f in dataclasses.fields(Config):
        if f.name != "preset":
            assert "--" + f.name.replace("_", "-") in flags
