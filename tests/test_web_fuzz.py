"""Fuzzing the API with hypothesis: whatever arrives, the answer is never a 5xx, and every
refusal is one line of JSON. (benchmarks/web_benchmark.py runs the same strategies 10,000 times.)"""
import pytest

from web_support import require  # noqa: E402

require("fastapi", "pip install 'scratchnn[web]'")
from fastapi.testclient import TestClient  # noqa: E402
from fuzzing import fuzz_examples  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from scratchnn.web.app import create_app  # noqa: E402
from scratchnn.web.train_setup import TrainSetup  # noqa: E402
from scratchnn.web.training import TrainLimits  # noqa: E402
from web_support import LOCAL_BASE_URL, api_requests, train_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def model_path(shared_dir, tmp_path_factory):
    return train_tiny_model(shared_dir, tmp_path_factory.getbasetemp() / "web-model")


@pytest.fixture(scope="module")
def client(model_path, tmp_path_factory):
    # raise_server_exceptions=False: a crash becomes the 500 a browser would see, and fails below.
    # Runs the fuzzer starts are 3 epochs at most, written to a folder of their own.
    train = TrainSetup(limits=TrainLimits(epochs=3, seconds=20), runs_dir=tmp_path_factory.mktemp("fuzz-runs"))
    with TestClient(create_app(model_path, train=train), raise_server_exceptions=False,
                    base_url=LOCAL_BASE_URL) as client:
        yield client


# Pillow warns about headers between 89 and 179 megapixels before read_image refuses them anyway.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@settings(max_examples=fuzz_examples(200), deadline=None,  # failures are kept in .hypothesis/ and replayed first
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=api_requests())
def test_no_request_gets_a_server_error(client, request):
    method, path, options = request
    response = client.request(method, path, **options)
    assert response.status_code < 500, f"{method} {path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400 and path.startswith("/api/"):
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, detail
