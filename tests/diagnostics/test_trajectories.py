"""trajectories(): paths against a plain Python loop, one compilation, the lectures' claims;
plot_trajectories(): what is drawn, and the GIF."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

import optlab as ol
from optlab.diagnostics import surfaces
from tests.diagnostics import reference as ref

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts XLA backend compilations while active (jax.monitoring's compile event)."""

    def __init__(self):
        self.count = 0

    def _listener(self, event, duration, **kwargs):
        if event == COMPILE_EVENT:
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listener)


def python_loop(tx, grad, x0, steps):
    """The reference: a plain eager loop of tx.update / apply_updates, gradients from the
    NumPy formula."""
    x = jnp.asarray(x0, jnp.float64)
    state = tx.init(x)
    path = [np.asarray(x)]
    for _ in range(steps):
        g = jnp.asarray(grad(np.asarray(x)), jnp.float64)
        updates, state = tx.update(g, state, x)
        x = ol.apply_updates(x, updates)
        path.append(np.asarray(x))
    return np.stack(path)


OPTIMIZERS = {
    "sgd": ol.sgd(1e-3),
    "momentum": ol.sgd(1e-3, momentum=0.9),
    "nesterov": ol.sgd(1e-3, momentum=0.9, nesterov=True),
    "adagrad": ol.adagrad(0.1),
    "rmsprop": ol.rmsprop(0.01),
    "adam": ol.adam(0.05),
    "optax-adam": optax.adam(0.05),
    "optax-momentum": optax.sgd(1e-3, momentum=0.9),
}


@pytest.mark.parametrize(
    "surface, grad, value",
    [
        (surfaces.rosenbrock(), ref.rosenbrock_grad, ref.rosenbrock),
        (surfaces.beale(), ref.beale_grad, ref.beale),
    ],
    ids=["rosenbrock", "beale"],
)
def test_paths_equal_a_plain_python_loop(surface, grad, value, x64):
    steps = 25
    result = ol.diagnostics.trajectories(OPTIMIZERS, surface, steps=steps)
    assert list(result.paths) == list(OPTIMIZERS) and result.steps == steps
    for name, tx in OPTIMIZERS.items():
        expected = python_loop(tx, grad, surface.x0, steps)
        assert result.paths[name].shape == (steps + 1, 2)
        assert result.paths[name].dtype == np.float64
        # Same float64 arithmetic; only XLA's fusion of the compiled scan differs.
        np.testing.assert_allclose(result.paths[name], expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            result.values[name], [value(p) for p in expected], rtol=1e-9, atol=1e-12
        )


def test_optax_and_optlab_adam_trace_the_same_path(x64):
    result = ol.diagnostics.trajectories(
        {"optlab": ol.adam(0.05), "optax": optax.adam(0.05)},
        surfaces.himmelblau(),
        x0=np.array([-0.5, 0.0]),
        steps=40,
    )
    # Two implementations of one formula in float64: rounding differences only.
    np.testing.assert_allclose(result.paths["optlab"], result.paths["optax"], rtol=1e-9)


def test_all_optimizers_compile_once():
    txs = {"sgd": ol.sgd(0.01), "adam": ol.adam(0.1), "optax": optax.rmsprop(0.01)}
    surface = surfaces.beale()
    with CompileCounter() as counter:
        ol.diagnostics.trajectories(txs, surface, steps=7)
    assert counter.count == 1


def test_default_dtype_is_float32_and_integer_start_accepted():
    result = ol.diagnostics.trajectories(
        {"sgd": ol.sgd(0.1)}, surfaces.saddle(), x0=np.array([1, 0]), steps=3
    )
    assert result.paths["sgd"].dtype == np.float32
    np.testing.assert_allclose(result.paths["sgd"][:, 0], 0.8 ** np.arange(4), rtol=1e-6)


def test_plain_function_and_higher_dimensions():
    """Any scalar function of a vector; the gradient step matches the closed form."""
    result = ol.diagnostics.trajectories(
        {"gd": ol.sgd(0.25)}, lambda x: jnp.sum(x**2), x0=[1.0, -2.0, 4.0], steps=3
    )
    assert result.surface is None
    # x <- x - 0.25 * 2x = x / 2
    np.testing.assert_allclose(result.paths["gd"], np.outer(0.5 ** np.arange(4), [1, -2, 4]))
    np.testing.assert_allclose(result.values["gd"], 21.0 * 0.25 ** np.arange(4))


def test_line_search_methods_get_their_extra_arguments():
    """L-BFGS needs value, grad and value_fn: it solves Rosenbrock from (-1.2, 1)."""
    result = ol.diagnostics.trajectories({"lbfgs": ol.lbfgs()}, surfaces.rosenbrock(), steps=60)
    np.testing.assert_allclose(result.paths["lbfgs"][-1], [1.0, 1.0], atol=1e-3)


# --- the lectures' claims --------------------------------------------------------------------


