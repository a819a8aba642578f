"""Flax nnx MLPs, their layers, losses and penalties, and the pure ``apply`` form of a model.

Imports only :mod:`optlab.core` (and jax/flax). Every model follows Flax nnx's conventions
(``model.train()`` / ``model.eval()``, ``model(x)``); see :mod:`optlab.nn.apply` for the
contract of ``functional(model) -> (apply, params, state)`` used by the training engine, and
:mod:`optlab.nn.config` for ``model_config`` / ``from_config``.
"""

from optlab.nn.activations import activation_names as activation_names
from optlab.nn.activations import get_activation as get_activation
from optlab.nn.activations import maxout as maxout
from optlab.nn.activations import prelu as prelu
from optlab.nn.activations import rrelu as rrelu
from optlab.nn.apply import Apply as Apply
from optlab.nn.apply import functional as functional
from optlab.nn.config import from_config as from_config
from optlab.nn.config import model_config as model_config
from optlab.nn.fold import fold_batchnorm as fold_batchnorm
from optlab.nn.initializers import get_initializer as get_initializer
from optlab.nn.initializers import initializer_names as initializer_names
from optlab.nn.layers import Activation as Activation
from optlab.nn.layers import Dense as Dense
from optlab.nn.layers import Dropout as Dropout
from optlab.nn.layers import GaussianNoise as GaussianNoise
from optlab.nn.layers import PReLU as PReLU
from optlab.nn.layers import RReLU as RReLU
from optlab.nn.layers import drop_path as drop_path
from optlab.nn.layers import dropout as dropout
from optlab.nn.losses import elastic_net_penalty as elastic_net_penalty
from optlab.nn.losses import l1_penalty as l1_penalty
from optlab.nn.losses import l2_penalty as l2_penalty
from optlab.nn.losses import mean_squared_error as mean_squared_error
from optlab.nn.losses import multiclass_hinge_loss as multiclass_hinge_loss
from optlab.nn.losses import multiclass_svm_loss as multiclass_svm_loss
from optlab.nn.losses import sigmoid_binary_cross_entropy as sigmoid_binary_cross_entropy
from optlab.nn.losses import smooth_labels as smooth_labels
from optlab.nn.losses import softmax_cross_entropy as softmax_cross_entropy
from optlab.nn.losses import (
    softmax_cross_entropy_with_integer_labels as softmax_cross_entropy_with_integer_labels,
)
from optlab.nn.losses import squared_error as squared_error
from optlab.nn.mlp import MLP as MLP
from optlab.nn.mlp import Block as Block
from optlab.nn.mlp import count_params as count_params
from optlab.nn.norm import norm_names as norm_names
from optlab.nn.topologies import Ensemble as Ensemble
from optlab.nn.topologies import MultiInputMLP as MultiInputMLP
from optlab.nn.topologies import average_predictions as average_predictions
from optlab.nn.topologies import majority_vote as majority_vote
