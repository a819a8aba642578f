"""landscape(): interpolation end points, slices against a direct loop, filter normalization
against NumPy, the grid's orientation; plot_landscape()."""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab as ol

LOSS = ol.nn.softmax_cross_entropy_with_integer_labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.integers(0, 4, 20).astype(np.int32)
    return x, y


def make_model(seed=0, **kwargs):
    return ol.nn.MLP(3, (5,), 4, rngs=seed, **kwargs)


@functools.partial(jax.jit, static_argnums=0)
def _eval_outputs(apply, params, state, x):
    return apply(params, state, x, train=False)[0]


def direct_loss(model, params, data):
    """The mean loss at ``params``, evaluated on its own: one eval-mode forward pass (jitted
    once per model structure: ``apply`` is hashable), averaged in float64."""
    apply, _, state = ol.nn.functional(model)
    out = _eval_outputs(apply, params, state, jnp.asarray(data[0]))
    return float(np.mean(np.asarray(LOSS(out, jnp.asarray(data[1])), np.float64)))


def combine(center, coeffs, dirs):
    """center + sum_k coeffs[k] * dirs[k], leaf by leaf."""

    def leaf(p, *ds):
        return p + sum(c * d for c, d in zip(coeffs, ds, strict=True))

    return jax.tree.map(leaf, center, *dirs)


def test_interpolation_hits_both_end_points(data):
    model_a, model_b = make_model(0), make_model(1)
    params_a, params_b = ol.nn.functional(model_a)[1], ol.nn.functional(model_b)[1]
    line = ol.diagnostics.landscape(model_a, params_a, params_b, loss=LOSS, data=data, num_points=5)
    assert line.kind == "interpolation"
    np.testing.assert_allclose(line.coords[0], [-0.5, 0.0, 0.5, 1.0, 1.5])
    assert line.values.shape == (5,)
    assert line.values[1] == pytest.approx(direct_loss(model_a, params_a, data), rel=1e-6)
    assert line.values[3] == pytest.approx(direct_loss(model_a, params_b, data), rel=1e-6)
    middle = jax.tree.map(lambda a, b: (a + b) / 2, params_a, params_b)
    assert line.values[2] == pytest.approx(direct_loss(model_a, middle, data), rel=1e-6)
    beyond = jax.tree.map(lambda a, b: a - 0.5 * (b - a), params_a, params_b)
    assert line.values[0] == pytest.approx(direct_loss(model_a, beyond, data), rel=1e-6)
    # The end point may be given as a model; params_a defaults to the model's parameters.
    same = ol.diagnostics.landscape(model_a, params_b=model_b, loss=LOSS, data=data, num_points=5)
    np.testing.assert_allclose(same.values, line.values, rtol=1e-6)


def test_evaluation_mode_batchnorm_running_averages_and_no_dropout(data):
    model = make_model(0, norm="batch", dropout=0.5)
    apply, params, state = ol.nn.functional(model)
    other = jax.tree.map(lambda p: p * 1.5, params)
    line = ol.diagnostics.landscape(
        model, params_b=other, loss=LOSS, data=data, num_points=2, span=(0.0, 1.0)
    )
    assert line.values[0] == pytest.approx(direct_loss(model, params, data), rel=1e-6)
    assert line.values[1] == pytest.approx(direct_loss(model, other, data), rel=1e-6)
    out, _ = apply(params, state, jnp.asarray(data[0]), train=True, rng=jax.random.key(0))
    train_loss = float(np.mean(np.asarray(LOSS(out, jnp.asarray(data[1])))))
    assert abs(train_loss - line.values[0]) > 1e-3  # training mode would give another value


