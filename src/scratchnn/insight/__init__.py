"""Seeing what a network learned: the walk of one image, its figure, the HTML report.

``explain`` walks one image through every layer (NumPy only) and ``explain_figure`` draws that
walk; ``report`` puts a run's figures (from ``scratchnn.plots``) on one self-contained page.
Nothing here is imported by the library below it: matplotlib loads only when a figure is drawn.
"""
