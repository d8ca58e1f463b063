# %% [markdown]
# # 1. The seed network, by hand and with scratchnn
#
# scratchnn grew from a classic tutorial: a network of 784 inputs, 10 ReLU units and 10 softmax
# outputs, trained by full-batch gradient descent to about 85% on handwritten digits. Here we
# write it in twenty lines of NumPy, derive its backward pass, find the bug in the tutorial's
# bias gradient and check it on real numbers, and then build the same network with scratchnn.
#
# **Notation.** Arrays are batch-first: a batch of $N$ images is `x (N, 784)`, and a layer
# computes $x W + b$ with `W (784, 10)`. The tutorial writes `W1.dot(X)` with `X (784, N)`:
# the same math, transposed.

# %% setup

# %% [markdown]
# ## The forward pass
#
# $$z_1 = x W_1 + b_1 \;(N, 10), \qquad a_1 = \max(0, z_1), \qquad z_2 = a_1 W_2 + b_2 \;(N, 10)$$
#
# The softmax turns the 10 scores of each image into probabilities, and the loss is the mean
# cross-entropy, $-\log$ of the probability given to the right digit $y_n$:
#
# $$p_{n,k} = \frac{e^{z_{2,nk}}}{\sum_j e^{z_{2,nj}}}, \qquad L = -\frac{1}{N}\sum_{n=1}^{N} \log p_{n, y_n}$$
#
# Subtracting $\max_j z_{2,nj}$ before the exponential changes nothing in $p$ and keeps
# $e^{z}$ from overflowing. (The tutorial's softmax leaves it out: `np.exp(Z) / sum(np.exp(Z))`
# works while its ten scores stay small, and returns `nan` once one passes about 710 in float64,
# 88 in float32. `--fault naive-softmax` shows it.)

# %%
rng = np.random.default_rng(0)
def uniform(*shape):                                    # the tutorial's U[-0.5, 0.5), in float32 like x
    return rng.uniform(-0.5, 0.5, shape).astype(np.float32)

W1, b1, W2, b2 = uniform(784, 10), uniform(10), uniform(10, 10), uniform(10)

def forward(x, W1, b1, W2, b2):
    z1 = x @ W1 + b1                                    # (N, 10)
    a1 = np.maximum(z1, 0)                              # (N, 10)
    z2 = a1 @ W2 + b2                                   # (N, 10)
    e = np.exp(z2 - z2.max(axis=1, keepdims=True))
    return z1, a1, e / e.sum(axis=1, keepdims=True)     # p (N, 10)

def loss(p, y):
    return -np.mean(np.log(p[np.arange(len(y)), y]))

z1, a1, p = forward(x_train, W1, b1, W2, b2)
print("x", x_train.shape, "z1", z1.shape, "p", p.shape, f"loss {loss(p, y_train):.3f}  (ln 10 = {np.log(10):.3f})")

# %% [markdown]
# A network that knew nothing and said so would give every class 1/10, a loss of ln 10. This one
# starts above it: weights of up to ±0.5 on ~150 inked pixels give scores a few units apart, so
# the untrained network is confidently wrong about many digits, and a confident wrong answer
# costs more than "no idea".

# %% [markdown]
# ## The backward pass, step by step
#
# With $Y$ the one-hot labels $(N, 10)$, the gradient of the mean cross-entropy with respect to
# the scores is the famous
#
# $$\delta_2 = \frac{\partial L}{\partial z_2} = \frac{p - Y}{N} \;(N, 10).$$
#
# Each layer $z = a W + b$ then passes it on by the chain rule:
#
# $$\frac{\partial L}{\partial W_2} = a_1^\top \delta_2 \;(10, 10), \qquad
#   \frac{\partial L}{\partial b_2} = \sum_{n} \delta_{2,n} \;(10,), \qquad
#   \delta_1 = (\delta_2 W_2^\top) \odot [z_1 > 0] \;(N, 10)$$
#
# and the same for $W_1, b_1$ with $x$ in place of $a_1$. The bias gradient sums over the
# **batch** only: one number per unit. The tutorial writes `db2 = 1/m * np.sum(dZ2)`, which
# also sums over the **units**: one number for all ten biases.

# %%
def backward(x, y, z1, a1, p, W2, scalar_bias=False):
    N = len(y)
    d2 = p.copy(); d2[np.arange(N), y] -= 1; d2 /= N       # (N, 10)
    dW2, db2 = a1.T @ d2, d2.sum(axis=0)                  # (10, 10), (10,)
    d1 = (d2 @ W2.T) * (z1 > 0)                           # (N, 10)
    dW1, db1 = x.T @ d1, d1.sum(axis=0)                   # (784, 10), (10,)
    if scalar_bias:                                       # the tutorial: np.sum over every axis
        db1, db2 = np.full(10, d1.sum()), np.full(10, d2.sum())
    return dW1, db1, dW2, db2

def train(iterations, lr=0.1, scalar_bias=False):
    params = [a.copy() for a in (W1, b1, W2, b2)]
    for _ in range(iterations):
        z1, a1, p = forward(x_train, *params)
        grads = backward(x_train, y_train, z1, a1, p, params[2], scalar_bias)
        for param, grad in zip(params, grads):
            param -= lr * grad
    return params

iterations = 50 if QUICK else 500
for scalar in (False, True):
    params = train(iterations, scalar_bias=scalar)
    accuracy = np.mean(forward(x_dev, *params)[2].argmax(axis=1) == y_dev)
    print(f"{'scalar' if scalar else 'per-unit'} bias gradient: dev accuracy {accuracy:.3f} after {iterations} iterations")

