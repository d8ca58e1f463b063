# %% [markdown]
# # 4. Convolutions: one matrix product that slides over the image
#
# A dense layer looks at all 784 pixels at once, so a digit moved by two pixels is a new problem
# for it. A **convolution** slides one small kernel over the image and asks the same question
# everywhere: *is there an edge like this here?* This notebook takes it apart:
#
# 1. **im2col**: every 3×3 window of the image as one row of a matrix (a picture);
# 2. the whole convolution as **one matrix product** with that matrix;
# 3. **pooling**, which keeps the strongest answer of each 2×2 block;
# 4. a trained network: what its **first-layer kernels** learned, and its ~99% on the dev digits.
#
# Shapes are batch-first: images `x (N, C, H, W)`, kernels `W (F, C, KH, KW)`.

# %% setup

# %% [markdown]
# ## One digit, one window at a time
#
# For a kernel of size $K_H \times K_W$, stride $S$ and padding $P$, the output has
#
# $$O_H = \left\lfloor \frac{H + 2P - K_H}{S} \right\rfloor + 1, \qquad
#   O_W = \left\lfloor \frac{W + 2P - K_W}{S} \right\rfloor + 1$$
#
# positions: $28 - 3 + 1 = 26$ per side for a 3×3 kernel without padding. **im2col** copies the
# window under each of those $26 \cdot 26 = 676$ positions into a row of 9 numbers.

# %%
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from scratchnn.nn import Conv2D, MaxPool2D, conv_output_shape, im2col
from scratchnn.nn.im2col import kernel_matrix

digit = x_dev[:1].reshape(1, 1, 28, 28)          # x (N=1, C=1, H=28, W=28)
cols = im2col(digit, kernel_size=3)              # (OH·OW·N, KH·KW·C)
print("digit", digit.shape, "-> cols", cols.shape, "; output side", conv_output_shape(28, 28, 3))

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.4]})
left.imshow(digit[0, 0], cmap="gray")
ink = cols.reshape(26, 26, 9).sum(axis=2)        # the ink in the window at each (row, column)
picked = []                                      # three windows on the stroke, one per third of the band
for top, bottom in ((5, 10), (10, 16), (16, 22)):
    r, c = np.unravel_index(np.argmax(ink[top:bottom]), ink[top:bottom].shape)
    picked.append((top + int(r), int(c)))
colours = ["tab:red", "tab:green", "tab:blue"]
for (r, c), colour in zip(picked, colours):
    left.add_patch(Rectangle((c - 0.5, r - 0.5), 3, 3, fill=False, color=colour, lw=2))
left.set_title("three 3x3 windows on the digit")
rows = slice(5 * 26, 22 * 26)                    # a band of rows of the im2col matrix
right.imshow(cols[rows], cmap="gray", aspect="auto", extent=(-0.5, 8.5, 22 * 26 - 0.5, 5 * 26 - 0.5))
for (r, c), colour in zip(picked, colours):
    right.axhline(r * 26 + c, color=colour, lw=2)
right.set_title("im2col: one window per row (rows 130-572 of 676)")
right.set_xlabel("the 9 pixels of the window")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The convolution is one matrix product
#
# Reshape the $F$ kernels into a matrix $\mathbf{W}_{\text{mat}}$ of shape $(K_H K_W C, F)$.
# Then every output value at every position is a row of cols times a column of
# $\mathbf{W}_{\text{mat}}$:
#
# $$Y = \text{cols} \cdot \mathbf{W}_{\text{mat}} + b, \qquad (676, 9) \cdot (9, F) = (676, F)$$
#
# and a reshape turns the $676$ rows back into $26 \times 26$ maps. Below, two hand-made edge
# kernels, and the check that this product is exactly what `Conv2D.forward` computes.

# %%
edges = np.array([[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]],      # vertical edges (Sobel)
                  [[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]]], np.float32)   # W (F=2, C=1, 3, 3)
conv = Conv2D(1, 2, 3)
conv.params["W"][...] = edges
conv.params["b"][...] = 0
by_hand = (cols @ kernel_matrix(edges)).reshape(26, 26, 1, 2).transpose(2, 3, 0, 1)   # (N, F, OH, OW)
by_layer = conv.forward(digit)
print("by hand", by_hand.shape, " Conv2D", by_layer.shape, " largest difference",
      float(np.abs(by_hand - by_layer).max()))

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, image, title in zip(axes, [digit[0, 0], by_layer[0, 0], by_layer[0, 1]],
                            ["digit (28x28)", "vertical edges (26x26)", "horizontal edges (26x26)"]):
    ax.imshow(image, cmap="gray" if ax is axes[0] else "RdBu_r")
    ax.set_title(title)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Pooling: keep the strongest answer nearby
