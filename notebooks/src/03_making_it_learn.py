# %% [markdown]
# # 3. Making it learn well
#
# The seed network reaches about 85%. Deeper networks can do much better, but only if they are
# started, shaped and driven well. This notebook goes through the choices that matter most
# (initialisation, activations, mini-batches, optimizers, schedules) with a small experiment
# each; then it breaks training on purpose in classic ways, and lets the **training doctor**
# name what went wrong from the numbers alone.

# %% setup

# %% [markdown]
# ## Initialisation
#
# A layer $z = xW$ with $D$ inputs of mean square $\mathbb{E}[x^2] = 1$ and zero-mean weights of
# variance $\sigma^2$ gives outputs of variance $D \sigma^2$. A ReLU keeps half of that mean square
# ($\mathbb{E}[\mathrm{relu}(z)^2] = \tfrac12 \mathrm{Var}\, z$; its variance is smaller still, as
# its outputs are never negative), so **He** initialisation (He et al. 2015) draws
# $W \sim \mathcal{N}(0, 2/D)$ to keep the signal's size constant layer after layer. Too
# small and it fades to nothing; too large and it explodes. Here are the activations of a
# six-layer ReLU network at its start, for three scales:

# %%
import matplotlib.pyplot as plt
from scratchnn import Dense, ReLU, Sequential

def deep_net(init, rng=0):
    layers = [Dense(784, 256, init=init, rng=rng), ReLU()]
    for k in range(5):
        layers += [Dense(256, 256, init=init, rng=rng + k + 1), ReLU()]
    return Sequential(layers + [Dense(256, 10, init=init, rng=99)])

fig, ax = plt.subplots(figsize=(6, 3.5))
for init in ("seed_uniform", "glorot_uniform", "he_normal"):
    stds = [float(out.std()) for _, layer, out in deep_net(init).forward_steps(x_dev[:256])
            if isinstance(layer, ReLU)]                # each ReLU's output (256, 256)
    ax.semilogy(range(1, 7), stds, marker="o", label=init)
ax.set_xlabel("ReLU layer"); ax.set_ylabel("std of activations"); ax.legend()
ax.set_title("The signal through six ReLU layers, at initialisation")
plt.show()

# %% [markdown]
# U[−0.5, 0.5) (the seed's) multiplies the signal by about 3 per layer; Glorot (made for tanh,
# which keeps both halves of the signal) shrinks it by about a quarter per layer; He keeps it level.
#
# ## Mini-batches and optimizers
#
# Full-batch gradient descent takes one careful step per pass over the data. **Mini-batches**
# of $B$ images take $N/B$ noisy steps instead. **Momentum** keeps a running sum of the steps,
# $v \leftarrow \mu v + g,\; \theta \leftarrow \theta - \eta v$: where the gradient keeps its direction
# $v$ grows to $g/(1-\mu)$, ten times $g$ at $\mu = 0.9$, so at the same $\eta$ momentum also
# takes steps up to ten times longer (compare it with plain SGD at $10\eta$ too); **Adam** also divides each
# parameter's step by a running RMS of its gradients:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g, \quad s \leftarrow \beta_2 s + (1-\beta_2) g^2, \quad
#   \theta \leftarrow \theta - \eta \frac{\hat m}{\sqrt{\hat s} + \epsilon}$$
#
# ($\hat m, \hat s$ corrected for their start at 0). The same 784-128-10 network, the same number of epochs:

# %%
from scratchnn.optim import SGD, Adam
from scratchnn.training.fit import fit

epochs = 2 if QUICK else 8
recipes = {"full batch, SGD 0.5": (SGD(lr=0.5), None),
           "batch 64, SGD 0.05": (SGD(lr=0.05), 64),
           "batch 64, momentum 0.9": (SGD(lr=0.05, momentum=0.9), 64),
           "batch 64, Adam 1e-3": (Adam(lr=1e-3), 64)}
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, (optimizer, batch_size) in recipes.items():
    model = Sequential([Dense(784, 128, rng=1), ReLU(), Dense(128, 10, rng=2)])
    history = fit(model, optimizer, x_train, y_train, epochs=epochs, batch_size=batch_size,
                  x_dev=x_dev, y_dev=y_dev, rng=np.random.default_rng(0))
    ax.plot(history.column("epoch"), history.column("dev_accuracy"), marker="o",
            label=f"{name}: {history[-1].dev_accuracy:.3f}")
ax.set_xlabel("epoch"); ax.set_ylabel("dev accuracy"); ax.legend(); ax.set_title("Same network, four ways to train it")
plt.show()

# %% [markdown]
# ## Learning-rate schedules
#
# A large rate moves fast early; a small one settles late. A schedule gives both: a short
# **warm-up** from small, then a **cosine** decay $\eta_t = \eta_{\min} + \frac{1}{2}(\eta_0 - \eta_{\min})(1 + \cos \frac{\pi t}{T})$
# over the $T$ steps after the warm-up (what `--schedule cosine --warmup 1` trains with), or
# **one-cycle**, up then down. A schedule is just a function of the step:

# %%
from scratchnn.optim import Cosine, OneCycle, StepDecay

steps = np.arange(1000)
schedules = {"step decay (x0.1 every 400)": StepDecay(1e-2, step_size=400, gamma=0.1),
             "warm-up 100 + cosine": Cosine(1e-2, total_steps=1000, warmup_steps=100),
             "one-cycle": OneCycle(1e-2, total_steps=1000)}
