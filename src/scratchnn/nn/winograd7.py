"""Winograd's F(7x7, 3x3): 7x7 output tiles, which cover 28x28 and 14x14 maps exactly.

``nn/winograd4.py`` with 9x9 input tiles (stride 7) and eight finite interpolation points,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        81 multiplications instead of 49·9 = 441

1.65 multiply-adds per output pixel and channel pair (F(4x4, 3x3): 2.25, im2col: 9). A digit's
maps are 28x28 and, after one 2x2 pooling, 14x14: 4x4 and 2x2 tiles of 7, nothing computed
and dropped, where tiles of 4 compute 28x28 and 16x16 and tiles of 5 30x30 and 15x15. Products
per channel pair: 28x28 1,296 against 1,764 for both; 14x14 324 against 576 and 441.

The price is precision: more points mean larger powers in Aᵀ (up to 3⁶ = 729) and more terms in
each sum. The points are chosen for it: 0, ±1, −1/2, −3/2, 4/3, 3, 1/3 and ∞ were the best of
every set of five from ±1/4, ±1/3, ±1/2, ±2/3, ±3/4, ±4/3, ±3/2, ±2, ±3 beside 0, ±1 (typical
float32 error 5.4e-6 of the largest output on random 9x9 tiles, worst 1.9e-5; the first set
tried, 0, ±1, ±1/2, ±2, −1/4, gave 1.4e-5 and 1.4e-4). That is 5x F(5x5, 3x3)'s rounding and
some 700x below bfloat16's, which networks train in routinely. A whole layer sums these over its
input channels: on 32 -> 64 channels (13x13, float32) the largest difference from im2col is
4.6e-5 of the largest output, its gradients' 2.7e-5 (F(4x4, 3x3): 4.2e-6; F(2x2, 3x3): 6.8e-7).
"""
from __future__ import annotations

from fractions import Fraction

from .winograd4 import MatrixTiles

F7 = MatrixTiles.from_points(0, 1, -1, Fraction(-1, 2), Fraction(-3, 2), Fraction(4, 3), 3, Fraction(1, 3))
BT, G, AT = F7.BT, F7.G, F7.AT