#
# 2×2 max pooling with stride 2 keeps the largest of each block of four:
# $y_{f,i,j} = \max_{a,b \in \{0,1\}} x_{f,2i+a,2j+b}$, so $26 \times 26 \to 13 \times 13$. The
# map gets coarser and a shift of one pixel barely changes it. Its backward pass sends the
# gradient only to the pixel that won each block.

# %%
pooled = MaxPool2D(2).forward(np.maximum(by_layer, 0))        # ReLU, then pool: (1, 2, 13, 13)
print("feature maps", by_layer.shape, "-> pooled", pooled.shape)
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, f in zip(axes, range(2)):
    ax.imshow(pooled[0, f], cmap="magma")
    ax.set_title(f"pooled map {f} (13x13)")
    ax.axis("off")
plt.show()

# %% [markdown]
# ## A trained network
#
# The `cnn` recipe stacks two blocks of (3×3 convolution, ReLU, 2×2 max pooling), with 32 then
# 64 kernels, a dense layer of 128 and the 10 outputs; it trains with AdamW on randomly shifted,
# rotated and distorted digits. Thirty epochs reach about 99% of the dev digits (a few minutes
# on a laptop CPU); with `SCRATCHNN_NOTEBOOK_QUICK=1` a small version trains for one epoch
# (and is far from 99%).

# %%
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run

config = get_preset("cnn")
for name, value in DATA.items():
    setattr(config, name, value)
if QUICK:  # small settings: 4 and 8 kernels, one epoch, no augmentation
    config.conv, config.hidden, config.epochs, config.warmup, config.augment = [4, 8], [32], 1, 0, False
run = train_run(config, log=lambda line: None)  # saved in runs/<date>-<time>-cnn
run

# %%
run.history.plot()

# %% [markdown]
# ## What the first layer learned
#
# Each first-layer kernel is a 3×3 picture of what that unit looks for. Red weights excite it,
# blue ones inhibit it. Some read as edge detectors, light on one side and dark on the other
# like the hand-made Sobel kernels above, found from the data alone; many are harder to name:
# nine weights are little room, and the layers after them do the rest.

# %%
from scratchnn.plots.weights import first_layer_figure

first_layer_figure(run.model, max_units=32)

# %% [markdown]
# ## Where it still goes wrong
#
# The dev digits it gets wrong, most confident mistakes first. Many are digits a person would
# hesitate over too.

# %%
from scratchnn.plots.gallery import mistakes_gallery

x_dev_images = x_dev.reshape(-1, 1, 28, 28)                  # the CNN reads (N, 1, 28, 28)
probs = run.model.predict_proba(x_dev_images)                # (1000, 10)
print(f"dev accuracy {np.mean(probs.argmax(1) == y_dev):.4f} on {len(y_dev)} digits")
mistakes_gallery(x_dev.reshape(-1, 28, 28), y_dev, probs, data.classes, n=16)

# %% [markdown]
# ## Try it
#
# 1. **Output sizes by hand.** A 3×3 kernel with stride 2 and padding 1 on a 28×28 digit gives
#    $\lfloor (28 + 2 - 3)/2 \rfloor + 1 = 14$ a side; a 5×5 kernel with padding 2 keeps 28. Check
#    both with `Conv2D(1, 4, 3, stride=2, padding=1).forward(np.zeros((1, 1, 28, 28), np.float32)).shape`.
# 2. **Count the parameters** of the network above by hand, layer by layer (a kernel has
#    $C \cdot K_H \cdot K_W$ weights and one bias): 320 + 18,496 + 204,928 + 1,290 = 225,034, as
#    `run.model.summary()` says. One layer holds 91% of them: which, and why is it so large?
# 3. **What augmentation buys.** `scratchnn train --preset cnn --no-augment` (30 epochs, the
#    same digits) reached dev 0.985 with train accuracy 1.0000, and the doctor said
#    `[overfitting]` from epoch 16; the recipe with augmentation reaches 0.990. After 5 epochs the
#    two were about level (0.978 and 0.981): augmentation pays once a network could learn its training
#    digits by heart. Compare the two runs' curves with `scratchnn report`.
