"""Findings as a learner reads them: one line per finding, then its explanation and its fix."""
from __future__ import annotations

import os
import re
import textwrap

from .findings import Finding, Rule
from .thresholds import UNDERFIT_AFTER

COLORS = {"error": "\033[31m", "warning": "\033[33m", "advice": "\033[36m"}  # red, yellow, cyan
RESET = "\033[0m"


def finding_lines(finding: Finding, color: bool = False, width: int = 100) -> list[str]:
    """'[dead-relu] warning: ...' (coloured by severity on a terminal), the explanation, the fix."""
    head = finding.line()
    if color and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb":
        tag = f"[{finding.id}] {finding.severity}"
        head = COLORS[finding.severity] + tag + RESET + head[len(tag):]
    body = textwrap.wrap(finding.explanation, width, initial_indent="    ", subsequent_indent="    ")
    fix = textwrap.wrap(_unbroken_quotes(f"fix: {finding.fix}"), width, initial_indent="    ",
                        subsequent_indent="         ", break_on_hyphens=False,  # a flag (--bias-init, lr-find) whole
                        break_long_words=False)  # a quoted path longer than the line runs past it, uncut
    return [head, *body, *(line.replace(KEEP, " ") for line in fix)]


KEEP = "\x00"  # a space inside a quoted path, kept from the wrapping


QUOTED = re.compile(r"(?<!\w)'[^'\n]*'(?!\w)")  # a word shell_word quoted; not the ' of "the run's"


def _unbroken_quotes(text: str) -> str:
    """``text`` with the spaces inside a quoted word (a path shell_word quoted) made unbreakable:
    the paths audit, 'runs/café run' was wrapped into two lines of a command."""
    return QUOTED.sub(lambda found: found.group().replace(" ", KEEP), text)


def rule_lines(rule: Rule, width: int = 100) -> list[str]:
    """'[dead-relu] warning', then what it means, when it fires (its trigger) and its fix."""
    def wrapped(text: str, lead: str = "") -> list[str]:
        return textwrap.wrap(lead + text, width, initial_indent="    ", subsequent_indent="    " + " " * len(lead),
                             break_on_hyphens=False)
    return [f"[{rule.id}] {rule.severity}", *wrapped(rule.explanation), *wrapped(rule.trigger, "when: "),
            *wrapped(rule.fix, "fix: ")]


def no_findings(evaluations: int, cut_short: bool = False) -> str:
    """What no findings means after ``evaluations``: a healthy run, or one too short for the rules
    that wait for a plateau or a gap to last (a web-doctor audit: dropout 0.95 for 3 epochs, dev
    0.22, was called healthy; at 5 evaluations [train-below-dev] names it). ``cut_short``: it
    stopped before its --epochs (early stopping, a Stop), so more --epochs is no advice."""
    if evaluations >= UNDERFIT_AFTER:
        return "no findings; the run looks healthy"
    how = "" if cut_short else ": more --epochs, or a smaller --eval-every"
    return (f"no findings in {evaluations} evaluation{'s' * (evaluations != 1)}, too few to judge a plateau or a gap "
            f"(the doctor needs {UNDERFIT_AFTER}{how})")
