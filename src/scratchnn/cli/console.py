"""Output a terminal or a file cannot encode: plain ASCII instead of a crash.

``explain`` and the doctor write the math as it is printed in books (Σ, ∂L/∂W, ‖W‖, γ, x̂). Where
stdout is not UTF-8 (Windows' output piped or redirected is cp1252) printing them raised
UnicodeEncodeError and the command died; so did a C locale's ASCII output (Python's
surrogateescape handles only the file names it decoded). ``plain_output`` lets such a stream write
what it cannot encode in ASCII instead: Σ as "sum", ∂ as "d", ‖ as "||", γ as "gamma", x̂ as "x^",
é as "e", anything else as a backslash escape, and a file name's undecodable bytes as those bytes.
"""
from __future__ import annotations

import codecs
import unicodedata

HANDLER = "scratchnn-plain"
PLAIN = {"Σ": "sum", "Π": "prod", "∂": "d", "‖": "||", "−": "-", "√": "sqrt", "←": "<-", "→": "->", "≈": "~",
         "≤": "<=", "≥": ">=", "≠": "!=", "∞": "inf", "⊙": "*", "∗": "*", "⟨": "<", "⟩": ">", "⌊": "floor(",
         "⌋": ")", "⌈": "ceil(", "⌉": ")", "∉": " not in ", "\u0302": "^", "\u0303": "~", "\u0304": "-bar",
         "±": "+-", "°": " deg", "·": "*", "×": "x", "…": "..."}


def plain(text: str) -> str:
    """``text`` in ASCII: PLAIN's words, Greek letters by name, ^ before superscripts and _ before
    subscripts (once for a run of them), letters without their accents, anything else as a
    backslash escape.

    >>> print(plain("∂L/∂Wᵀ γ xᵢ x⁻¹ zéro ✓"))
    dL/dW^T gamma x_i x^-1 zero \\u2713
    """
    out, mark = [], ""
    for character in text:
        name = unicodedata.name(character, "")
        raised = "SUPERSCRIPT" in name or name.startswith("MODIFIER LETTER")  # ᵀ is a modifier letter
        sign = "^" if raised else "_" if "SUBSCRIPT" in name else ""
        body = unicodedata.normalize("NFKD", character).replace("\u2212", "-")  # ⁻ is a superscript minus
        if character in PLAIN:
            sign, body = "", PLAIN[character]
        elif name.startswith("GREEK ") and " LETTER " in name:
            letter = name.split()[-1].lower()
            sign, body = "", letter.capitalize() if "CAPITAL" in name else letter
        elif not sign and body[:1].isascii() and body[:1].isalpha() and all(unicodedata.combining(c) for c in body[1:]):
            sign, body = "", body[0]  # é: e and an accent
        elif not (sign and body.isascii()):
            sign, body = "", character.encode("ascii", "backslashreplace").decode("ascii")
        out.append(("" if sign == mark else sign) + body)
        mark = sign
    return "".join(out)


def _replace(error: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    if all("\udc80" <= c <= "\udcff" for c in text):  # bytes a file name held: as surrogateescape writes them
        return bytes(ord(c) - 0xDC00 for c in text), error.end
    return plain(text), error.end


codecs.register_error(HANDLER, _replace)


def plain_output(*streams) -> None:
    """Let each text stream that is not UTF-8 and would raise on a character it cannot encode
    write it as ``plain`` ASCII instead (a C locale's surrogateescape too, which still writes a
    file name's bytes as they were). A strict UTF-8 stream (a UTF-8 locale's terminal) writes a
    file name's undecodable bytes as they were too, as ``ls`` shows them: a folder named in
    Latin-1 made every message naming it raise. Streams with other error handling of their own
    are left as they are."""
    for stream in streams:
        encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
        if encoding is None or errors not in ("strict", "surrogateescape") or not hasattr(stream, "reconfigure"):
            continue
        try:
            if codecs.lookup(encoding).name != "utf-8":
                stream.reconfigure(errors=HANDLER)
            elif errors == "strict":
                stream.reconfigure(errors="surrogateescape")
        except (LookupError, ValueError, OSError):  # an unknown codec, a closed or detached stream
            continue