fig, ax = plt.subplots(figsize=(6, 3))
for name, schedule in schedules.items():
    ax.plot(steps, [schedule(int(t)) for t in steps], label=name)
ax.set_xlabel("step"); ax.set_ylabel("learning rate"); ax.legend()
plt.show()

# %% [markdown]
# ## Breaking it on purpose: the training doctor
#
# During every run scratchnn records per-layer **health signals** (gradient and weight RMS, the
# update-to-weight ratio, dead and saturated units) into `health.csv`. The doctor reads only
# that and `metrics.csv` (never the config) and names the first cause it recognises.
#
# `train_run` (like `scratchnn train --fault NAME`) can plant a classic mistake just before
# training starts. Each one below trains the network it shows on, for a short run, and the
# doctor is told nothing about it.

# %%
import tempfile
from scratchnn.doctor import diagnose_run
from scratchnn.doctor.faults import FAULTS
from scratchnn.errors import TrainingDiverged
from scratchnn.training.presets import get_preset
from scratchnn.training.run import train_run

full_batch = {"epochs": 10 if QUICK else 100}                      # full-batch iterations
mini_batch = {"batch_size": 128, "eval_every": 1, "epochs": 2 if QUICK else 5}
broken = {"zero-init": full_batch, "tiny-init": full_batch, "huge-init": full_batch,
          "unscaled-inputs": full_batch, "no-shuffle": mini_batch, "sigmoid-deep": {**mini_batch, "epochs": 1 if QUICK else 3}}

SCRATCH = tempfile.TemporaryDirectory(prefix="scratchnn-nb03-")  # these runs' folders, gone with the kernel
diagnoses = {}
for fault, changes in broken.items():
    config = get_preset("seed")
    for name, value in {**DATA, **changes, "fault": [fault]}.items():
        setattr(config, name, value)
    folder = Path(SCRATCH.name) / fault
    try:
        train_run(config, folder, log=lambda line: None, progress=False)
    except TrainingDiverged:
        pass                                           # the tables stay in the folder
    findings = [f for f in diagnose_run(folder) if f.severity in ("error", "warning")]
    diagnoses[fault] = findings[0] if findings else None
    print(f"--fault {fault:16} {FAULTS[fault].what}")
    print(f"   doctor: {findings[0].line() if findings else 'nothing found'}\n")

# %% [markdown]
# Each finding comes with an explanation and a fix (as flags to `scratchnn train` where a flag
# fixes it, else the change to make):

# %%
from IPython.display import HTML
from scratchnn.display import html_table

HTML(html_table(["fault planted", "the doctor's diagnosis", "why", "fix"],
                [[fault, f"[{f.id}] {f.message}", f.explanation, f.fix] for fault, f in diagnoses.items() if f],
                caption="Broken runs and what the doctor said"))

# %% [markdown]
# ### A mistake of your own, and following its fix
#
# Without `--fault` the doctor is told the run's settings (its config), so a fix names values
# instead of "lower it by 10x": how far to lower the learning rate comes from how far the first
# step moved the weights (‖ΔW‖/‖W‖ grows in proportion to the rate). Below, the seed network at
# a learning rate 100 times its own, then trained again as the fix says.

# %%
import re


def seed_run(**changes):
    config = get_preset("seed")
    for name, value in {**DATA, **full_batch, **changes}.items():
        setattr(config, name, value)
    return train_run(config, Path(tempfile.mkdtemp(dir=SCRATCH.name)) / "run", log=lambda line: None, progress=False)


too_fast = seed_run(lr=10.0)
first = next(iter(too_fast.findings), None)
if first is None:
    print("the doctor found nothing in this short run")
else:
    print(first.line())
    print("   fix:", first.fix.split(";")[0])  # the rest names the run's folder for lr-find
    told = re.search(r"from \S+ to ([0-9.e+-]+)", first.fix)
    if told:
        again = seed_run(lr=float(told[1]))
        print(f"\ndev accuracy {too_fast.metrics['dev_accuracy']:.3f} at lr 10, {again.metrics['dev_accuracy']:.3f} "
              f"at lr {told[1]}; findings then: {', '.join(f.id for f in again.findings) or 'none'}")

# %% [markdown]
# ## Try it
#
# Break the seed network the way learners do by accident, with `seed_run` above (100 full-batch
# iterations), and follow what the doctor says. What these gave on the same digits:
#
# 1. `seed_run(init="zeros")`: the first finding is `[symmetric-units]` at iteration 0, and every
#    later symptom says it "follows from [symmetric-units]". Its fix names `--init he_normal`:
#    `seed_run(init="he_normal")` reaches dev 0.84 where zeros stayed at 0.18.
# 2. `seed_run(lr=1e-5)`: `[lr-too-low]`, with the rate to raise it to (0.1, the seed's own);
#    dev 0.07 before, 0.63 after (100 iterations; 500 reach 0.85).
# 3. `seed_run(lr=0.5)`: no warning. Its steps change the last layer's weights by about 12%, a
#    hundred times the "healthy" 0.1%, yet its loss falls at every evaluation and it ends better
#    than at 0.1: the doctor warns about large steps only when the loss stops falling too. Read its
#    rule with `scratchnn doctor --rules` and find the sentence that says so.
