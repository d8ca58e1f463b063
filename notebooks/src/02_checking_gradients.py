# %% [markdown]
# # 2. Checking gradients
#
# Backpropagation is easy to get *almost* right: a missing transpose, a sum over the wrong
# axis, a forgotten $1/N$, and the network often still learns, just worse. A gradient check
# catches every one of these, with no calculus at all. This notebook shows how it works, why it
# runs in float64, and a wrong backward pass being caught.

# %% setup

# %% [markdown]
# ## Finite differences
#
# For a scalar function $f$ of an array $a$, the **central difference**
#
# $$\frac{\partial f}{\partial a_i} \approx \frac{f(a + h e_i) - f(a - h e_i)}{2h}$$
#
# has an error of order $h^2$ (the one-sided $\frac{f(a + h e_i) - f(a)}{h}$ only $h$). We compare
# the analytic gradient $g$ with the numeric one $\hat g$ by their **relative error**
#
# $$\text{rel}(g, \hat g) = \frac{\lVert g - \hat g \rVert}{\lVert g \rVert + \lVert \hat g \rVert},$$
#
# which does not care how large the gradient is: below $10^{-7}$ in float64 means the same
# numbers; $10^{-2}$ or more means a bug. In between, look closer: a kink (ReLU at 0, a tie in
# max-pooling) that $h$ stepped over, or a small term that is missing. `scratchnn gradcheck`
# passes a layer below $10^{-7}$, with inputs drawn away from kinks. A pass is strong evidence
# at the points tried, not a proof: a check on five digits cannot see a bug that only shows on a
# sixth.
#
# ## Why float64
#
# Smaller $h$ means less truncation error ($\propto h^2$) but more rounding error
# ($\propto \varepsilon / h$, with $\varepsilon$ the machine precision). Here is the error of the
# derivative of $\tanh$ at a point, for every $h$, in both precisions:

# %%
import matplotlib.pyplot as plt
from scratchnn.gradcheck import numerical_gradient, relative_error

hs = np.logspace(-12, -1, 45)
fig, ax = plt.subplots(figsize=(6, 3.5))
for dtype in (np.float32, np.float64):
    a = np.array([0.5], dtype)                       # a (1,)
    exact = 1 - np.tanh(0.5) ** 2
    errors = [abs(numerical_gradient(lambda: float(np.tanh(a).sum()), a, dtype(h))[0] - exact) / exact for h in hs]
    ax.loglog(hs, np.maximum(errors, 1e-17), label=f"{np.dtype(dtype).name} (eps {np.finfo(dtype).eps:.0e})")
ax.set_xlabel("step h"); ax.set_ylabel("relative error"); ax.legend(); ax.set_title("d tanh(x)/dx at x = 0.5")
plt.show()

# %% [markdown]
# In float32 the error gets no lower than a few $10^{-6}$ for any $h$, and at the usual
# $h = 10^{-5}$ it is a few $10^{-3}$: too coarse to tell a subtle bug from rounding. In float64,
# $h = 10^{-5}$ gives about $10^{-11}$. So every check casts the layer and its input to float64
# first (scratchnn's layers follow the dtype of their parameters).
#
# ## Checking a layer
#
# A layer $y = f(x)$ does not have a scalar output. Its backward pass computes the
# **vector-Jacobian product** $dx = (\partial y / \partial x)^\top dy$ for an upstream $dy$, which is
# exactly the gradient of the scalar $s(x) = \sum y \odot dy$. So: draw a random $dy$, and compare
# `backward(dy)` with finite differences of $s$, for the input and every parameter.

# %%
from scratchnn.gradcheck import check_layer
from scratchnn.nn import Conv2D, Dense, MaxPool2D, Sigmoid

rng = np.random.default_rng(0)
cases = [(Dense(6, 4, rng=0), rng.standard_normal((3, 6))),                     # x (N=3, D=6)
         (Sigmoid(), rng.standard_normal((3, 5))),
         (Conv2D(2, 3, 3, padding=1, rng=1), rng.standard_normal((2, 2, 5, 5))),  # x (N, C, H, W)
         (MaxPool2D(2), rng.permutation(2 * 2 * 4 * 4).reshape(2, 2, 4, 4) / 7.0)]  # distinct values