def _steps_to_escape(path, radius=1.0):
    out = np.flatnonzero(np.abs(path[:, 1]) > radius)
    return int(out[0]) if out.size else None


@pytest.mark.parametrize("lr", [0.02, 0.05])
def test_saddle_momentum_escapes_faster_than_sgd(lr):
    """Started next to the stable manifold (the x axis), SGD's y grows by (1 + 2 lr) per step;
    momentum (same lr) multiplies it by the larger root of r^2 - (1 + rho + 2 lr) r + rho."""
    s = surfaces.saddle()
    result = ol.diagnostics.trajectories(
        {"sgd": ol.sgd(lr), "momentum": ol.sgd(lr, momentum=0.9)}, s, steps=400
    )
    sgd_escape = _steps_to_escape(result.paths["sgd"])
    momentum_escape = _steps_to_escape(result.paths["momentum"])
    # SGD's escape time in closed form: y0 (1 + 2 lr)^t > 1.
    assert sgd_escape == int(np.floor(np.log(1 / s.x0[1]) / np.log(1 + 2 * lr))) + 1
    assert momentum_escape < 0.7 * sgd_escape
    # Before escaping, SGD sits next to the saddle point for many steps.
    near = np.linalg.norm(result.paths["sgd"], axis=1) < 0.1
    assert near.sum() > 0.3 * sgd_escape


def test_ravine_sgd_zigzags_across_and_crawls_along():
    """SGD with lr * kappa > 1 flips the steep coordinate's sign at every step (the factor
    1 - lr kappa is negative) and never overshoots along the shallow one (factor 1 - lr);
    momentum overshoots the minimum; RMSProp and Adam zig-zag far less."""
    s = surfaces.ravine(condition=50.0)
    lr = 0.038
    result = ol.diagnostics.trajectories(
        {
            "sgd": ol.sgd(lr),
            "momentum": ol.sgd(0.02, momentum=0.9),
            "rmsprop": ol.rmsprop(0.2),
            "adam": ol.adam(0.2),
        },
        s,
        steps=60,
    )
    sgd = result.paths["sgd"]
    t = np.arange(61)
    np.testing.assert_allclose(sgd[:, 0], s.x0[0] * (1 - lr) ** t, rtol=1e-4)
    np.testing.assert_allclose(sgd[:, 1], s.x0[1] * (1 - lr * 50.0) ** t, rtol=1e-4, atol=1e-7)

    def sign_changes(v):
        return int(np.sum(np.sign(v[1:]) * np.sign(v[:-1]) < 0))

    assert sign_changes(sgd[:, 1]) == 60
    assert sign_changes(sgd[:, 0]) == 0 and sgd[-1, 0] < -0.5  # still far from the minimum
    assert sign_changes(result.paths["momentum"][:, 0]) >= 1  # overshoots x = 0
    assert result.paths["momentum"][:, 0].max() > 1.0
    # Distance travelled across the ravine: SGD's is sum_t 1.5 * 1.9 * 0.9^t; RMSProp
    # and Adam head down once (1.5) with at most small wiggles.
    np.testing.assert_allclose(np.abs(np.diff(sgd[:, 1])).sum(), 28.5 * (1 - 0.9**60), rtol=1e-5)
    for name in ("rmsprop", "adam"):
        assert np.abs(np.diff(result.paths[name][:, 1])).sum() < 2.5 * s.x0[1], name
        assert result.values[name][-1] < result.values["sgd"][-1], name


def test_plateau_adaptive_methods_cross_it_and_sgd_crawls():
    s = surfaces.plateau()
    result = ol.diagnostics.trajectories(
        {"sgd": ol.sgd(0.038), "adagrad": ol.adagrad(1.0), "adam": ol.adam(0.2)}, s, steps=60
    )
    assert result.values["sgd"][-1] > 0.99
    assert np.linalg.norm(result.paths["sgd"][-1] - s.x0) < 0.05
    assert result.values["adagrad"][-1] < 0.01
    assert result.values["adam"][-1] < 0.01