# %% [markdown]
# Both train: the weights carry most of the learning. The scalar version still computes a
# *wrong* gradient, and a check shows it at once.
#
# ## The bias gradient on real numbers
#
# A **finite difference** needs no calculus: nudge one bias by $\pm h$ and measure the loss,
#
# $$\frac{\partial L}{\partial b_k} \approx \frac{L(b_k + h) - L(b_k - h)}{2h},$$
#
# in float64, with an error of order $h^2$. Here is every bias of the output layer on 200 real
# digits, next to the two analytic answers.

# %%
from scratchnn.gradcheck import numerical_gradient, relative_error

x, y = x_train[:200].astype(np.float64), y_train[:200]      # x (200, 784), float64 for the check
w1, c1, w2, c2 = (a.astype(np.float64) for a in (W1, b1, W2, b2))
z1, a1, p = forward(x, w1, c1, w2, c2)
_, _, _, db2 = backward(x, y, z1, a1, p, w2)
_, _, _, db2_scalar = backward(x, y, z1, a1, p, w2, scalar_bias=True)
numeric = numerical_gradient(lambda: loss(forward(x, w1, c1, w2, c2)[2], y), c2)   # nudges c2 in place

np.set_printoptions(precision=5, suppress=True)
print("finite differences ", numeric)
print("per-unit  (sum n)  ", db2)
print("tutorial  (sum all)", db2_scalar)
print(f"relative error: per-unit {relative_error(db2, numeric):.1e}, tutorial {relative_error(db2_scalar, numeric):.1e}")

# %% [markdown]
# The per-unit gradient agrees with finite differences to about $10^{-10}$; the tutorial's is
# off by order one. Its single number is the *sum* of the ten true ones, and since the ten
# $\delta_2$ of an image sum to zero ($\sum_k p_k - 1 = 0$), for the output layer it is always
# (numerically) zero: the output biases never learn.
#
# ## The same network with scratchnn
#
# `Sequential` holds the layers; `Dense` is $xW + b$ with its backward beside it. A model
# shows itself as a table of layers, output shapes and parameter counts.

# %%
from scratchnn import Dense, ReLU, Sequential
from scratchnn.optim import SGD
from scratchnn.training.fit import fit

model = Sequential([Dense(784, 10, init="seed_uniform", bias_init="seed_uniform", rng=1), ReLU(),
                    Dense(10, 10, init="seed_uniform", bias_init="seed_uniform", rng=2)])
model

# %% [markdown]
# `fit` runs the loop (full batch: `batch_size=None`) and returns a `History`, one row per
# evaluation, which can draw itself (against iterations: on the full batch an epoch is one step).

# %%
history = fit(model, SGD(lr=0.1), x_train, y_train, epochs=iterations, batch_size=None,
              x_dev=x_dev, y_dev=y_dev, eval_every=iterations // 10)
print(f"dev accuracy {history[-1].dev_accuracy:.3f}")
history.plot()

# %% [markdown]
# And every backward pass of the model, checked end to end against finite differences (in
# float64, on a few digits):

# %%
from scratchnn.gradcheck import check_model
from scratchnn.nn import SoftmaxCrossEntropy

for check in check_model(model, SoftmaxCrossEntropy(), x_train[:5], y_train[:5]):
    print(f"{check.wrt:5} relative error {check.error:.1e}  {'ok' if check.ok else 'WRONG'}")

# %% [markdown]
# ## The command line does the same
#
# `scratchnn train --preset seed --images IMAGES --labels LABELS` (the two files this notebook
# reads; without them it downloads MNIST's 60,000 training digits) trains exactly this recipe
# and saves a run folder (model, metrics, health signals for the doctor). In Python it is
# `train_run`; a run shows its metrics, the doctor's findings and its model. Its folder is under
# `runs/` beside this notebook, where `scratchnn evaluate`, `report` and `serve` find it.
#
# Its dev accuracy differs from the two above by one to two points or so: each drew its own random weights
# (the loop by hand from `default_rng(0)`, the `Sequential` from `rng=1` and `2`, the preset
# from its seed 0). The same recipe, other starting points.

# %%
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run

config = get_preset("seed")
for name, value in DATA.items():
    setattr(config, name, value)
config.epochs = iterations
run = train_run(config, log=lambda line: None)  # a new folder runs/<date>-<time>-seed
run

# %% [markdown]
# ## Try it
#
# The tutorial's own "future work" is the place to start. Each line below is one command (add
# `--images IMAGES --labels LABELS`, the files above); the figures are what they gave on these
# 9,000/1,000 digits, so you can check your result against them.
#
# 1. **Tune the learning rate**: `scratchnn train --preset seed --lr 0.01`, then `0.5`, `1` and `2`.
#    At 0.01 the network crawls (dev 0.44 after 500 iterations). At 0.5 it reaches 0.888 and at 1
#    0.904, both above 0.1's 0.847: 500 steps are few, and larger ones cover more ground while the
#    loss still falls. At 1 the loss goes up at some evaluations and the doctor says
#    `[lr-too-high]`; at 2 most ReLUs die in the first steps and it stays at 11%. Why is there a
#    best rate, and why is it not the largest one that still learns?
# 2. **More hidden units**: `--hidden 64` (dev 0.901). Count the parameters it adds
#    (`784·64 + 64 + 64·10 + 10`) and compare with the seed's 7,960.
# 3. **More iterations**: `--epochs 2000` (dev 0.892 at lr 0.1). Does 0.5 for 500 get there
#    sooner? What does `scratchnn report` show about the train and dev curves?
# 4. **By hand**: in the loop above, replace the per-unit bias gradient with the tutorial's single
#    number (`db1 = np.full(10, d1.sum())`: `d1` already holds the 1/N) and run it again, as
#    `scalar_bias=True` does. The accuracy hardly changes (0.825 and 0.824 above): which is why a
#    gradient check, not the accuracy, is how such a bug is found.
