# %% [markdown]
# # 6. Record accuracy: batch norm, test-time augmentation, ensembles
#
# The `cnn` recipe of notebook 4 gets about 99.0% of the dev digits. The best NumPy-from-scratch
# CNNs we know of publish 99.4%, and 99.55% with test-time augmentation, trained on MNIST's
# 60,000 digits. Nothing exotic gets there, only a handful of well-understood techniques, taken
# apart here one at a time:
#
# 1. **batch normalisation**, per channel, and what it does to a layer's outputs;
# 2. the record recipe **`cnn-best`**, and why each of its ingredients is there;
# 3. **test-time augmentation** (TTA): ask about a few moved copies of each digit, average the answers;
# 4. **ensembles**: several networks, their probabilities averaged;
# 5. what **1,000 dev digits** can and cannot tell apart.
#
# With full settings this trains three `cnn-best` networks, 4 to 8 minutes each on 2 cores; with
# `SCRATCHNN_NOTEBOOK_QUICK=1` tiny versions train in seconds (and are far from 99%).

# %% setup

# %% [markdown]
# ## Batch norm: every channel on the same scale
#
# For a batch of feature maps `x (N, C, H, W)`, batch norm takes the $N \cdot H \cdot W$ numbers of
# each channel $c$, makes them mean 0 and variance 1, then applies the scale $\gamma_c$ and shift
# $\beta_c$ the network learns:
#
# $$\mu_c = \frac{1}{NHW}\sum_{n,h,w} x_{nchw}, \qquad
# \sigma_c^2 = \frac{1}{NHW}\sum_{n,h,w} (x_{nchw} - \mu_c)^2, \qquad
# y_{nchw} = \gamma_c \frac{x_{nchw} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c$$
#
# While training, $\mu$ and $\sigma$ come from the batch, and running averages of them are kept;
# at evaluation the running averages are used, so a digit's answer depends on that digit alone.
# Every layer after it then gets inputs of a steady scale, whatever the layers before it do,
# which is why a learning rate of 3e-3 trains from the first epoch. Below: the first
# convolution of an untrained network on 64 digits, channel by channel, before and after.

# %%
from scratchnn.nn import BatchNorm2d, Conv2D

rng = np.random.default_rng(0)
images = x_dev[:64].reshape(64, 1, 28, 28)                  # x (N=64, C=1, H=28, W=28)
maps = Conv2D(1, 8, 3, padding=1, rng=rng).forward(images)  # (64, 8, 28, 28)
normalised = BatchNorm2d(8).forward(maps, training=True)
print("channel   mean before   std before   mean after   std after")
for c in range(8):
    after = round(float(normalised[:, c].mean()), 3) + 0.0  # 0 up to float rounding; + 0.0 turns -0.0 into 0.0
    print(f"{c:>7} {maps[:, c].mean():>13.3f} {maps[:, c].std():>12.3f} {after:>12.3f} {normalised[:, c].std():>11.3f}")

# %% [markdown]
# Its backward pass is the one layer in this project where the gradient is not obvious: every
# output depends on every input of its channel through $\mu$ and $\sigma$. The finite-difference
# check of notebook 2 settles it, in both modes (a layer with random $\gamma$, $\beta$ and running
# statistics, so a backward that forgot one of them would fail):

# %%
from scratchnn.gradcheck import check_layer
from scratchnn.nn.batchnorm import batchnorm_with_random_affine

layer = batchnorm_with_random_affine(3, rng, BatchNorm2d)
x_small = 1 + 2 * rng.standard_normal((4, 3, 5, 5))
for training in (True, False):
    for check in check_layer(layer, x_small, rng, training=training):
        print(f"{'training' if training else 'evaluation':>10}  d{check.wrt:<6} relative error {check.error:.1e}")

# %% [markdown]
# ## The record recipe
#
# `cnn-best` stacks two blocks of (3×3 convolution, batch norm, ReLU) × 2 and a 2×2 max pool,
# with 32 then 64 kernels, then a dense layer of 256 with batch norm and dropout 0.4. Each part is
# the standard answer to one problem:
#
# - **two 3×3 convolutions** per block see a 5×5 patch with a non-linearity between them (at
#   one width C, with fewer weights too: 18C² against a 5×5 kernel's 25C²; here each block's
#   first convolution widens the channels, so the gain is the depth); **same padding** keeps
#   strokes at the edge in view;
# - **batch norm** keeps every layer's inputs on a steady scale (above);
# - **max pooling** makes small shifts stop mattering, and quarters the next block's work;
# - **dropout** keeps the dense head from memorising 9,000 digits;
# - **AdamW** with one warm-up epoch, then a **cosine** decay of the learning rate: fast early
#   progress, and small final steps that settle;
# - **augmentation**: every epoch sees new shifts, turns, sizes, slants and elastic bends of
#   four digits in five; the fifth is left as it is, for a reason shown next.
#
# A digit moved by a fraction of a pixel is read back between pixels: bilinear interpolation
# mixes two neighbours with weights $1-t$ and $t$, so every moved digit comes out a little
# blurred. Trained on moved digits only, a network never sees a sharp one, and the dev digits
# are all sharp: nine `cnn-best` runs trained that way made 46 mistakes on their dev digits as
# they are and 33 on the same digits blurred on purpose. With a fifth of the training digits
# left sharp the same nine splits gave 33 mistakes on the digits as they are.

