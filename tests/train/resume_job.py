"""The run the resume test splits across processes: ``python -m tests.train.resume_job CKPT OUT``.

Builds the model, optimizer and callbacks of ``run`` afresh, resumes from the checkpoints in
``CKPT`` up to epoch 6 and writes the parameters and history to ``OUT`` (an ``.npz``).
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

import optlab as ol
from tests.train.models import Tiny, blobs, xent

EPOCHS = 6


def make_tx():
    """Clipping, then SGD with momentum on an exponentially decaying schedule."""
    return ol.chain(ol.clip_by_global_norm(1.0), ol.sgd(lambda n: 0.2 * 0.98**n, momentum=0.9))


def make_callbacks(checkpoint_dir=None):
    """Callbacks whose state must survive the restart."""
    cbs = [
        ol.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
        ol.callbacks.EarlyStopping(monitor="val_loss", patience=100, restore_best_weights=True),
    ]
    if checkpoint_dir is not None:
        cbs.append(ol.callbacks.ModelCheckpoint(checkpoint_dir, max_to_keep=2))
    return cbs


def run(epochs, checkpoint_dir=None, resume_from=None, tx=None):
    """Trains a dropout MLP on blobs; returns ``(history, flat parameters)``. ``tx`` (default:
    a new ``make_tx()``) lets runs in one process share a compiled epoch."""
    model = Tiny(dropout=0.3, batchnorm=True, seed=1)
    history, model = ol.fit(
        model,
        make_tx() if tx is None else tx,
        blobs(120, seed=2),
        loss=xent,
        epochs=epochs,
        batch_size=16,
        validation_split=0.2,
        callbacks=make_callbacks(checkpoint_dir),
        seed=7,
        progress=False,
        resume_from=resume_from,
    )
    from flax import nnx

    leaves = jax.tree.leaves(nnx.to_pure_dict(nnx.state(model)))
    return history, [
        np.asarray(x) for x in leaves if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    ]


def main(argv):
    ckpt, out = argv
    history, leaves = run(EPOCHS, checkpoint_dir=ckpt, resume_from=ckpt)
    np.savez(out, *leaves, history=json.dumps(history.to_dict()))


if __name__ == "__main__":
    main(sys.argv[1:])
