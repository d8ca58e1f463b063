"""Output a terminal or a file cannot encode: plain ASCII instead of a crash.

``explain`` and the doctor write the math as it is printed in books (Σ, ∂L/∂W, ‖W‖, γ, x̂). Where
stdout is not UTF-8 (Windows' output piped or redirected is cp1252) printing them raised
UnicodeEncodeError and the command died. ``plain_output`` lets such a stream write what it cannot
encode in ASCII instead: Σ as "sum", ∂ as "d", ‖ as "||", γ as "gamma", x̂ as "x^", anything else
as a backslash escape.
"""
from __future__ import annotations

import codecs
import unicodedata

HANDLER = "scratchnn-plain"
PLAIN = {"Σ": "sum", "Π": "prod", "∂": "d", "‖": "||", "−": "-", "√": "sqrt", "←": "<-", "→": "->", "≈": "~",
         "≤": "<=", "≥": ">=", "≠": "!=", "∞": "inf", "⊙": "*", "∗": "*", "⟨": "<", "⟩": ">", "⌊": "floor(",
         "⌋": ")", "⌈": "ceil(", "⌉": ")", "∉": " not in ", "\u0302": "^", "\u0303": "~", "\u0304": "-bar"}


def plain(text: str) -> str:
    """``text`` in ASCII: PLAIN's words, Greek letters by name, ^ before superscripts and _ before
    subscripts (once for a run of them), anything else as a backslash escape.

    >>> print(plain("∂L/∂Wᵀ γ xᵢ x⁻¹ ✓"))
    dL/dW^T gamma x_i x^-1 \\u2713
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
        elif not (sign and body.isascii()):
            sign, body = "", character.encode("ascii", "backslashreplace").decode("ascii")
        out.append(("" if sign == mark else sign) + body)
        mark = sign
    return "".join(out)


def _replace(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return plain(error.object[error.start:error.end]), error.end


codecs.register_error(HANDLER, _replace)


def plain_output(*streams) -> None:
    """Let each text stream that is not UTF-8 and would raise on a character it cannot encode
    write it as ``plain`` ASCII instead. UTF-8 streams, and streams with their own error handling
    (Python's surrogateescape for file names in a C locale), are left as they are."""
    for stream in streams:
        encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
        if encoding is None or errors != "strict" or not hasattr(stream, "reconfigure"):
            continue
        try:
            if codecs.lookup(encoding).name != "utf-8":
                stream.reconfigure(errors=HANDLER)
        except (LookupError, ValueError, OSError):  # an unknown codec, a closed or detached stream
            continue
