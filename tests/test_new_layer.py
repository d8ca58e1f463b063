"""Adding a layer is two places: its own class (forward/backward, gradcheck cases, file schema)
and its export. Here a layer defined only in this test, and exported nowhere, is picked up by
the gradient check, saved and loaded through a model file, and refused when its file is tampered."""
import numpy as np
import pytest

from model_file_support import tamper
from scratchnn import Dense, ReLU, Sequential
from scratchnn.errors import ModelFileError
from scratchnn.gradcheck import check_everything, check_layer, standard_cases
from scratchnn.io import MODEL_FILE, load, save
from scratchnn.nn import LAYER_TYPES, Layer
from scratchnn.nn.base import check_features
from scratchnn.nn.schema import features_in, units


@pytest.fixture
def scale_type():
    """A per-feature scale y = a·x, registered by subclassing; unregistered afterwards so no
    other test sees it in LAYER_TYPES."""

    class Scale(Layer):
        """y = a·x per feature, x (N, D), a (D,);  da = Σₙ dy·x,  dx = dy·a."""

        required_keywords = {"features": units}

        def __init__(self, features: int):
            super().__init__()
            self.features = int(features)
            self.params = {"a": np.ones(self.features, np.float32)}
            self.grads = {"a": np.zeros(self.features, np.float32)}

        def forward(self, x, training=False):
            check_features(self, x, self.features)
            self._cache = x
            return x * self.params["a"]

        def backward(self, dy, need_dx=True):
            x = self._take_cache()
            self.grads["a"][...] = (dy * x).sum(axis=0)
            return dy * self.params["a"] if need_dx else None

        def config(self):
            return {"features": self.features}

        @classmethod
        def config_shapes(cls, args, shape, where):
            features_in(shape, args["features"], where)
            return shape, {"a": shape}

        @classmethod
        def gradcheck_cases(cls, rng):
            layer = cls(4)
            layer.params["a"][...] = rng.uniform(0.5, 2.0, 4)
            return [(layer, rng.standard_normal((5, 4)))]

    try:
        yield Scale
    finally:
        del LAYER_TYPES["Scale"]


def scale_model(scale_type):
    rng = np.random.default_rng(0)
    model = Sequential([Dense(6, 4, rng=rng), scale_type(4), ReLU(), Dense(4, 10, rng=rng)])
    model.layers[1].params["a"][...] = [0.5, 1.0, 1.5, 2.0]
    return model


def test_the_gradient_check_picks_up_the_new_layer(scale_type):
    rng = np.random.default_rng(0)
    cases = [(layer, x) for layer, x in standard_cases(rng) if type(layer) is scale_type]
    assert len(cases) == 1
    checks = check_layer(*cases[0], rng)
    assert [c.wrt for c in checks] == ["x", "a"] and all(c.error < 1e-7 for c in checks), checks
    assert any(c.what.startswith("Scale") for c in check_everything())


def test_a_model_with_the_new_layer_saves_and_loads(scale_type, tmp_path):
    model = scale_model(scale_type)
    path = save(model, tmp_path / MODEL_FILE)
    loaded = load(path)
    assert type(loaded.layers[1]) is scale_type
    np.testing.assert_array_equal(loaded.layers[1].params["a"], [0.5, 1.0, 1.5, 2.0])
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


@pytest.mark.parametrize("value, message", [
    (0, "architecture layer 1 \\(Scale\\) features must be an integer from 1 to 4,194,304, got 0"),
    ("lots", "features must be an integer.*got 'lots'"),
    (5, r"architecture layer 1 \(Scale\) takes \(5,\) features but the layer before gives \(4,\)"),
])
def test_a_tampered_keyword_of_the_new_layer_is_refused(scale_type, tmp_path, value, message):
    path = save(scale_model(scale_type), tmp_path / MODEL_FILE)

    def edit(meta):
        meta["architecture"]["layers"][1]["config"]["features"] = value
    tamper(path, metadata=edit)
    with pytest.raises(ModelFileError, match=message):
        load(path)


def test_an_unknown_keyword_of_the_new_layer_is_refused(scale_type, tmp_path):
    path = save(scale_model(scale_type), tmp_path / MODEL_FILE)

    def edit(meta):
        meta["architecture"]["layers"][1]["config"]["gain"] = 2
    tamper(path, metadata=edit)
    with pytest.raises(ModelFileError, match=r"unknown keywords \['gain'\]; Scale takes features"):
        load(path)
