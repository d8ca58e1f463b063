"""Named, documented training configurations (``scratchnn train --preset NAME``)."""
from __future__ import annotations

from .config import TrainConfig
from .errors import ConfigError

PRESETS: dict[str, TrainConfig] = {
    # The seed tutorial exactly: 784-10-10, weights and biases U[-0.5, 0.5), full-batch gradient
    # descent, lr 0.1, 500 iterations, 1,000 dev images, a line every 10 iterations. ~85% dev.
    "seed": TrainConfig(preset="seed", hidden=[10], init="seed_uniform", bias_init="seed_uniform",
                        optimizer="sgd", lr=0.1, epochs=500, batch_size=0, dev_size=1000, eval_every=10),
}

DEFAULT_PRESET = "seed"


def get_preset(name: str) -> TrainConfig:
    """A fresh copy of the named preset (safe to modify)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig.from_dict(PRESETS[name].to_dict())
