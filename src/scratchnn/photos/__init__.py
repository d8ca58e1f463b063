"""Photos of handwritten digits -> 28x28 MNIST-style inputs (Pillow).

``preprocess`` makes a photo look like an MNIST digit, the way MNIST itself was made, and cuts
a written number into its digits; ``image_ops`` holds the NumPy building blocks (box filters,
Otsu's threshold, dilation, connected components).
"""
