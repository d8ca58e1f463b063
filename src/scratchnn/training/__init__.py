"""Training: the loop and everything a run folder holds.

``fit`` (the loop, full batch or mini-batch), ``TrainConfig`` (every option of a run, as TOML),
``presets`` (named recipes), ``checkpoint`` (resume exactly), ``early_stopping``, ``progress``
(bars and log lines) and ``run`` (data -> model -> fit -> run folder, and resuming one).

Each is a module of its own; import what you use from it::

    from scratchnn.training.fit import fit, evaluate
    from scratchnn.training.early_stopping import EarlyStopping
    from scratchnn.training.run import train_run, resume_run
"""
