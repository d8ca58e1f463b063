"""Seeing what a network learned: figures, the walk of one image, the HTML report.

``explain`` walks one image through every layer (NumPy only); ``plots`` draws every figure
with matplotlib's object API; ``report`` puts a run's figures on one self-contained page.
Nothing here is imported by the library below it: matplotlib loads only when a figure is drawn.
"""
