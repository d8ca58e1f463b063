# %% [markdown]
# # 5. Your own handwriting
#
# MNIST digits are not photos: each is white ink on black, scaled so its longer side is 20
# pixels, and placed in a 28×28 field with its **centre of mass** at the centre. A phone photo
# of a digit on paper is none of that. This notebook turns a photo into an MNIST-style input
# step by step, then asks a trained network what it sees, and where it is unsure.
#
# Set `PHOTO` to the path of your own photo (a dark digit on light paper, or chalk on a board);
# without one, the notebook makes a "photo" from a dev digit: dark ink on uneven, noisy paper.

# %% setup

# %%
PHOTO = None  # e.g. "my-digit.jpg"

import matplotlib.pyplot as plt
from PIL import Image, ImageFilter
from scratchnn.photos.preprocess import preprocess_steps, read_image, to_mnist

def fake_photo(digit, side=300, seed=0):
    """A 28x28 digit in 0..1 -> grey photo (side, side): dark ink on lit, noisy paper."""
    rng = np.random.default_rng(seed)
    ink = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((side // 2, side // 2), Image.BICUBIC)
                     .filter(ImageFilter.GaussianBlur(2)), np.float32) / 255
    page = np.zeros((side, side), np.float32)
    page[side // 5: side // 5 + side // 2, side // 3: side // 3 + side // 2] = ink
    light = np.linspace(0.95, 0.6, side)[None, :] * np.linspace(1.0, 0.85, side)[:, None]   # (side, side)
    return np.clip(light * (1 - 0.8 * page) + rng.normal(0, 0.03, page.shape), 0, 1)

photo = read_image(PHOTO) if PHOTO else fake_photo(x_dev[3].reshape(28, 28))
print("photo", photo.shape, photo.dtype, f"values {photo.min():.2f}..{photo.max():.2f}")

# %% [markdown]
# ## From photo to 28×28
#
# 1. **Flatten the lighting**: subtract a blurred copy (a box mean over a window larger than the
#    pen's width), so shadows and gradients vanish and only strokes stand out.
# 2. **Threshold** with Otsu's method: the level $t$ that best separates two groups of pixels,
#    maximising the between-class variance $w_0(t)\,w_1(t)\,(\mu_0(t) - \mu_1(t))^2$.
# 3. **Keep the ink**: connected components large enough not to be specks.
# 4. **Crop** to the ink (keeping its grey edges), **fit in 20×20**, and place it in a 28×28 field
#    with its centre of mass at (14, 14), as MNIST did.

# %%
from scratchnn.plots.preprocessing import preprocessing_figure

steps = preprocess_steps(photo)                         # [(name, image (h, w) in 0..1), ...]
for name, image in steps:
    print(f"{name:36} {image.shape}")
preprocessing_figure(steps)

# %% [markdown]
# ## What the network sees
#
# A network trained on MNIST (the `mlp` recipe: 784-512-256-10 with batch normalisation and
# dropout, its whole schedule compressed into 15 epochs instead of 40; 2 with
# `SCRATCHNN_NOTEBOOK_QUICK=1`) gives its probabilities for the photo's 28×28 input $x$ (1, 784):
# $p = \mathrm{softmax}(f(x))$.

# %%
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run

config = get_preset("mlp")
for name, value in DATA.items():
    setattr(config, name, value)
config.epochs = 2 if QUICK else 15
model = train_run(config, log=lambda line: None).model  # saved in runs/<date>-<time>-mlp

x = to_mnist(photo).reshape(1, 784)                    # (1, 784) in 0..1
p = model.predict_proba(x)[0]                           # (10,)
fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [1, 2]})
left.imshow(x.reshape(28, 28), cmap="gray"); left.axis("off"); left.set_title("the model's input")
right.bar(range(10), p, color=["tab:orange" if k == p.argmax() else "tab:blue" for k in range(10)])
right.set_xticks(range(10)); right.set_ylim(0, 1); right.set_title(f"p: it reads {p.argmax()} ({p.max():.0%})")
plt.show()

# %% [markdown]
# ## Where the model is unsure
#
# The largest probability is the model's confidence, but the **entropy**
# $H(p) = -\sum_k p_k \log p_k$ (0 when certain, $\ln 10 \approx 2.3$ when it has no idea) shows
# how spread its belief is. Here are the dev digits it is least sure about, with its two best
# guesses:

# %%
probs = model.predict_proba(x_dev)                      # (1000, 10)
entropy = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(axis=1)   # (1000,)
unsure = np.argsort(entropy)[::-1][:12]
fig, axes = plt.subplots(2, 6, figsize=(10, 4))
for ax, i in zip(axes.ravel(), unsure):
    first, second = np.argsort(probs[i])[::-1][:2]
    ax.imshow(x_dev[i].reshape(28, 28), cmap="gray"); ax.axis("off")
    ax.set_title(f"{first} {probs[i, first]:.0%} / {second} {probs[i, second]:.0%}\ntrue {y_dev[i]}", fontsize=9,
                 color="tab:green" if first == y_dev[i] else "tab:red")
plt.show()

# %% [markdown]
# Is its confidence honest? Group the dev digits by confidence: when a well-calibrated model
# says 90%, it is right 90% of the time.

# %%
confidence, right = probs.max(axis=1), probs.argmax(axis=1) == y_dev
bins = np.array([0, 0.5, 0.7, 0.9, 0.99, 1.0])
which = np.clip(np.digitize(confidence, bins) - 1, 0, len(bins) - 2)
for k in range(len(bins) - 1):
    chosen = which == k
    if chosen.any():
        print(f"confidence {bins[k]:.2f}-{bins[k + 1]:.2f}: {chosen.sum():4} digits, "
              f"accuracy {right[chosen].mean():.3f}, mean confidence {confidence[chosen].mean():.3f}")

# %% [markdown]
# Compare each band's accuracy with its mean confidence. Where the network is sure (above 0.99,
# most of the digits) it is right about as often as it says, and from 0.5 to 0.7 too. Between
# 0.7 and 0.9 it says more than it delivers: those digits it gets right only about 60% of the time. A
# network trained to minimise cross-entropy is often overconfident on the digits it hesitates
# over, so read a middle probability as "unsure", not as a promise.
