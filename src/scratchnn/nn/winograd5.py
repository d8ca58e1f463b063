"""Winograd's F(5x5, 3x3): 5x5 output tiles, for maps that 5 divides better than 4 or 7.

``nn/winograd4.py`` with one more interpolation point: a 7x7 input tile (stride 5) gives a 5x5
output tile through the points 0, 1, −1, 1/2, −1/2, 2 and ∞,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        49 multiplications instead of 25·9 = 225

1.96 multiply-adds per output pixel and channel pair where F(4x4, 3x3) does 2.25. What decides is
how the tiles cover the map: outputs past the last whole tile are computed and dropped. A 10x10
map takes 3x3 tiles of 4 (12x12 computed, 324 products per channel pair), 2x2 tiles of 7 (14x14,
324) but 2x2 tiles of 5 (10x10, 196). "auto" takes the tiling with the fewest products
(``Conv2D.winograd_scheme``). On 14x14 maps, where F(7x7, 3x3) runs, this tiling takes the
record preset's 64 -> 64 layer from 31.0 to 24.7 ms (F(7x7): 21.5; forward + backward, batch
128, 2 threads, ``conv_benchmark.py --fast``).

The matrices come from the points (``MatrixTiles.from_points``, the Cook-Toom construction). The
sets tried (0, ±1 and ∞ with three of ±2, ±1/2) round alike in float32: on random 7x7 tiles a
typical error of 1.1e-6 of the largest output, the worst 4e-6 to 5.5e-6 (F(4x4, 3x3): 6.4e-7
and 3.1e-6).
"""
from __future__ import annotations

from fractions import Fraction

from .winograd4 import MatrixTiles

F5 = MatrixTiles.from_points(0, 1, -1, Fraction(1, 2), Fraction(-1, 2), 2)
BT, G, AT = F5.BT, F5.G, F5.AT
