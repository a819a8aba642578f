r"""Folding BatchNorm into the Dense layers around it, for inference.

At evaluation BatchNorm is an affine map per feature, :math:`\mathrm{BN}(z) = s \odot z + c` with

.. math::

   s = \frac{\gamma}{\sqrt{\bar\sigma^2 + \epsilon}}, \qquad c = \beta - s \odot \bar\mu,

so it can be absorbed by a neighbouring linear layer. Before the activation
(``norm_position="pre_activation"``) it folds into the preceding Dense layer,
:math:`W' = W \operatorname{diag}(s)`, :math:`b' = s \odot b + c`; after the activation it
folds into the following Dense layer (that of the next block, or the output layer),
:math:`W' = \operatorname{diag}(s) W`, :math:`b' = b + c W` (eval-mode dropout between them is
the identity). The folded model has no BatchNorm and gives the same evaluation outputs; its
training behaviour is of course different (no batch statistics).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.nn.layers import Dense
from optlab.nn.mlp import MLP


def _affine(bn: nnx.BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    f64 = lambda a: np.asarray(a, np.float64)
    gamma = f64(bn.scale[...]) if bn.scale is not None else 1.0
    beta = f64(bn.bias[...]) if bn.bias is not None else 0.0
    s = gamma / np.sqrt(f64(bn.var[...]) + bn.epsilon)
    return s, beta - s * f64(bn.mean[...])


def _set(dense: Dense, kernel: np.ndarray, bias: np.ndarray) -> None:
    dtype = dense.kernel[...].dtype
    dense.kernel = nnx.Param(jnp.asarray(kernel, dtype))
    dense.bias = nnx.Param(jnp.asarray(bias, dtype))


def _bias(dense: Dense) -> np.ndarray:
    kernel = dense.kernel[...]
    if dense.bias is None:
        return np.zeros(kernel.shape[:-2] + kernel.shape[-1:])
    return np.asarray(dense.bias[...], np.float64)


def _fold_mlp(mlp: MLP) -> None:
    blocks = list(mlp.blocks)
    for i, block in enumerate(blocks):
        if not isinstance(block.norm, nnx.BatchNorm):
            continue
        s, c = _affine(block.norm)
        if block.pre_activation:  # norm(x W + b): fold into this block's Dense
            w = np.asarray(block.dense.kernel[...], np.float64)
            _set(block.dense, w * s[..., None, :], _bias(block.dense) * s + c)
        else:  # next(norm(act(...))): fold into the next Dense
            if block.residual:
                raise ValueError(
                    "fold_batchnorm: a post-activation BatchNorm inside a residual block has no "
                    "linear layer next to it to fold into"
                )
            nxt = blocks[i + 1].dense if i + 1 < len(blocks) else mlp.head
            if nxt is None:
                raise ValueError(
                    "fold_batchnorm: the last block's post-activation BatchNorm has no following "
                    "Dense layer (out_features=None)"
                )
            w = np.asarray(nxt.kernel[...], np.float64)
            new_b = _bias(nxt) + np.einsum("...i,...io->...o", c, w)
            _set(nxt, w * s[..., :, None], new_b)
        block.norm = None


def fold_batchnorm(model: nnx.Module) -> nnx.Module:
    """A copy of ``model`` with every BatchNorm folded into a neighbouring Dense layer.

    Works on :class:`~optlab.nn.MLP` and on models containing MLPs
    (:class:`~optlab.nn.MultiInputMLP`, :class:`~optlab.nn.Ensemble`, whose stacked members are
    folded together). The arithmetic is done in float64 and cast back.

    Args:
      model: the model; it is not modified.

    Returns:
      An equivalent model without BatchNorm (equal outputs with ``train=False``).

    Examples:
      >>> import jax.numpy as jnp, optlab
      >>> model = optlab.nn.MLP(4, (8,), 3, norm="batch", rngs=0)
      >>> folded = optlab.nn.fold_batchnorm(model)
      >>> x = jnp.ones((2, 4))
      >>> model.eval(); folded.eval()
      >>> print(jnp.allclose(model(x), folded(x), atol=1e-5))
      True
      >>> print(optlab.nn.count_params(model) - optlab.nn.count_params(folded))
      16
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"fold_batchnorm: model must be a flax.nnx.Module, got {type(model).__name__}"
        )
    copy = nnx.merge(*nnx.split(model))  # fresh variables: the original is never touched
    for _, node in list(nnx.iter_graph(copy)):
        if isinstance(node, MLP):
            _fold_mlp(node)
    return copy
