"""How a finished run (``train_run``'s RunResult) shows itself: a few lines in a terminal, tables
in a notebook (final metrics, the doctor's findings, the model), and its history as a History."""
from __future__ import annotations

import html

from ..display import html_table, text_table
from ..doctor.show import no_findings
from .history import History

METRICS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "test_loss", "test_accuracy", "epochs",
           "train_seconds")


class RunDisplay:
    """Mixed into the RunResult dataclass (declared ``repr=False`` so these methods are used)."""

    def __post_init__(self) -> None:
        self.history = History(self.history)  # result.history.plot() draws the run's curves

    def _metric_rows(self) -> list[list[str]]:
        return [[name, f"{self.metrics[name]:.4f}" if isinstance(self.metrics[name], float) else str(self.metrics[name])]
                for name in METRICS if name in self.metrics]

    def _finding_rows(self) -> list[list[str]]:
        return [[f.id, f.severity, str(f.epoch), f.message] for f in self.findings]

    def __repr__(self) -> str:
        findings = ", ".join(f"[{f.id}]" for f in self.findings) or "none"
        return (f"RunResult({self.run_dir}: {self.model.widths()}, {len(self.history)} evaluation(s), "
                + ", ".join(f"{name} {value}" for name, value in self._metric_rows()) + f"; findings: {findings})")

    def __str__(self) -> str:
        parts = [f"Run {self.run_dir}", text_table(["metric", "value"], self._metric_rows(), numeric=[1])]
        if self.findings:
            parts.append(text_table(["finding", "severity", "epoch", "message"], self._finding_rows(), numeric=[2]))
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        parts = [html_table(["metric", "value"], self._metric_rows(), caption=f"Run {self.run_dir}", numeric=[1])]
        if self.findings:
            parts.append(html_table(["finding", "severity", "epoch", "message"], self._finding_rows(),
                                    caption="The doctor's findings", numeric=[2]))
        elif not getattr(self, "examined", True):
            parts.append(f"<p>No doctor examined this run here (--doctor off, or a finished run read back): "
                         f"<code>scratchnn doctor {html.escape(str(self.run_dir))}</code> does.</p>")
        else:
            said = no_findings(len(self.history))
            parts.append("<p>The doctor has no findings: the run looks healthy.</p>" if said.endswith("healthy")
                         else f"<p>The doctor has {html.escape(said)}.</p>")
        parts.append(self.model._repr_html_())
        return "".join(parts)
