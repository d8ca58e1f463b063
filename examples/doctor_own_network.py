"""The seed tutorial's network, trained by hand in NumPy and diagnosed by scratchnn's doctor."""
import sys

import numpy as np

from scratchnn.data.idx import read_idx_pair
from scratchnn.doctor import HealthLog


def train(X, Y, iterations=30, lr=0.1, scalar_bias=False, seed=0):
    """784-10-10, ReLU, full-batch gradient descent on X (784, m) in 0..1 and labels Y (m,)."""
    rng = np.random.default_rng(seed)
    W1, b1, W2, b2 = (rng.random(shape) - 0.5 for shape in [(10, 784), (10, 1), (10, 10), (10, 1)])
    m, log = X.shape[1], HealthLog(classes=10)
    log.labels(Y)  # the doctor checks that they cover the 10 classes
    for i in range(iterations):
        Z1 = W1.dot(X) + b1
        A1 = np.maximum(Z1, 0)
        Z2 = W2.dot(A1) + b2
        A2 = np.exp(Z2 - Z2.max(axis=0)) / np.exp(Z2 - Z2.max(axis=0)).sum(axis=0)
        dZ2 = A2 - np.eye(10)[Y].T
        dZ1 = W2.T.dot(dZ2) * (Z1 > 0)
        db1 = 1 / m * np.sum(dZ1) if scalar_bias else 1 / m * dZ1.sum(axis=1, keepdims=True)
        steps = [("W1", W1, 1 / m * dZ1.dot(X.T), b1, db1),
                 ("W2", W2, 1 / m * dZ2.dot(A1.T), b2, 1 / m * dZ2.sum(axis=1, keepdims=True))]
        log.evaluation(i, train_loss=-np.log(A2[Y, np.arange(m)]).mean(), train_accuracy=(A2.argmax(0) == Y).mean())
        log.inputs(i, X)
        log.outputs(i, Z2, classes_axis=0)  # Z2 is (classes, m)
        log.activation(i, "A1", A1, kind="relu", units_axis=0)
        for name, W, dW, b, db in steps:
            W_before, b_before = W.copy(), b.copy()
            W -= lr * dW
            b -= lr * db
            log.weights(i, name, W, grad=dW, before=W_before, bias_step=b - b_before, units_axis=0)
    return log


if __name__ == "__main__":  # python examples/doctor_own_network.py IMAGES LABELS OUT_DIR [--scalar-bias]
    if len(sys.argv) < 4:
        sys.exit("usage: python examples/doctor_own_network.py IMAGES.gz LABELS.gz OUT_DIR [--scalar-bias]")
    images, labels = read_idx_pair(sys.argv[1], sys.argv[2])
    log = train(images[:2000].reshape(-1, 784).T / 255, labels[:2000], scalar_bias="--scalar-bias" in sys.argv)
    for finding in log.diagnose():
        print(finding.line())
    log.save(sys.argv[3])  # metrics.csv and health.csv: scratchnn doctor OUT_DIR reads them
