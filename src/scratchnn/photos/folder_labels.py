"""Photos scored against the folders they are kept in: ``mine/7/a.jpg`` shows a 7 and
``mine/42/b.jpg`` the number 42, as a learner sorts photos of their own handwriting to see how
well a model reads it (``scratchnn predict RUN mine/*/* --folder-labels``).

A photo counts when its folder's name is one of the model's classes or, for classes of one
character each (digits, letters), a string of them; a photo that could not be read counts as
read wrong (a model that finds no digit in a photo of one has not read it).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SHOWN = 10  # misread photos named in the summary; the rest are counted


def folder_label(path, classes) -> str | None:
    """What the folder of ``path`` says it shows, in the model's ``classes``; None when its name
    spells nothing they can (a folder named 'photos', or 'A' for a model of small letters)."""
    name = Path(path).parent.name
    if name in classes:
        return name
    if name and all(len(c) == 1 for c in classes) and all(ch in classes for ch in name):
        return name
    return None


@dataclass
class FolderScore:
    """How many photos the model read as their folders say: each counted photo as (path, what its
    folder says, what the model read, or None if the photo could not be read)."""
    counted: list[tuple[str, str, str | None]] = field(default_factory=list)
    not_counted: list[str] = field(default_factory=list)  # photos in folders that name no class

    def add(self, path, classes, reads: str | None) -> str | None:
        """Count the photo at ``path``, read as ``reads``; what its folder says it shows, or None."""
        expected = folder_label(path, classes)
        if expected is None:
            self.not_counted.append(str(path))
        else:
            self.counted.append((str(path), expected, reads))
        return expected

    @property
    def right(self) -> int:
        return sum(reads == expected for _, expected, reads in self.counted)

    def lines(self) -> list[str]:
        """The summary, a line each: how many read right, which not, what was not counted, by class."""
        if not self.counted:
            return [f"No photo was scored: none is in a folder named after what it shows (put a photo of a 7 "
                    f"in a folder named 7: mine/7/a.jpg); {len(self.not_counted)} in other folders"]
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
            folders = sorted({Path(path).parent.name or "." for path in self.not_counted})
            lines.append(f"  not counted: {len(self.not_counted)} in folders named after no class "
                         f"({', '.join(folders[:5])}{', ...' if len(folders) > 5 else ''})")
        totals = Counter(expected for _, expected, _ in self.counted)
        if 1 < len(totals) <= 20:
            hits = Counter(expected for _, expected, reads in self.counted if reads == expected)
            lines.append("  by folder: " + ", ".join(f"{label} {hits[label]} of {totals[label]}"
                                                     for label in sorted(totals)))
        return lines

    def to_dict(self) -> dict:
        """For --json: the counts, and each photo read wrong (``reads`` null: not read)."""
        n = len(self.counted)
        wrong = [{"path": path, "folder": expected, "reads": reads}
                 for path, expected, reads in self.counted if reads != expected]
        return {"right": self.right, "counted": n, "accuracy": self.right / n if n else None,
                "wrong": wrong, "not_counted": len(self.not_counted)}
