"""Training: the loop and everything a run folder holds.

``fit`` (the loop, full batch or mini-batch), ``TrainConfig`` (every option of a run, as TOML),
``presets`` (named recipes), ``checkpoint`` (resume exactly), ``early_stopping``, ``progress``
(bars and log lines) and ``run`` (data -> model -> fit -> run folder, and resuming one).
"""
