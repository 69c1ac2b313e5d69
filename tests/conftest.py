"""Every test runs offline with an empty, private dataset cache (tests never touch the network)."""
import pytest

from bctrain.data import download


@pytest.fixture(autouse=True)
def offline_private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path_factory.mktemp("bcnn-cache")))
    real_fetch = download.fetch_url

    def local_only(url, dest):
        if not url.startswith("file:"):
            raise OSError(f"network disabled in tests: {url}")
        return real_fetch(url, dest)

    monkeypatch.setattr(download, "fetch_url", local_only)
