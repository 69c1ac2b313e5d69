"""Every test runs offline with an empty, private dataset cache (tests never touch the network).

Fixtures shared by several test modules live here (their helpers in export_fixtures.py): finished
run directories of a tiny MLP and CNN, and the same after `bcexport onnx`, built once per session.
"""
import pytest

from bctrain.data import download
from export_fixtures import cnn_config, make_run_dir, mlp_config


@pytest.fixture(autouse=True)
def offline_private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path_factory.mktemp("bcnn-cache")))
    real_fetch = download.fetch_url

    def local_only(url, dest):
        if not url.startswith("file:"):
            raise OSError(f"network disabled in tests: {url}")
        return real_fetch(url, dest)

    monkeypatch.setattr(download, "fetch_url", local_only)


@pytest.fixture
def tiny_run_dir(tmp_path):
    """Finished run directory of a 784-32-16-10 MLP."""
    return make_run_dir(tmp_path / "mlp", mlp_config())


@pytest.fixture
def tiny_cnn_run_dir(tmp_path):
    """Finished run directory of an 8x8x3 conv(4)-conv(8)+pool-16-10 CNN."""
    return make_run_dir(tmp_path / "cnn", cnn_config())


def _exported(tmp_path_factory, name, cfg):
    from bcexport.onnx.export import export_run
    path = make_run_dir(tmp_path_factory.mktemp(name) / "run", cfg)
    export_run(path)
    return path


@pytest.fixture(scope="session")
def exported_mlp_dir(tmp_path_factory):
    """The MLP run directory after `bcexport onnx`, built once per session and shared by every
    test that asks for it: copy it before changing anything in it."""
    return _exported(tmp_path_factory, "mlp", mlp_config())


@pytest.fixture(scope="session")
def exported_cnn_dir(tmp_path_factory):
    """The CNN run directory after `bcexport onnx` (once per session: copy it before changing it)."""
    return _exported(tmp_path_factory, "cnn", cnn_config())