# --- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(optimizers={}), TypeError, "non-empty dict"),
        (dict(optimizers=ol.sgd(0.1)), TypeError, "non-empty dict"),
        (dict(optimizers={"a": 3}), TypeError, r"optimizers\['a'\] must be a gradient"),
        (dict(optimizers={1: ol.sgd(0.1)}), TypeError, "name must be a str"),
        (dict(surface=3), TypeError, "surface must be"),
        (dict(x0=[1.0, 2.0, 3.0]), ValueError, "x0 must have 2 coordinates"),
        (dict(x0=[[1.0, 2.0]]), ValueError, "x0 must be a vector"),
        (dict(x0=[1.0, np.inf]), ValueError, "x0 must be finite"),
        (dict(steps=0), ValueError, "steps must be an integer >= 1"),
        (dict(steps=2.0), ValueError, "steps must be an integer >= 1"),
        (dict(surface=lambda x: x), ValueError, "x0 is required"),
        (dict(surface=lambda x: x, x0=[1.0, 2.0]), ValueError, "must return a scalar"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = dict(optimizers={"sgd": ol.sgd(0.1)}, surface=surfaces.saddle(), steps=2)
    with pytest.raises(error, match="^trajectories: .*" + match):
        ol.diagnostics.trajectories(**{**args, **kwargs})


# --- plots -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ravine_result():
    return ol.diagnostics.trajectories(
        {"sgd": ol.sgd(0.038), "momentum": ol.sgd(0.02, momentum=0.9)},
        surfaces.ravine(),
        steps=12,
    )


def test_plot_draws_every_path_start_and_minimum(ravine_result):
    fig = ol.diagnostics.plot_trajectories(ravine_result, resolution=30)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    for name, path in ravine_result.paths.items():
        np.testing.assert_allclose(lines[name].get_xydata(), path)
    np.testing.assert_allclose(lines["start"].get_xydata(), [surfaces.ravine().x0])
    np.testing.assert_allclose(lines["minimum"].get_xydata(), [[0.0, 0.0]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["sgd", "momentum", "start", "minimum"]
    assert ax.get_xlim() == (-9.0, 4.0) and ax.get_ylim() == (-2.5, 2.5)
    assert ax.get_title() == "ravine (condition 50), 12 steps"


def test_contour_levels_are_log_spaced_where_the_surface_spans_decades(ravine_result):
    def levels(**kwargs):
        fig = ol.diagnostics.plot_trajectories(ravine_result, resolution=30, levels=12, **kwargs)
        return np.asarray(fig.axes[0].collections[0].levels)

    log = levels()
    ratios = log[1:] / log[:-1]
    assert len(log) == 12 and log[0] > 0
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)  # geometric
    assert log[-1] / log[0] > 1e3
    linear = levels(log_levels=False)
    steps = np.diff(linear)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-6)  # arithmetic


def test_plot_on_given_axes_and_with_another_domain(ravine_result):
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(1, 2)
    out = ol.diagnostics.plot_trajectories(
        ravine_result, ax=axes[1], domain=((-1, 1), (-1, 1)), resolution=20, title="zoom"
    )
    assert out is fig
    assert axes[1].get_xlim() == (-1.0, 1.0) and axes[1].get_title() == "zoom"
    assert not axes[0].get_lines()


def test_saddle_plot_marks_the_saddle_point_and_uses_linear_levels():
    result = ol.diagnostics.trajectories({"sgd": ol.sgd(0.05)}, surfaces.saddle(), steps=5)
    ax = ol.diagnostics.plot_trajectories(result, resolution=20, levels=9).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["saddle point"].get_xydata(), [[0.0, 0.0]])
    assert "minimum" not in lines
    levels = np.asarray(ax.collections[0].levels)
    assert levels.min() < 0 < levels.max()  # heights below and above the saddle


def test_gif_is_written_with_one_frame_per_step_and_never_overwritten(tmp_path, ravine_result):
    short = ol.diagnostics.trajectories({"sgd": ol.sgd(0.038)}, surfaces.ravine(), steps=3)
    target = tmp_path / "paths.gif"
    fig = ol.diagnostics.plot_trajectories(short, resolution=20, gif=target, fps=5)
    assert fig.axes
    with Image.open(target) as im:
        assert im.format == "GIF" and im.n_frames == 4  # the start and 3 steps
        assert im.info["duration"] == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paths.gif"]  # no partial file left
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match=r"plot_trajectories: .*paths\.gif.* exists"):
        ol.diagnostics.plot_trajectories(ravine_result, resolution=20, gif=target)
    assert target.read_bytes() == before
    ol.diagnostics.plot_trajectories(
        ravine_result, resolution=20, gif=target, max_frames=5, overwrite=True
    )
    with Image.open(target) as im:
        assert im.n_frames == 5  # steps 0, 3, 6, 9, 12 of 12


def test_plot_rejects_what_it_cannot_draw(ravine_result):
    result3d = ol.diagnostics.trajectories({"sgd": ol.sgd(0.01)}, surfaces.rosenbrock(3), steps=2)
    with pytest.raises(ValueError, match="plot_trajectories: only 2-D trajectories"):
        ol.diagnostics.plot_trajectories(result3d)
    plain = ol.diagnostics.trajectories({"sgd": ol.sgd(0.1)}, lambda x: x @ x, x0=[1.0, 1.0])
    with pytest.raises(TypeError, match="plot_trajectories: surface must be"):
        ol.diagnostics.plot_trajectories(plain)
    assert ol.diagnostics.plot_trajectories(plain, surfaces.saddle(), resolution=10).axes
    with pytest.raises(TypeError, match="plot_trajectories: result must be"):
        ol.diagnostics.plot_trajectories(ravine_result.paths)
    with pytest.raises(ValueError, match="plot_trajectories: levels must be"):
        ol.diagnostics.plot_trajectories(ravine_result, levels=1)
