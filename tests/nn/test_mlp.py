"""MLP forward shapes and parameter counts over activation x norm x topology; topologies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab.nn as onn

IN, HIDDEN, OUT, BATCH = 4, (8, 8), 3, 16
X = jnp.asarray(np.random.default_rng(0).normal(size=(BATCH, IN)), jnp.float32)


def expected_count(activation, norm, norm_position="pre_activation", residual=False, hidden=HIDDEN):
    """Parameter count written out from the layer definitions (independent of the code)."""
    pieces = 2 if activation == "maxout" else 1
    total, width = 0, IN
    for h in hidden:
        total += width * h * pieces + h * pieces  # Dense to h * pieces units
        if norm is not None:
            total += 2 * (h * pieces if norm_position == "pre_activation" else h)  # scale, bias
        if activation == "prelu":
            total += 1  # one learned slope per layer
        if activation == ("prelu", {"per_unit": True}):
            total += h  # one learned slope per unit
        if residual and width != h:
            total += width * h  # bias-free projection shortcut
        width = h
    return total + width * OUT + OUT


ACTIVATIONS = [
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "tanh",
    "sigmoid",
    "prelu",
    pytest.param(("prelu", {"per_unit": True}), id="prelu-per-unit"),
    "rrelu",
    "maxout",
]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_shapes_and_counts(activation):
    model = onn.MLP(IN, HIDDEN, OUT, activation=activation, dropout=0.1, rngs=0)
    assert onn.count_params(model) == expected_count(activation, None)
    apply, params, state = onn.functional(model)
    y_eval, _ = apply(params, state, X, train=False)
    y_train, _ = apply(params, state, X, train=True, rng=jax.random.key(0))
    assert y_eval.shape == y_train.shape == (BATCH, OUT)
    assert bool(jnp.all(jnp.isfinite(y_train)))


@pytest.mark.parametrize("norm", [None, "batch", "layer", "group"])
@pytest.mark.parametrize(
    ("activation", "position", "residual"),
    [
        pytest.param("relu", "pre_activation", False, id="relu-pre"),
        pytest.param("relu", "post_activation", False, id="relu-post"),
        pytest.param("maxout", "pre_activation", False, id="maxout-pre"),
        pytest.param("prelu", "post_activation", True, id="prelu-post-residual"),
        pytest.param("elu", "pre_activation", True, id="elu-pre-residual"),
    ],
)
def test_norm_topology_shapes_and_counts(norm, activation, position, residual):
    model = onn.MLP(
        IN,
        HIDDEN,
        OUT,
        activation=activation,
        norm=norm,
        norm_position=position,
        residual=residual,
        stochastic_depth=0.2 if residual else 0.0,
        rngs=0,
    )
    assert onn.count_params(model) == expected_count(activation, norm, position, residual)
    apply, params, state = onn.functional(model)
    # Traced abstractly (shapes only, nothing compiled): the forward values are checked per
    # activation and per layer elsewhere; here it is the wiring of 20 topologies.
    y, new_state = jax.eval_shape(
        lambda p, s: apply(p, s, X, train=True, rng=jax.random.key(0)), params, state
    )
    assert y.shape == (BATCH, OUT)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert jax.tree.map(jnp.shape, new_state) == jax.tree.map(jnp.shape, state)
    assert (norm == "batch") == bool(jax.tree.leaves(nnx.state(model, nnx.BatchStat)))


def test_group_norm_groups_and_options():
    model = onn.MLP(IN, (8,), OUT, norm=("group", {"num_groups": 2}), rngs=0)
    assert model.blocks[0].norm.num_groups == 2
    assert onn.MLP(IN, (8,), OUT, norm="group", rngs=0).blocks[0].norm.num_groups == 8
    with pytest.raises(ValueError, match="num_groups to divide"):
        onn.MLP(IN, (8,), OUT, norm=("group", {"num_groups": 3}), rngs=0)


def test_norm_by_callable():
    model = onn.MLP(IN, (8,), OUT, norm=lambda n, rngs: nnx.RMSNorm(n, rngs=rngs), rngs=0)
    assert isinstance(model.blocks[0].norm, nnx.RMSNorm)
    assert onn.count_params(model) == IN * 8 + 8 + 8 + 8 * OUT + OUT  # RMSNorm: a scale only
    assert model(X, train=True).shape == (BATCH, OUT)


@pytest.mark.parametrize(
    ("residual", "expected"),
    [
        pytest.param(True, [True, True], id="all"),
        pytest.param((False, True), [False, True], id="second-only"),
        pytest.param([True, False], [True, False], id="first-only-list"),
    ],
)
def test_residual_per_block(residual, expected):
    model = onn.MLP(IN, (8, 8), OUT, residual=residual, rngs=0)
    assert [b.residual for b in model.blocks] == expected
    # A projection shortcut only where the width changes on a residual block (4 -> 8).
    assert [b.shortcut is not None for b in model.blocks] == [expected[0], False]
    shortcut = IN * 8 if expected[0] else 0  # the bias-free 4 -> 8 projection
    assert onn.count_params(model) == expected_count("relu", None) + shortcut
    # The second block's output is its input plus the branch exactly when it is residual.
    block = model.blocks[1]
    h = np.asarray(model.blocks[0](X, train=False))
    branch = np.maximum(
        h @ np.asarray(block.dense.kernel[...]) + np.asarray(block.dense.bias[...]), 0
    )
    ref = h + branch if expected[1] else branch
    np.testing.assert_allclose(
        np.asarray(block(jnp.asarray(h), train=False)), ref, rtol=1e-5, atol=1e-6
    )


def test_mnist1d_paper_mlp_is_residual_on_its_second_layer():
    # Greydanus's MNIST-1D MLP: 40 -> 100 -> 100 -> 10, ReLU, a skip around the second layer.
    model = onn.MLP(
        40,
        (100, 100),
        10,
        residual=(False, True),
        kernel_init="torch_default",
        bias_init="torch_default",
        rngs=0,
    )
    assert onn.count_params(model) == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 40)), jnp.float32)
    p = jax.tree.map(np.asarray, onn.functional(model)[1])
    h1 = np.maximum(
        np.asarray(x) @ p["blocks"][0]["dense"]["kernel"] + p["blocks"][0]["dense"]["bias"], 0
    )
    h2 = h1 + np.maximum(
        h1 @ p["blocks"][1]["dense"]["kernel"] + p["blocks"][1]["dense"]["bias"], 0
    )
    ref = h2 @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(np.asarray(model(x, train=False)), ref, rtol=1e-4, atol=1e-5)


def test_residual_identity_when_branch_is_zero():
    model = onn.MLP(IN, (IN,), OUT, residual=True, kernel_init="zeros", rngs=0)
    h = model.blocks[0](X, train=False)
    np.testing.assert_array_equal(np.asarray(h), np.asarray(X))  # x + relu(0) = x


def test_stochastic_depth_drops_whole_branches():
    model = onn.MLP(IN, (IN,), OUT, residual=True, stochastic_depth=0.5, rngs=0)
    block = model.blocks[0]
    branch = np.asarray(jax.nn.relu(block.dense(X, train=False)))
    h = np.asarray(block(X, train=True, rng=jax.random.key(1))) - np.asarray(X)
    for row, ref in zip(h, branch, strict=True):  # each row: branch dropped or scaled by 2
        assert np.allclose(row, 0.0, atol=1e-6) or np.allclose(row, 2 * ref, atol=1e-5)
    assert 0 < sum(np.allclose(r, 0.0, atol=1e-6) for r in h) < BATCH


def test_linear_model_and_flattening():
    model = onn.MLP(IN, (), OUT, rngs=0)
    assert onn.count_params(model) == IN * OUT + OUT
    images = X.reshape(BATCH, 2, 2, 1)
    np.testing.assert_allclose(model(images, train=False), model(X, train=False), rtol=1e-6)


def test_per_layer_dropout_and_validation():
    model = onn.MLP(IN, HIDDEN, OUT, dropout=(0.1, 0.4), rngs=0)
    assert [b.dropout for b in model.blocks] == [0.1, 0.4]
    with pytest.raises(ValueError, match="one per hidden layer"):
        onn.MLP(IN, HIDDEN, OUT, dropout=(0.1,), rngs=0)
    with pytest.raises(
        ValueError, match=r"residual must be one value or one per hidden layer \(2\)"
    ):
        onn.MLP(IN, HIDDEN, OUT, residual=(True,), rngs=0)
    with pytest.raises(ValueError, match="stochastic_depth drops residual branches"):
        onn.MLP(IN, HIDDEN, OUT, stochastic_depth=0.2, rngs=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        onn.MLP(IN, HIDDEN, OUT, dropout=1.0, rngs=0)
    with pytest.raises(ValueError, match="did you mean 'pre_activation'"):
        onn.MLP(IN, HIDDEN, OUT, norm_position="pre_activaton", rngs=0)
    with pytest.raises(ValueError, match="did you mean 'batch'"):
        onn.MLP(IN, HIDDEN, OUT, norm="bach", rngs=0)


def test_multi_input_uses_both_towers():
    model = onn.MultiInputMLP((IN, 2), ((8,), (8,)), (8,), OUT, norm="layer", rngs=0)
    per_tower = (IN * 8 + 8 + 16) + (2 * 8 + 8 + 16)
    assert onn.count_params(model) == per_tower + (16 * 8 + 8 + 16) + 8 * OUT + OUT
    a = jnp.ones((BATCH, 2))
    y = model((X, a), train=False)
    assert y.shape == (BATCH, OUT)
    assert not np.allclose(y, model((X, 2 * a), train=False))
    assert not np.allclose(y, model((2 * X, a), train=False))
    with pytest.raises(ValueError, match="expected a tuple of 2 inputs"):
        model((X,), train=False)


def test_multi_label_output_with_sigmoid_loss():
    model = onn.MLP(IN, HIDDEN, OUT, rngs=0)  # OUT independent labels
    labels = (np.random.default_rng(1).uniform(size=(BATCH, OUT)) < 0.5).astype(np.float32)
    apply, params, state = onn.functional(model)

    def loss(p):
        logits, _ = apply(p, state, X, train=False)
        return onn.sigmoid_binary_cross_entropy(logits, labels).sum(-1).mean()

    grads = jax.jit(jax.grad(loss))(params)  # one compilation instead of op-by-op
    assert float(onn.l2_penalty(grads)) > 0


@pytest.fixture(scope="module")
def ensemble():
    return onn.Ensemble(lambda r: onn.MLP(IN, (8,), OUT, norm="batch", rngs=r), 3, rngs=0)


def test_ensemble_members_match_individual_models(ensemble):
    assert onn.count_params(ensemble) == 3 * expected_count("relu", "batch", hidden=(8,))
    ys = ensemble(X, train=False)
    assert ys.shape == (3, BATCH, OUT)
    graphdef, state = nnx.split(ensemble.members)
    for i in range(3):
        member = nnx.merge(graphdef, jax.tree.map(lambda a, i=i: a[i], state))
        np.testing.assert_allclose(ys[i], member(X, train=False), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ys[0], ys[1])  # independently initialized


def test_ensemble_training_updates_each_members_statistics(ensemble):
    apply, params, state = onn.functional(ensemble)
    train = jax.jit(apply, static_argnames="train")  # as the engine uses it
    _, new_state = train(params, state, X, train=True, rng=jax.random.key(0))
    mean = new_state["members"]["blocks"][0]["norm"]["mean"]
    assert mean.shape == (3, 8)
    assert not np.allclose(mean[0], mean[1])  # each member's own batch statistics
    # The stacked members fold together: fold_batchnorm keeps the eval outputs.
    trained = apply.merge(params, new_state)
    folded = onn.fold_batchnorm(trained)
    np.testing.assert_allclose(
        folded(X, train=False), trained(X, train=False), rtol=1e-5, atol=1e-5
    )


def test_majority_vote_against_numpy():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 40, 4))
    votes = scores.argmax(-1)
    ref = np.array([np.bincount(votes[:, j], minlength=4).argmax() for j in range(40)])
    np.testing.assert_array_equal(np.asarray(onn.majority_vote(jnp.asarray(scores))), ref)
    tie = jnp.array([[[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]])  # one vote each for 1 and 2
    assert int(onn.majority_vote(tie)[0]) == 1


def test_average_predictions_against_numpy():
    logits = np.random.default_rng(0).normal(size=(3, 6, 4))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(onn.average_predictions(jnp.asarray(logits)), p.mean(0), rtol=1e-5)
    np.testing.assert_allclose(
        onn.average_predictions(jnp.asarray(p), logits=False), p.mean(0), rtol=1e-5
    )
