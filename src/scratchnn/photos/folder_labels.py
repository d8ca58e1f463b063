"""Photos scored against the folders they are kept in: ``mine/7/a.jpg`` shows a 7 and
``mine/42/b.jpg`` the number 42, as a learner sorts photos of their own handwriting to see how
well a model reads it (``scratchnn predict RUN mine/*/* --folder-labels``).

A photo counts when its folder's name is one of the model's classes (in any case, with ``_``
for a ``/`` no folder name can hold: ``T-shirt_top``) or, for a model of digits, a number
(full-width digits typed with a Japanese or Chinese keyboard, ``７``, read as ``7``). A
photo that could not be read counts as read wrong (a model that finds no digit in a photo of
one has not read it); a photo given twice counts once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from unicodedata import normalize

SHOWN = 10  # misread photos named in the summary; the rest are counted
DIGITS = tuple("0123456789")


def _folder_name(class_name: str) -> str:
    """A name as a folder spells it, compared without case or width (NFKC: ``７`` is ``7``)."""
    return normalize("NFKC", class_name).replace("/", "_").casefold()


def folder_label(path, classes) -> str | None:
    """What the folder of ``path`` says it shows, as the model's class (or, for digits, number)
    it names; None when it names none (a folder named 'photos', or '7' for a model of letters)."""
    name = Path(path).absolute().parent.name  # 'a.jpg' given inside mine/7/ is in 7
    named = {_folder_name(c): c for c in classes}
    if _folder_name(name) in named:
        return named[_folder_name(name)]
    number = normalize("NFKC", name)
    if tuple(classes) == DIGITS and number.isascii() and number.isdigit():  # mine/42/: the number 42
        return number
    return None


@dataclass
class FolderScore:
    """How many photos the model read as their folders say: each counted photo as (path, what its
    folder says, what the model read, or None if the photo could not be read)."""
    classes: tuple[str, ...]
    counted: list[tuple[str, str, str | None]] = field(default_factory=list)
    not_counted: list[str] = field(default_factory=list)  # photos in folders that name no class
    seen: set[Path] = field(default_factory=set)

    def add(self, path, reads: str | None) -> str | None:
        """Count the photo at ``path``, read as ``reads``; what its folder says it shows, or None."""
        expected = folder_label(path, self.classes)
        if Path(path).resolve() in self.seen:  # given twice (two patterns that overlap): once
            return expected
        self.seen.add(Path(path).resolve())
        if expected is None:
            self.not_counted.append(str(path))
        else:
            self.counted.append((str(path), expected, reads))
        return expected

    @property
    def right(self) -> int:
        return sum(reads == expected for _, expected, reads in self.counted)

    def by_folder(self) -> dict[str, tuple[int, int]]:
        """{what a folder says: (photos read right, photos)}, in the order of the model's classes
        (numbers by length, then value)."""
        totals = Counter(expected for _, expected, _ in self.counted)
        hits = Counter(expected for _, expected, reads in self.counted if reads == expected)
        order = {c: k for k, c in enumerate(self.classes)}
        labels = sorted(totals, key=lambda label: (order.get(label, len(order)), len(label), label))
        return {label: (hits[label], totals[label]) for label in labels}

    def lines(self) -> list[str]:
        """The summary, a line each: how many read right, which not, what was not counted, by folder."""
        shown = ", ".join(self.classes[:12]) + (", ..." if len(self.classes) > 12 else "")
        if not self.counted:
            return [f"No photo was scored: none is in a folder named after what it shows (the model's classes: "
                    f"{shown}; a photo of a 7 in a folder named 7: mine/7/a.jpg)"]
        n = len(self.counted)
        lines = [f"Read right: {self.right} of {n} photo{'s' * (n != 1)} ({self.right / n:.1%}), "
                 "each against the folder it is in"]
        wrong = [(path, expected, reads) for path, expected, reads in self.counted if reads != expected]
        said = [f"{path} ({expected}) read as {reads}" if reads is not None else f"{path} ({expected}) not read"
                for path, expected, reads in wrong[:SHOWN]]
        if wrong:
            lines.append("  wrong: " + "; ".join(said) + (f"; and {len(wrong) - SHOWN} more" if len(wrong) > SHOWN
                                                            else ""))
        if self.not_counted:
            folders = sorted({Path(path).absolute().parent.name for path in self.not_counted})
            lines.append(f"  not counted: {len(self.not_counted)} in folders named after no class "
                         f"({', '.join(folders[:5])}{', ...' if len(folders) > 5 else ''}; the classes: {shown})")
        scores = self.by_folder()
        if len(scores) > 1:
            lines.append("  by folder: " + ", ".join(f"{label} {right} of {total}"
                                                     for label, (right, total) in scores.items()))
        return lines

    def to_dict(self) -> dict:
        """For --json: the counts, each folder's, and each photo read wrong (``reads`` null: not read)."""
        n = len(self.counted)
        wrong = [{"path": path, "folder": expected, "reads": reads}
                 for path, expected, reads in self.counted if reads != expected]
        return {"right": self.right, "counted": n, "accuracy": self.right / n if n else None,
                "by_folder": {label: {"right": right, "counted": total}
                              for label, (right, total) in self.by_folder().items()},
                "wrong": wrong, "not_counted": len(self.not_counted)}
