"""How objects look in a notebook: one small HTML table, shared by the model, History and runs.

Jupyter shows an object through its ``_repr_html_`` when it has one, else ``repr``; both are
built from the same rows, so the terminal and the notebook say the same thing.
"""
from __future__ import annotations

import html
from collections.abc import Sequence


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "",
               footer: str = "", numeric: Sequence[int] = ()) -> str:
    """An HTML <table> of strings (every cell escaped); columns in ``numeric`` align right.

    >>> html_table(["a", "b"], [["<1>", "2"]], numeric=[1])[:7]
    '<table>'
    """
    def cells(row, tag):
        return "".join(f'<{tag} style="text-align:{"right" if i in numeric else "left"}">{html.escape(str(v))}</{tag}>'
                       for i, v in enumerate(row))

    parts = ["<table>"]
    if caption:
        parts.append(f'<caption style="text-align:left"><b>{html.escape(caption)}</b></caption>')
    parts.append(f"<thead><tr>{cells(header, 'th')}</tr></thead><tbody>")
    parts += [f"<tr>{cells(row, 'td')}</tr>" for row in rows]
    parts.append("</tbody></table>")
    if footer:
        parts.append(f"<p>{html.escape(footer)}</p>")
    return "".join(parts)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """The same table as aligned text, a rule under the header (for ``print`` in a terminal).

    >>> print(text_table(["n", "name"], [["1", "one"], ["22", "two"]], numeric=[0]))
     n  name
    --------
     1  one
    22  two
    """
    table = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if c in numeric else cell.ljust(w)
                       for c, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in table]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
