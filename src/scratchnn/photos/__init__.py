"""Photos of handwritten digits -> 28x28 MNIST-style inputs (Pillow).

``decode`` reads a photo file into a grey array, bounded; ``preprocess`` makes it look like an
MNIST digit, the way MNIST itself was made, and cuts a written number into its digits;
``image_ops`` holds the NumPy building blocks (box and min/max filters, Otsu's threshold,
dilation, connected components).
"""