# %%
from scratchnn.data import affine
from scratchnn.plots.gallery import image_grid

digit = x_dev[:1].reshape(1, 28, 28)
half = affine(digit, shift=(0.5, 0.5))       # half a pixel down and right: the most mixing
for name, image in (("original", digit), ("moved half a pixel", half)):
    print(f"{name:18}  pixels of full ink (> 0.9): {np.sum(image > 0.9):3}   "
          f"edge energy (sum of squared differences of side-by-side pixels): {np.sum(np.diff(image) ** 2):.1f}")
image_grid(np.concatenate([digit, half]), ["original", "moved half a pixel"], ["tab:gray"] * 2,
           "Moving a digit between pixels blurs it")

# %% [markdown]
# Every member below holds out the same 1,000 dev digits (`split_seed = 0`), so they can be
# compared and averaged on them. Each is an ordinary run folder under `runs/` beside this
# notebook: `scratchnn evaluate RUN_A RUN_B RUN_C --tta 8` scores them as an ensemble.

# %%
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run


def record_run(seed: int):
    """cnn-best trained with ``seed`` (its weights, batches and augmentation) on the shared split."""
    config = get_preset("cnn-best")
    for name, value in DATA.items():
        setattr(config, name, value)
    config.seed, config.split_seed = seed, 0
    if QUICK:  # small settings: 4 and 8 kernels, one epoch, no augmentation
        config.conv, config.hidden, config.epochs, config.warmup, config.augment = [4, 8], [32], 1, 0, False
    return train_run(config, log=lambda line: None)  # saved in runs/<date>-<time>-cnn-best


run = record_run(0)
run

# %%
run.history.plot()

# %% [markdown]
# Its learning-rate panel samples the rate once, at the end of each epoch, so the warm-up (the
# whole first epoch, rising over its 71 mini-batches) does not show. The preset's schedule
# itself, step by step:

# %%
import matplotlib.pyplot as plt