for layer, x in cases:
    for check in check_layer(layer, x, rng):
        print(f"{check.what:38} d{check.wrt:2} relative error {check.error:.1e}  {'ok' if check.ok else 'WRONG'}")

# %% [markdown]
# `scratchnn gradcheck` runs this for every layer type (in inference mode too where that computes
# otherwise), the loss, and two small models end to end, one in training mode with batch norm and
# dropout.
#
# ## A wrong backward, caught
#
# Below, a dense layer with two classic bugs, each switched on in turn: the tutorial's scalar
# bias gradient (a sum over the units as well as the batch), and a weight gradient that forgets
# that dy already carries the *mean*'s 1/N, and divides by the batch size N again.

# %%
class BuggyDense(Dense):
    """Dense with a bug on purpose: "scalar-bias" or "extra-mean"."""
    def __init__(self, *args, bug, **kwargs):
        super().__init__(*args, **kwargs)
        self.bug = bug

    def backward(self, dy, need_dx=True):
        dx = super().backward(dy, need_dx)
        if self.bug == "scalar-bias":
            self.grads["b"][...] = dy.sum()             # should be dy.sum(axis=0): (M,)
        else:
            self.grads["W"] /= len(dy)                  # dL/dW = xᵀ·dy already holds the 1/N of the mean
        return dx

x = rng.standard_normal((8, 6))                         # x (8, 6)
for bug in ("scalar-bias", "extra-mean"):
    for check in check_layer(BuggyDense(6, 4, bug=bug, rng=0), x, rng):
        print(f"{bug:12} d{check.wrt:2} relative error {check.error:.1e}  {'ok' if check.ok else 'WRONG'}")

# %% [markdown]
# Each bug shows up on exactly the parameter it touches, and nowhere else. Does it matter in
# training? Train the same small network with and without the extra $1/N$ in its first layer:
# that layer's weight gradient is 128 times too small (the batch size), so it learns as if its
# learning rate were 128 times smaller, and the network ends up worse.

# %%
from scratchnn import ReLU, Sequential
from scratchnn.optim import SGD
from scratchnn.training.fit import fit

epochs = 1 if QUICK else 5
for bug in (None, "extra-mean"):
    first = Dense(784, 64, rng=1) if bug is None else BuggyDense(784, 64, bug=bug, rng=1)
    model = Sequential([first, ReLU(), Dense(64, 10, rng=2)])
    history = fit(model, SGD(lr=0.05, momentum=0.9), x_train, y_train, epochs=epochs, batch_size=128,
                  x_dev=x_dev, y_dev=y_dev, rng=np.random.default_rng(0), fast=False)
    print(f"{bug or 'correct':10}: dev accuracy {history[-1].dev_accuracy:.3f} after {epochs} epochs")

# %% [markdown]
# ## Try it
#
# 1. **A bug with an exact answer**: add a third bug to `BuggyDense`, `self.grads["W"] *= 2` (a
#    gradient twice too large), and check it. Before you run it, work out the relative error of
#    $2g$ against $g$: $\frac{\lVert 2g - g \rVert}{\lVert 2g \rVert + \lVert g \rVert} = \frac{1}{3}$.
#    The check prints 0.333 for `dW` and passes `dx` and `db`.
# 2. **Does training notice?** Train the network above with `bug="scalar-bias"` and with your
#    `*= 2` bug. On these digits (5 epochs) the correct layer reached 0.920, the scalar bias 0.923
#    and the doubled gradient 0.935: the doubled one is a first layer learning at twice the rate,
#    which happens to help here. Accuracy cannot tell a right gradient from a wrong one; the check can.
# 3. **The step h**: call `check_layer(..., h=...)` on a `Tanh()` layer with h from 1e-1 to 1e-9 in
#    float64 and find where the error is smallest. Compare with the figure above: why does
#    the best h for float32 lie so much higher?
