"""What Keras and PyTorch users write, and scratchnn's way to do the same: the texts of the
errors that point from one to the other (the habits audit: model.fit, model.parameters(),
layer.trainable = False... were bare AttributeErrors, or set and then ignored)."""

# Keras's layer.trainable = False was set as a plain attribute and trained on (the habits audit)
NO_FREEZING = ("scratchnn trains every parameter: it has no frozen layers (Keras's trainable = False, PyTorch's "
               "requires_grad_(False)); in a loop of your own, step only the others: opt.step([t for t in "
               "model.named_parameters() if not t[0].startswith('0.')]) keeps layer 0 as it is")

# Keras's and PyTorch's model methods, and scratchnn's way to do the same (Sequential.__getattr__)
OTHER_LIBRARIES = {
    "fit": "from scratchnn.training.fit import fit; fit(model, optimizer, x, y, epochs=..., batch_size=...)",
    "compile": "nothing to compile: give fit the optimizer, fit(model, Adam(1e-3), x, y, ...)",
    "evaluate": "from scratchnn.training.fit import evaluate; loss, accuracy = evaluate(model, x, y)",
    "save": "from scratchnn import io; io.save(model, 'model.safetensors')",
    "add": "give Sequential every layer at once: Sequential([Dense(784, 64), ReLU(), Dense(64, 10)])",
    "parameters": "model.named_parameters() gives (name, array, gradient) triples",
    "zero_grad": "nothing to zero: each backward writes the gradients afresh (they do not add up)",
    "train": "model.forward(x, training=True): the mode is an argument of each pass",
    "eval": "model.forward(x) (training=False, the default): the mode is an argument of each pass",
    "to": "scratchnn runs on NumPy arrays on the CPU; model.astype(np.float64) changes the precision",
    "cuda": "scratchnn runs on NumPy arrays on the CPU",
}
