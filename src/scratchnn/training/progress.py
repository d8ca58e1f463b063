"""Live progress bars for ``fit`` (tqdm), and log lines that do not break them.

Mini-batch training gets one bar per epoch over its batches, showing the running loss and
accuracy of that epoch; full-batch training (one step per epoch, the seed) gets one bar over
all epochs. Bars go to stderr and switch themselves off when it is not a terminal.
"""
from __future__ import annotations

import math

from tqdm.auto import tqdm


class TrainingProgress:
    """Pass ``on_batch_end`` to ``fit`` and print through ``write``; ``close`` at the end."""

    def __init__(self, epochs: int, start_epoch: int = 0, enabled: bool = True):
        self.epochs, self.start_epoch = epochs, start_epoch
        self.disable = None if enabled else True  # None: tqdm decides (off unless stderr is a TTY)
        self.bar = None
        self._loss = self._accuracy = 0.0

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float, accuracy: float) -> None:
        if batches == 1:  # full batch: a single bar over all epochs
            if self.bar is None:
                self.bar = tqdm(total=self.epochs, initial=self.start_epoch, desc="Training", unit="it",
                                disable=self.disable, leave=False, dynamic_ncols=True)
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            self.bar.update(1)
            return
        if batch == 1:
            self.close()
            self.bar = tqdm(total=batches, desc=f"Epoch {epoch}/{self.epochs}", unit="batch",
                            disable=self.disable, leave=False, dynamic_ncols=True)
            self._loss = self._accuracy = 0.0
        self._loss += (loss - self._loss) / batch  # running means over the epoch so far
        postfix = f"loss {self._loss:.4f}"
        if not math.isnan(accuracy):
            self._accuracy += (accuracy - self._accuracy) / batch
            postfix += f" acc {self._accuracy:.4f}"
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(1)

    def write(self, line: str) -> None:
        """Print a line above the bar (plain print when there is none)."""
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