recipe = get_preset("cnn-best")
steps_per_epoch = -(-9000 // recipe.batch_size)  # 71 mini-batches of 128 make an epoch
schedule = recipe.build_schedule(steps_per_epoch)
steps = np.arange(recipe.epochs * steps_per_epoch)
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(steps / steps_per_epoch, [schedule(int(t)) for t in steps])
ax.set_xlabel("epoch"); ax.set_ylabel("learning rate")
plt.show()

# %% [markdown]
# ## Test-time augmentation
#
# The network was trained on moved copies of digits, so a slightly moved copy of a dev digit is
# as fair a question as the digit itself. TTA asks both and averages the probabilities:
#
# $$p_{\text{TTA}}(x) = \frac{1}{N}\sum_{k=1}^{N} \operatorname{softmax}(f(T_k\,x))$$
#
# over the original ($T_1$, the identity) and $N-1$ fixed views $T_k$: one-pixel shifts, ±8°
# turns, then views drawn once from a fixed seed. The same $N$ always means the same views, so
# a score can be repeated. These are the 16 views of one dev digit:

# %%
from scratchnn.data.tta import tta_views

def describe(view) -> str:
    """What a view does, in words: the parts that are not the identity's."""
    (down, right), parts = view.shift, []
    if down or right:
        parts.append(f"{down:+.2g} px down, {right:+.2g} right")
    if view.rotate:
        parts.append(f"turned {view.rotate:+.2g}°")
    if view.scale != 1:
        parts.append(f"size x{view.scale:.3g}")
    return "\n".join(parts) or "original"


views = tta_views(16)
digit = x_dev[:1].reshape(1, 28, 28)
pictures = np.concatenate([view(digit) for view in views])
image_grid(pictures, [describe(v) for v in views], ["tab:gray"] * len(views),
           "The 16 views TTA averages over (x8: the first 8)")

# %%
x_dev_images = x_dev.reshape(-1, 1, 28, 28)                  # the CNN reads (N, 1, 28, 28)
scores = {f"TTA x{n}" if n > 1 else "plain": run.model.predict_proba(x_dev_images, tta=n) for n in (1, 8, 16)}
for name, probs in scores.items():
    wrong = int(np.sum(probs.argmax(1) != y_dev))
    print(f"{name:8} dev accuracy {1 - wrong / len(y_dev):.4f}  ({wrong} mistakes of {len(y_dev):,})")

# %% [markdown]
# TTA can only change the answer for a digit the network was unsure of, and with this recipe
# that is a few digits at most, often none. Any it changed are drawn below, green where the
# averaged answer is right, red where it is wrong. The network trained on
# moved digits, so the views are nothing new to it: TTA helps most a network that never saw
# such moves (an MLP trained without augmentation), and here it can go either way. Before one
# training digit in five was left sharp, TTA gained this recipe a few digits in every thousand,
# mostly because its views, read between pixels, are blurred like the training digits were.

# %%
plain, averaged = scores["plain"].argmax(1), scores["TTA x8"].argmax(1)
changed = np.flatnonzero(plain != averaged)
fixed, broken = (np.sum(averaged[changed] == y_dev[changed]), np.sum(plain[changed] == y_dev[changed]))
print(f"TTA x8 changed {len(changed)} answer{'s' * (len(changed) != 1)}: {fixed} from wrong to right, "
      f"{broken} from right to wrong, {len(changed) - fixed - broken} from one wrong answer to another")
shown = changed[:16]
if len(changed):
    display(image_grid(x_dev[shown].reshape(-1, 28, 28),
                       [f"plain {plain[i]} -> TTA {averaged[i]}\ntrue {y_dev[i]}" for i in shown],
                       ["tab:green" if averaged[i] == y_dev[i] else "tab:red" for i in shown],
                       "Dev digits whose answer TTA x8 changed"))

# %% [markdown]
# ## Ensembles
#
# Two more networks, trained the same way from other seeds, make different mistakes: their
# weights start elsewhere and they see the batches and the augmentation in another order. An
# ensemble averages their probabilities (`scratchnn evaluate RUN_A RUN_B RUN_C` on the command
# line, `scratchnn.ensemble.Ensemble` in Python):

# %%
from scratchnn.ensemble import Ensemble

members = [run] + [record_run(seed) for seed in (1, 2)]
ensemble = Ensemble([member.model for member in members])
for seed, member in enumerate(members):
    alone, with_tta = (np.mean(member.model.predict(x_dev_images, tta=n) == y_dev) for n in (1, 8))
    print(f"member seed {seed}  dev accuracy {alone:.4f}   with TTA x8 {with_tta:.4f}")
together, together_tta = (np.mean(ensemble.predict(x_dev_images, tta=n) == y_dev) for n in (1, 8))
print(f"ensemble of 3    dev accuracy {together:.4f}   with TTA x8 {together_tta:.4f}")
answers = np.stack([member.model.predict(x_dev_images) for member in members])
print(f"the members disagree on {np.sum((answers != answers[0]).any(axis=0))} of {len(y_dev):,} digits; "
      f"all three are wrong on {np.sum((answers != y_dev).all(axis=0))}")

# %% [markdown]
# Averaging can only fix a mistake that some members do not make. On this dev set several of the
# mistakes left are made by all three networks, so the ensemble lands near its average member.
# Where members differ more it pays: on Fashion-MNIST's 10,000 test images three `cnn-best`
# networks (94.0%, 94.1%, 94.3%) make an ensemble of 94.9%. The next section says how little
# 1,000 dev digits can show.

# %% [markdown]
# ## What 1,000 dev digits can tell
#
# On 1,000 digits one digit is 0.1 point, and the dev accuracy of a recipe that is right 99.4%
# of the time still moves by chance: its mistakes on 1,000 fresh digits follow a binomial
# distribution. Which 1,000 digits are held out matters as much. In the project's measurements
# the preset averaged 99.63% over nine different dev sets (99.59% with TTA x8), from 99.4% to
# 99.9%; `python benchmarks/dev_splits.py` repeats that. This notebook's dev set is the first of
# them, the hardest: the benchmark's run there, on one BLAS thread, made 6 mistakes (99.4%).
# These runs, on every core (two here), add their matrix products in another order, and the last bits
# of float32 rounding send training down another path: a digit or two either way is that, not
# the recipe.

# %%
p, n = 0.994, len(y_dev)
print(f"one digit = {100 / n:.1f} point; at {p:.1%} the standard error of a dev accuracy is "
      f"{np.sqrt(p * (1 - p) / n):.2%}, so 95% of such runs land within ±{1.96 * np.sqrt(p * (1 - p) / n):.2%}")

# %% [markdown]
# Below are the mistakes the ensemble still makes with TTA x8, most confident first; most of
# them are digits all three networks get wrong (counted above). On this dev set several are digits
# a person would hesitate over too: a "1" drawn like a 7, a "4" and a "9" that look like each
# other. A network trained on 9,000 digits has seen too few like them to be sure; MNIST's
# 60,000 training digits would help more than any change to the recipe.

# %%
from scratchnn.plots.gallery import mistakes_gallery

mistakes_gallery(x_dev.reshape(-1, 28, 28), y_dev, ensemble.predict_proba(x_dev_images, tta=8), data.classes, n=16)

# %% [markdown]
# ## On Kaggle
#
# The tutorial this project grew from is a Kaggle "Digit Recognizer" notebook. From its
# `train.csv` to a submission, on the command line:
#
# ```sh
# scratchnn train --preset cnn-best --csv train.csv --seeds 0,1,2 --out runs/kaggle   # three members, one folder
# scratchnn evaluate runs/kaggle --tta 8                                             # each member and the ensemble
# scratchnn predict runs/kaggle --csv test.csv --submission submission.csv --tta 8   # ImageId,Label
# ```
