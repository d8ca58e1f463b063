"""Draw a greyscale image in the terminal with shade characters (two per pixel: roughly square)."""
from __future__ import annotations

import sys

import numpy as np

UNICODE_SHADES = " ░▒▓█"
ASCII_SHADES = " .:+#"


def render_image(image: np.ndarray, shades: str | None = None) -> str:
    """A 2-D uint8 image (H, W), 0 = background, as H lines of 2·W shade characters.

    >>> print(render_image(np.array([[0, 255], [128, 0]], np.uint8), ASCII_SHADES))
      ##
    ::
    """
    shades = shades or (UNICODE_SHADES if _can_print(UNICODE_SHADES) else ASCII_SHADES)
    levels = (image.astype(np.int32) * len(shades) // 256).clip(0, len(shades) - 1)
    return "\n".join("".join(shades[v] * 2 for v in row).rstrip() for row in levels)


def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False