class PlainNet(nnx.Module):
    """A plain nnx module (no train/rng keywords): it switches mode with train()/eval()."""

    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 6, rngs=rngs)
        self.norm = nnx.BatchNorm(6, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
        self.out = nnx.Linear(6, 4, rngs=rngs)

    def __call__(self, x):
        return self.out(self.dropout(nnx.relu(self.norm(self.linear(x)))))


def test_plain_nnx_module_is_evaluated_in_eval_mode(data):
    model = PlainNet(nnx.Rngs(0))
    params = ol.nn.functional(model)[1]
    other = jax.tree.map(lambda p: -p, params)
    line = ol.diagnostics.landscape(
        model, params_b=other, loss=LOSS, data=data, num_points=3, span=(0.0, 1.0)
    )
    model.eval()  # the nnx way: running averages, no dropout
    logits = model(jnp.asarray(data[0]))
    expected = float(np.mean(np.asarray(LOSS(logits, jnp.asarray(data[1])), np.float64)))
    assert line.values[0] == pytest.approx(expected, rel=1e-6)
    assert line.values[2] == pytest.approx(direct_loss(model, other, data), rel=1e-6)


def test_1d_slice_equals_a_direct_loop(data):
    model = make_model(0)
    params = ol.nn.functional(model)[1]
    line = ol.diagnostics.landscape(
        model, directions=1, loss=LOSS, data=data, num_points=4, span=(-1.0, 2.0), seed=3
    )
    assert line.kind == "1d" and len(line.directions) == 1
    (d,) = ol.diagnostics.random_directions(params, 1, seed=3)
    for a, b in zip(jax.tree.leaves(line.directions[0]), jax.tree.leaves(d), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for alpha, value in zip(line.coords[0], line.values, strict=True):
        expected = direct_loss(model, combine(params, [alpha], [d]), data)
        assert value == pytest.approx(expected, rel=1e-5)
    assert line.values.argmin() in (1, 2) or line.values[1] < line.values[-1]


def test_2d_grid_shape_orientation_and_values(data):
    model = make_model(0)
    params = ol.nn.functional(model)[1]
    grid = ol.diagnostics.landscape(
        model, directions=2, loss=LOSS, data=data, num_points=3, span=(-1.0, 2.0), seed=1
    )
    assert grid.kind == "2d" and grid.values.shape == (3, 3)
    alphas, betas = grid.coords
    np.testing.assert_allclose(alphas, [-1.0, 0.5, 2.0])
    np.testing.assert_allclose(betas, alphas)
    delta, eta = grid.directions
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            expected = direct_loss(model, combine(params, [a, b], [delta, eta]), data)
            assert grid.values[i, j] == pytest.approx(expected, rel=1e-5), (i, j)
    assert not np.allclose(grid.values, grid.values.T, rtol=1e-3)  # the two axes differ


def test_own_directions_are_used_as_given_and_chunking_does_not_change_values(data, rng):
    model = make_model(0)
    params = ol.nn.functional(model)[1]
    dirs = tuple(
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        for _ in range(2)
    )
    grid = ol.diagnostics.landscape(
        model, directions=dirs, loss=LOSS, data=data, num_points=3, span=(-0.1, 0.1)
    )
    chunked = ol.diagnostics.landscape(
        model,
        directions=dirs,
        loss=LOSS,
        data=data,
        num_points=3,
        span=(-0.1, 0.1),
        chunk_size=2,
    )
    np.testing.assert_allclose(chunked.values, grid.values, rtol=1e-6)
    expected = direct_loss(model, combine(params, [-0.1, 0.1], dirs), data)
    assert grid.values[0, 2] == pytest.approx(expected, rel=1e-5)
    one = ol.diagnostics.landscape(
        model, directions=dirs[0], loss=LOSS, data=data, num_points=3, span=(-0.1, 0.1)
    )
    np.testing.assert_allclose(one.values, grid.values[:, 1], rtol=1e-6)
    # A direction may also be given as a model: its parameters (here, the model itself).
    towards_self = ol.diagnostics.landscape(
        model, directions=model, loss=LOSS, data=data, num_points=2, span=(0.0, 1.0)
    )
    doubled = jax.tree.map(lambda p: 2 * p, params)
    assert towards_self.values[1] == pytest.approx(direct_loss(model, doubled, data), rel=1e-5)


def test_batched_evaluation_equals_full_batch(data):
    """20 rows in batches of 6: the last batch is padded and masked."""
    model = make_model(0)
    kwargs = dict(directions=1, loss=LOSS, num_points=3, seed=2)
    full = ol.diagnostics.landscape(model, data=data, **kwargs)
    batched = ol.diagnostics.landscape(model, data=data, batch_size=6, **kwargs)
    np.testing.assert_allclose(batched.values, full.values, rtol=1e-5)
    dataset = types.SimpleNamespace(x_train=data[0], y_train=data[1])  # an optlab.data dataset
    np.testing.assert_allclose(
        ol.diagnostics.landscape(model, data=dataset, **kwargs).values, full.values, rtol=1e-6
    )


# --- filter normalization --------------------------------------------------------------------


def numpy_filter_normalize(direction, params, ignore_bias_bn=True):
    """Li et al.'s rule per leaf, in float64: each output unit (last axis) rescaled to the norm
    of the same unit of the weights; leaves with ndim <= 1 zeroed (or copied)."""
    out = {}
    for k, p in params.items():
        d, p = np.asarray(direction[k], np.float64), np.asarray(p, np.float64)
        if p.ndim <= 1:
            out[k] = np.zeros_like(p) if ignore_bias_bn else p
            continue
        flat_d, flat_p = d.reshape(-1, p.shape[-1]), p.reshape(-1, p.shape[-1])
        scale = np.linalg.norm(flat_p, axis=0) / (np.linalg.norm(flat_d, axis=0) + 1e-10)
        out[k] = d * scale
    return out


@pytest.mark.parametrize("ignore_bias_bn", [True, False])
def test_filter_normalize_matches_numpy(rng, ignore_bias_bn):
    shapes = {"dense": (6, 4), "conv": (3, 3, 2, 5), "stack": (2, 3, 4), "bias": (4,), "s": ()}
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    direction = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    out = ol.diagnostics.filter_normalize(direction, params, ignore_bias_bn=ignore_bias_bn)
    expected = numpy_filter_normalize(direction, params, ignore_bias_bn)
    for k in shapes:
        assert out[k].shape == shapes[k] and out[k].dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(out[k]), expected[k], rtol=1e-5, atol=1e-7)
    # Each Dense output unit's column now has its weights' norm.
    np.testing.assert_allclose(
        np.linalg.norm(out["dense"], axis=0), np.linalg.norm(params["dense"], axis=0), rtol=1e-5
    )


def test_random_directions_are_seeded_filter_normalized_gaussians():
    params = ol.nn.functional(make_model(0, norm="layer"))[1]
    d1, d2 = ol.diagnostics.random_directions(params, 2, seed=7)
    again = ol.diagnostics.random_directions(params, 2, seed=7)
    other = ol.diagnostics.random_directions(params, 1, seed=8)[0]
    leaves = [jax.tree.leaves(t) for t in (d1, d2, params, again[0], other)]
    for a, b, p, a2, o in zip(*leaves, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
        if p.ndim <= 1:  # biases, LayerNorm scale and offset: not perturbed
            assert not np.any(np.asarray(a)) and not np.any(np.asarray(b))
            continue
        np.testing.assert_allclose(np.linalg.norm(a, axis=0), np.linalg.norm(p, axis=0), rtol=1e-5)
        assert not np.allclose(a, b) and not np.allclose(a, o)
        assert np.corrcoef(np.ravel(a), np.ravel(b))[0, 1] < 0.9


# --- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(), ValueError, "exactly one of params_b .* got neither"),
        (dict(directions=1, params_b="B"), ValueError, "exactly one of params_b .* got both"),
        (dict(directions=3), ValueError, "directions must be 1 or 2"),
        (dict(directions=({}, {}, {})), ValueError, "one or two trees"),
        (dict(params_b={"head": {}}), ValueError, "params_b must have the structure"),
        (dict(directions=1, num_points=1), ValueError, "num_points must be an integer >= 2"),
        (dict(directions=1, span=(1.0, -1.0)), ValueError, "span must be finite with low"),
        (dict(directions=1, span="ab"), ValueError, "span must be"),
        (dict(directions=1, data=np.zeros(3)), TypeError, "data must be"),
        (dict(directions=1, loss=3), TypeError, "loss must be a function"),
        (dict(directions=1, model=3), TypeError, "model must be an nnx module"),
        (
            dict(directions=1, batch_size=6, loss=lambda out, y: jnp.mean(out)),
            ValueError,
            "loss must return per-example values",
        ),
    ],
)
def test_bad_arguments(kwargs, error, match, data):
    model = make_model(0)
    if kwargs.get("params_b") == "B":
        kwargs["params_b"] = ol.nn.functional(model)[1]
    args = dict(model=model, loss=LOSS, data=data, num_points=2)
    with pytest.raises(error, match="^landscape: .*" + match):
        ol.diagnostics.landscape(**{**args, **kwargs})


