"""Bad input is refused where it enters: TypeError/ValueError naming the function and argument."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab.nn as onn

NAN, INF = math.nan, math.inf
X = jnp.ones((4, 3))
KEY = jax.random.key(0)
SCORES = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
LABELS = jnp.array([0, 1, 2, 1])

CASES = [
    # PReLU, RReLU, rrelu
    ("PReLU-init-nan", lambda: onn.PReLU(init=NAN), ValueError, "PReLU: init must be finite"),
    ("PReLU-init-str", lambda: onn.PReLU(init="0.25"), TypeError, "PReLU: init must be a real"),
    ("PReLU-width-0", lambda: onn.PReLU(0), ValueError, "PReLU: num_features must be an integer"),
    ("PReLU-width-float", lambda: onn.PReLU(2.0), TypeError, "PReLU: num_features must be an"),
    ("PReLU-per-unit-str", lambda: onn.PReLU(per_unit="yes"), TypeError, "PReLU: per_unit"),
    ("RReLU-lower-nan", lambda: onn.RReLU(lower=NAN), ValueError, "RReLU: lower must be finite"),
    ("RReLU-upper-inf", lambda: onn.RReLU(upper=INF), ValueError, "RReLU: upper must be finite"),
    ("RReLU-inverted", lambda: onn.RReLU(lower=0.5, upper=0.1), ValueError, "lower <= upper"),
    ("RReLU-negative", lambda: onn.RReLU(lower=-0.1), ValueError, "RReLU: lower must be >= 0"),
    ("RReLU-str", lambda: onn.RReLU(lower="a"), TypeError, "RReLU: lower must be a real"),
    ("rrelu-nan", lambda: onn.rrelu(X, KEY, upper=NAN, train=True), ValueError, "rrelu: upper"),
    ("rrelu-inverted", lambda: onn.rrelu(X, lower=0.4, upper=0.2), ValueError, "lower <= upper"),
    ("rrelu-train-str", lambda: onn.rrelu(X, train="yes"), TypeError, "rrelu: train must be"),
    (
        "MLP-rrelu-inverted",
        lambda: onn.MLP(3, (4,), 2, activation=("rrelu", {"lower": 0.4, "upper": 0.1}), rngs=0),
        ValueError,
        "lower <= upper",
    ),
    ("prelu-nan", lambda: onn.prelu(X, NAN), ValueError, "prelu: alpha must be finite"),
    ("prelu-str", lambda: onn.prelu(X, "a"), TypeError, "prelu: alpha must be a real"),
    ("Block-width", lambda: onn.Block(0, 3, rngs=0), ValueError, "Block: in_features"),
    ("Block-dropconnect", lambda: onn.Block(2, 3, dropconnect=2, rngs=0), ValueError, "Block"),
    # Dropout and friends
    ("Dropout-1", lambda: onn.Dropout(1.0), ValueError, r"Dropout: rate must be in \[0, 1\)"),
    ("Dropout-negative", lambda: onn.Dropout(-0.1), ValueError, "Dropout: rate must be in"),
    ("Dropout-nan", lambda: onn.Dropout(NAN), ValueError, "Dropout: rate must be in"),
    ("Dropout-str", lambda: onn.Dropout("0.5"), TypeError, "Dropout: rate must be a real"),
    ("Dropout-None", lambda: onn.Dropout(None), TypeError, "Dropout: rate must be a real"),
    ("Dropout-bool", lambda: onn.Dropout(True), TypeError, "Dropout: rate must be a real"),
    ("Dropout-rngs", lambda: onn.Dropout(0.5, rngs="seed"), TypeError, "Dropout: rngs must be"),
    ("dropout-1.5", lambda: onn.dropout(X, 1.5, KEY, train=True), ValueError, "dropout: rate"),
    ("dropout-list", lambda: onn.dropout(X, [0.5], KEY, train=True), TypeError, "dropout: rate"),
    ("dropout-train", lambda: onn.dropout(X, 0.5, KEY, train=1), TypeError, "dropout: train"),
    ("drop_path-nan", lambda: onn.drop_path(X, NAN, KEY, train=True), ValueError, "drop_path"),
    ("noise-negative", lambda: onn.GaussianNoise(-1.0), ValueError, "GaussianNoise: stddev"),
    ("noise-nan", lambda: onn.GaussianNoise(NAN), ValueError, "GaussianNoise: stddev"),
    ("noise-str", lambda: onn.GaussianNoise("0.1"), TypeError, "GaussianNoise: stddev"),
    # Dense
    ("Dense-width-0", lambda: onn.Dense(0, 3, rngs=0), ValueError, "Dense: in_features"),
    ("Dense-width-float", lambda: onn.Dense(2.5, 3, rngs=0), TypeError, "Dense: in_features"),
    ("Dense-width-str", lambda: onn.Dense(2, "3", rngs=0), TypeError, "Dense: out_features"),
    ("Dense-bias-str", lambda: onn.Dense(2, 2, use_bias="no", rngs=0), TypeError, "use_bias"),
    ("Dense-dropconnect", lambda: onn.Dense(2, 2, dropconnect=1.0, rngs=0), ValueError, "dropc"),
    ("Dense-rngs", lambda: onn.Dense(2, 2, rngs=1.5), TypeError, "Dense: rngs must be"),
    ("Dense-init-int", lambda: onn.Dense(2, 2, kernel_init=3, rngs=0), TypeError, "initializer"),
    # Activations by name
    ("act-typo", lambda: onn.Activation("rleu"), ValueError, "did you mean 'relu'"),
    (
        "act-int",
        lambda: onn.Activation(3),
        TypeError,
        "Activation: spec must be an activation name",
    ),
    (
        "leaky-nan",
        lambda: onn.get_activation("leaky_relu", negative_slope=NAN),
        ValueError,
        r"get_activation\('leaky_relu'\): negative_slope must be finite",
    ),
    (
        "leaky-str",
        lambda: onn.get_activation(("leaky_relu", {"negative_slope": "0.1"})),
        TypeError,
        "negative_slope must be a real number",
    ),
    ("gelu-str", lambda: onn.get_activation("gelu", approximate="y"), TypeError, "approximate"),
    ("elu-inf", lambda: onn.get_activation("elu", alpha=INF), ValueError, "alpha must be finite"),
    ("maxout-0", lambda: onn.get_activation("maxout", num_pieces=0), ValueError, "num_pieces"),
    ("maxout-float", lambda: onn.maxout(X, 1.5), TypeError, "maxout: num_pieces"),
    # Initializers
    (
        "init-stddev-nan",
        lambda: onn.get_initializer("normal", stddev=NAN),
        ValueError,
        r"get_initializer\('normal'\): stddev must be finite",
    ),
    ("init-stddev-neg", lambda: onn.get_initializer("normal", stddev=-1.0), ValueError, ">= 0"),
    ("init-stddev-str", lambda: onn.get_initializer("normal", stddev="1"), TypeError, "stddev"),
    ("init-value-inf", lambda: onn.get_initializer("constant", value=INF), ValueError, "value"),
    ("init-int", lambda: onn.get_initializer(5), TypeError, "get_initializer: spec must be an"),
    ("init-fan-in", lambda: onn.get_initializer("torch_default", fan_in=2.5), TypeError, "fan_in"),
    # MLP
    ("MLP-hidden-int", lambda: onn.MLP(3, 64, 2, rngs=0), TypeError, "MLP: hidden must be a tuple"),
    ("MLP-hidden-str", lambda: onn.MLP(3, "64", 2, rngs=0), TypeError, "MLP: hidden must be"),
    ("MLP-hidden-0", lambda: onn.MLP(3, (0,), 2, rngs=0), ValueError, "MLP: hidden width"),
    ("MLP-hidden-float", lambda: onn.MLP(3, (8.0,), 2, rngs=0), TypeError, "MLP: hidden width"),
    ("MLP-in-None", lambda: onn.MLP(None, (8,), 2, rngs=0), TypeError, "MLP: in_features"),
    ("MLP-out-str", lambda: onn.MLP(3, (8,), "2", rngs=0), TypeError, "MLP: out_features"),
    ("MLP-dropout-str", lambda: onn.MLP(3, (8,), 2, dropout="0.5", rngs=0), TypeError, "dropout"),
    ("MLP-dropout-1", lambda: onn.MLP(3, (8,), 2, dropout=1.0, rngs=0), ValueError, "dropout"),
    (
        "MLP-dropout-None-in-list",
        lambda: onn.MLP(3, (8, 8), 2, dropout=[0.5, None], rngs=0),
        TypeError,
        "MLP: dropout must be a real number",
    ),
    ("MLP-residual-str", lambda: onn.MLP(3, (8,), 2, residual="y", rngs=0), TypeError, "residual"),
    (
        "MLP-residual-ints",
        lambda: onn.MLP(3, (8, 8), 2, residual=(1, 0), rngs=0),
        TypeError,
        "MLP: residual must be True or False",
    ),
    ("MLP-noise-nan", lambda: onn.MLP(3, (8,), 2, input_noise=NAN, rngs=0), ValueError, "noise"),
    ("MLP-depth-bool", lambda: onn.MLP(3, (8,), 2, stochastic_depth=True, rngs=0), TypeError, "st"),
    ("MLP-norm-int", lambda: onn.MLP(3, (8,), 2, norm=3, rngs=0), TypeError, "MLP: norm must be"),
    (
        "MLP-momentum-1",
        lambda: onn.MLP(3, (8,), 2, norm=("batch", {"momentum": 1.0}), rngs=0),
        ValueError,
        "momentum must be in",
    ),
    (
        "MLP-epsilon-0",
        lambda: onn.MLP(3, (8,), 2, norm=("layer", {"epsilon": 0.0}), rngs=0),
        ValueError,
        "epsilon must be > 0",
    ),
    (
        "MLP-groups-0",
        lambda: onn.MLP(3, (8,), 2, norm=("group", {"num_groups": 0}), rngs=0),
        ValueError,
        "num_groups must be an integer >= 1",
    ),
    ("MLP-rngs-None", lambda: onn.MLP(3, (8,), 2, rngs=None), TypeError, "MLP: rngs must be"),
    ("MLP-call-train", lambda: onn.MLP(3, (8,), 2, rngs=0)(X, train="no"), TypeError, "train"),
    # Topologies
    ("multi-int", lambda: onn.MultiInputMLP(4, ((8,),), rngs=0), TypeError, "in_features must"),
    (
        "multi-towers",
        lambda: onn.MultiInputMLP((4, 2), ((8,),), rngs=0),
        ValueError,
        "one tower per input",
    ),
    ("ens-member", lambda: onn.Ensemble(3, 2, rngs=0), TypeError, "Ensemble: make_member"),
    (
        "ens-0",
        lambda: onn.Ensemble(lambda r: onn.MLP(3, (4,), 2, rngs=r), 0, rngs=0),
        ValueError,
        "Ensemble: num_members",
    ),
    (
        "ens-plain",
        lambda: onn.Ensemble(lambda r: nnx.Linear(3, 2, rngs=r), 2, rngs=0),
        TypeError,
        "model\\(x, \\*, train, rng\\)",
    ),
    ("avg-logits", lambda: onn.average_predictions(SCORES, logits="y"), TypeError, "logits"),
    ("vote-1d", lambda: onn.majority_vote(jnp.ones(3)), ValueError, "majority_vote: outputs"),
    ("count-str", lambda: onn.count_params("abc"), TypeError, "count_params"),
    ("fold-str", lambda: onn.fold_batchnorm("model"), TypeError, "fold_batchnorm: model"),
    # Losses and penalties
    ("svm-nan", lambda: onn.multiclass_svm_loss(SCORES, LABELS, NAN), ValueError, "margin"),
    ("svm-neg", lambda: onn.multiclass_svm_loss(SCORES, LABELS, -1.0), ValueError, "margin"),
    ("svm-str", lambda: onn.multiclass_svm_loss(SCORES, LABELS, "1"), TypeError, "margin"),
    (
        "svm-float-labels",
        lambda: onn.multiclass_svm_loss(SCORES, LABELS.astype(jnp.float32)),
        ValueError,
        "multiclass_svm_loss: labels must be integer",
    ),
    (
        "svm-label-shape",
        lambda: onn.multiclass_svm_loss(SCORES, LABELS[:3]),
        ValueError,
        "labels must have the shape",
    ),
    ("smooth-1.5", lambda: onn.smooth_labels(SCORES, 1.5), ValueError, "smooth_labels: alpha"),
    ("smooth-str", lambda: onn.smooth_labels(SCORES, "a"), TypeError, "smooth_labels: alpha"),
    (
        "xent-smoothing-nan",
        lambda: onn.softmax_cross_entropy(SCORES, SCORES, label_smoothing=NAN),
        ValueError,
        "label_smoothing",
    ),
    (
        "xent-int-label-shape",
        lambda: onn.softmax_cross_entropy_with_integer_labels(SCORES, LABELS[:, None]),
        ValueError,
        "labels must have the shape",
    ),
    (
        "squared-error-broadcast",
        lambda: onn.squared_error(jnp.ones((4, 1)), jnp.ones(4)),
        ValueError,
        "squared_error: predictions and targets must have one shape",
    ),
    ("enet-nan", lambda: onn.elastic_net_penalty({"w": X}, NAN), ValueError, "l1_ratio"),
    ("enet-str", lambda: onn.elastic_net_penalty({"w": X}, "a"), TypeError, "l1_ratio"),
    ("l2-str", lambda: onn.l2_penalty("abc"), TypeError, "l2_penalty: params"),
    ("l1-int-leaf", lambda: onn.l1_penalty({"w": jnp.ones(3, int)}), TypeError, "l1_penalty"),
    (
        "apply-train",
        lambda: onn.functional(onn.MLP(3, (4,), 2, rngs=0))[0]({}, {}, X, train="yes"),
        TypeError,
        "apply: train must be a Python bool",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_glob_mask_matching_no_parameter_lists_the_paths():
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"\*kernel.*(b.*w|w.*b)"):
        onn.l2_penalty(params, mask="*kernel")


def test_edge_values_and_traced_values_are_accepted():
    onn.Dropout(0.0)
    onn.RReLU(lower=0.2, upper=0.2)
    onn.PReLU(init=-0.5)
    onn.MLP(3, (), 2, rngs=jax.random.key(0))  # a linear model, seeded by a key
    # A dropout rate or a margin may be a traced jax array (swept under vmap/jit).
    rates = jnp.array([0.1, 0.5])
    out = jax.vmap(lambda r: onn.dropout(jnp.ones(1000), r, KEY, train=True))(rates)
    kept = np.asarray(jnp.mean(out != 0, axis=1))
    np.testing.assert_allclose(kept, [0.9, 0.5], atol=0.06)
    margin = jax.jit(lambda m: onn.multiclass_svm_loss(SCORES, LABELS, m))(jnp.float32(1.0))
    np.testing.assert_allclose(margin, onn.multiclass_svm_loss(SCORES, LABELS, 1.0), rtol=1e-6)
