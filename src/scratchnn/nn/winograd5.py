"""Winograd's F(5x5, 3x3): the tile that fits the 14x14 maps of a 28x28 digit's second block.

``nn/winograd4.py`` with one more interpolation point: a 7x7 input tile (stride 5) gives a 5x5
output tile through the points 0, 1, −1, 1/2, −1/2, 2 and ∞,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        49 multiplications instead of 25·9 = 225

1.96 multiply-adds per output pixel and channel pair where F(4x4, 3x3) does 2.25. What decides is
how the tiles cover the map: outputs past the last whole tile are computed and dropped. A 14x14
map takes 4x4 tiles of 4 (16x16 computed, 576 products per channel pair) but 3x3 tiles of 5
(15x15, 441 products): 23% fewer. A 28x28 map takes 7x7 tiles of 4 or 6x6 of 5: 1,764 either
way, and the bigger tile's transforms cost a little more; an 11x11 map is 324 against 441. So
"auto" takes this scheme only where it needs fewer products (``Conv2D.winograd_scheme``).

Of the point sets tried (0, ±1 and ∞ with three of ±2, ±1/2), this one rounds least in float32:
worst error 3.9e-6 of the largest output on random 7x7 tiles against 4.4e-6 to 5.7e-6, typical
1.1e-6 (F(4x4, 3x3): 2.3e-6 and 6.5e-7), far below what training notices. The matrices were built by the Cook-Toom construction (Lavin & Gray, 2015): Aᵀ[i, j] =
aⱼⁱ, G[j, k] = aⱼᵏ / Πₗ≠ⱼ(aⱼ − aₗ), Bᵀ the remaining factor, rows of Bᵀ scaled to whole numbers
(and G's rows by the inverse); ∞ is the last column of Aᵀ and the last row of G and Bᵀ. The
1-D identity Aᵀ[(G g) ⊙ (Bᵀ d)] = (d[k:k+3]·g for k < 5) is exact in rational arithmetic.
"""
from __future__ import annotations

import numpy as np

from .winograd4 import MatrixTiles

BT = np.array([[-2, 1, 10, -5, -8, 4, 0], [0, 2, 1, -9, -4, 4, 0], [0, -2, 3, 7, -12, 4, 0],
               [0, 2, 3, -4, -3, 2, 0], [0, -2, 5, 0, -5, 2, 0], [0, 1, 0, -5, 0, 4, 0],
               [0, -2, 1, 10, -5, -8, 4]])                                                   # input tiles
G = np.array([[-1 / 2, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 18, 1 / 18, -1 / 18], [8 / 9, 4 / 9, 2 / 9],
              [8 / 15, -4 / 15, 2 / 15], [1 / 90, 1 / 45, 2 / 45], [0, 0, 1 / 4]])          # kernels
AT = np.array([[1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, -1 / 2, 2, 0], [0, 1, 1, 1 / 4, 1 / 4, 4, 0],
               [0, 1, -1, 1 / 8, -1 / 8, 8, 0], [0, 1, 1, 1 / 16, 1 / 16, 16, 1]])          # outputs

F5 = MatrixTiles(BT, G, AT)
