"""Named, documented training configurations (``scratchnn train --preset NAME``)."""
from __future__ import annotations

from .config import TrainConfig
from .errors import ConfigError

PRESETS: dict[str, TrainConfig] = {
    # The seed tutorial exactly: 784-10-10, weights and biases U[-0.5, 0.5), full-batch gradient
    # descent, lr 0.1, 500 iterations, 1,000 dev images, a line every 10 iterations. ~85% dev.
    "seed": TrainConfig(preset="seed", hidden=[10], init="seed_uniform", bias_init="seed_uniform",
                        optimizer="sgd", lr=0.1, epochs=500, batch_size=0, dev_size=1000, eval_every=10,
                        checkpoint_every=10),
    # The seed grown up: two wider hidden layers, He initialisation, dropout, Adam on mini-batches
    # with a cosine schedule. About a minute on 60,000 MNIST digits on a laptop CPU.
    "mlp": TrainConfig(preset="mlp", hidden=[256, 128], init="he_normal", bias_init="zeros", dropout=0.2,
                       optimizer="adam", lr=1e-3, schedule="cosine", epochs=30, batch_size=128,
                       dev_size=1000, eval_every=1),
    # Three hidden layers with batch normalisation, more dropout and decoupled weight decay;
    # a warm-up epoch keeps the first steps of the deeper net stable.
    "deep-mlp": TrainConfig(preset="deep-mlp", hidden=[512, 256, 128], init="he_normal", bias_init="zeros",
                            batchnorm=True, dropout=0.3, optimizer="adamw", lr=2e-3, weight_decay=0.01,
                            schedule="cosine", warmup=1.0, epochs=40, batch_size=128, dev_size=1000,
                            eval_every=1),
}

DEFAULT_PRESET = "mlp"


def get_preset(name: str) -> TrainConfig:
    """A fresh copy of the named preset (safe to modify)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig.from_dict(PRESETS[name].to_dict())