def test_wrongly_shaped_direction_is_named(data):
    model = make_model(0)
    params = ol.nn.functional(model)[1]
    bad = jax.tree.map(jnp.zeros_like, params)
    bad["head"]["kernel"] = jnp.zeros((2, 2))
    with pytest.raises(ValueError, match=r"directions\[0\]\['head'\]\['kernel'\] has shape"):
        ol.diagnostics.landscape(model, directions=bad, loss=LOSS, data=data)


# --- plot ------------------------------------------------------------------------------------


def test_plot_1d_draws_the_values_and_marks_the_end_points():
    alphas = np.linspace(-0.5, 1.5, 5)
    line = ol.diagnostics.Landscape("interpolation", (alphas,), alphas**2 + 1, (), None)
    ax = ol.diagnostics.plot_landscape(line, log=True).axes[0]
    (curve,) = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 5]
    np.testing.assert_allclose(curve.get_xydata(), np.stack([alphas, alphas**2 + 1], 1))
    marks = sorted(ln.get_xdata()[0] for ln in ax.get_lines() if ln is not curve)
    assert marks == [0.0, 1.0]
    assert ax.get_yscale() == "log" and ax.get_title() == "linear interpolation"


def test_plot_2d_contours_follow_the_ij_orientation():
    """values[i, j] depends on alphas[i] only, so every contour is a vertical line."""
    alphas = np.linspace(-1.0, 1.0, 9)
    betas = np.linspace(-2.0, 2.0, 9)
    values = np.repeat((alphas**2)[:, None], 9, axis=1)
    grid = ol.diagnostics.Landscape("2d", (alphas, betas), values, (), None)
    ax = ol.diagnostics.plot_landscape(grid, levels=5, title="t").axes[0]
    paths = [p for p in ax.collections[0].get_paths() if len(p.vertices)]
    assert paths
    for path in paths:
        for segment in path.to_polygons(closed_only=False):
            assert np.ptp(segment[:, 0]) < 1e-9  # constant alpha along the line
    assert ax.get_ylim() == (-2.0, 2.0) and ax.get_title() == "t"


def test_plot_rejects_other_objects():
    with pytest.raises(TypeError, match="plot_landscape: result must be"):
        ol.diagnostics.plot_landscape(np.zeros(3))
