"""The OpenAPI schema is a contract: schemathesis generates requests from it (valid and invalid)
and runs every check against the app in-process. SCRATCHNN_SCHEMA_EXAMPLES sets the examples per
operation and mode (default 25, so CI stays well under a minute; the full run is 300)."""
import os
from pathlib import Path

import pytest

from web_support import require

require("schemathesis", "pip install -e '.[test]'")
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from scratchnn.web.app import create_app  # noqa: E402
from scratchnn.web.train_setup import TrainSetup  # noqa: E402
from scratchnn.web.training import TrainLimits  # noqa: E402
from web_support import train_tiny_model  # noqa: E402

pytestmark = pytest.mark.slow  # schemathesis runs every check on every operation (about 15 s)

EXAMPLES = int(os.environ.get("SCRATCHNN_SCHEMA_EXAMPLES", "25"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
OPERATIONS = ["POST /api/predict", "GET /api/model", "GET /api/gallery", "GET /api/train", "GET /api/train/state",
              "POST /api/train", "GET /api/train/events", "POST /api/train/stop", "POST /api/train/pause",
              "POST /api/train/resume", "GET /api/runs", "GET /api/runs/{name}/curves", "POST /api/runs/{name}/load"]
NO_INPUT = ("GET /api/model", "GET /api/train", "GET /api/train/state", "GET /api/train/events", "POST /api/train/stop",
            "POST /api/train/pause", "POST /api/train/resume", "GET /api/runs")
HOST = {"host": "localhost"}  # the app answers only its own names; schemathesis sends testserver


@pytest.fixture(scope="module")
def schema(shared_dir, tmp_path_factory):
    model = train_tiny_model(shared_dir, tmp_path_factory.getbasetemp() / "web-model")
    # runs schemathesis starts: 2 epochs at most, in a folder of their own
    train = TrainSetup(limits=TrainLimits(epochs=2, seconds=20), runs_dir=tmp_path_factory.mktemp("schema-runs"))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(model, train=train), headers=HOST,
                                          config=SchemathesisConfig.from_path(CONFIG))


def test_the_schema_lists_every_operation(schema):
    assert sorted(result.ok().label for result in schema.get_all_operations()) == sorted(OPERATIONS)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("label, mode", [(label, mode) for label in OPERATIONS for mode in GenerationMode
                                         if not (label in NO_INPUT and mode == GenerationMode.NEGATIVE)])
def test_every_check_passes(schema, label, mode):
    load_all_checks()
    operation = next(result.ok() for result in schema.get_all_operations() if result.ok().label == label)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        case.call_and_validate(headers=HOST, checks=CHECKS.get_all())

    check()
