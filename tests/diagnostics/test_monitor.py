"""The per-layer statistics (value_stats, activation_stats, gradient_stats) and fit's Monitor
against NumPy float64 recomputations of a one-hidden-layer MLP: forward pass, backpropagation
and Adam's first steps written out by hand; the record saved, reloaded and resumed exactly."""

import itertools

import jax
import numpy as np
import pytest
from flax import nnx

import optlab as ol
from optlab.core.paths import path_str
from optlab.diagnostics import statistics
from optlab.diagnostics.statistics import layer_sums, packed_sums, value_stats
from optlab.train.history import DiagnosticsRecord, History

LOSS = ol.nn.softmax_cross_entropy_with_integer_labels


def np_stats(v, mask, kind):
    """mean, std, dead, saturated, histogram of one layer from the textbook definitions."""
    v = np.asarray(v, np.float64).reshape(len(v), -1)
    real = v[np.asarray(mask) > 0]
    mean, std = real.mean(), real.std()
    dead = np.mean(np.all(real == 0, axis=0)) if kind == "relu" else np.nan
    if kind == "tanh":
        sat = np.mean(np.abs(real) > 0.99)
    elif kind == "sigmoid":
        sat = np.mean((real < 0.01) | (real > 0.99))
    else:
        sat = np.nan
    low, high = {"relu": (0.0, 4.0), "tanh": (-1.0, 1.0), "linear": (-4.0, 4.0)}[kind]
    edges = np.linspace(low, high, 33)
    hist, _ = np.histogram(np.clip(real, low, high), bins=edges)
    return mean, std, dead, sat, hist


KINDS = ("relu", "tanh", "sigmoid")


def test_value_stats_match_numpy():
    """value_stats of each kind against the textbook definitions (one compiled program per
    kind), and of values whose mean is large against their spread (the shifted moments)."""
    rng = np.random.default_rng(1)
    z = rng.normal(scale=3.0, size=(9, 5)).astype(np.float32)
    values = [np.maximum(z, 0), np.tanh(z), 1 / (1 + np.exp(-z))]
    relu = values[0]
    relu[:, 2] = 0.0  # one dead unit
    relu[7, 3] = 1.0  # alive only in a padded row
    relu[:7, 3] = 0.0
    values.append(z + 1000.0)  # a large mean against the spread: a pre-activation
    mask = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0], np.float32)
    stats = jax.jit(value_stats, static_argnames=("role", "kind"))
    for i, kind in enumerate(KINDS):
        v = values[i]
        s = stats(v, mask, role="activation", kind=kind)
        mean, std, dead, sat, _ = np_stats(v, mask, "relu" if kind == "relu" else "tanh")
        if kind == "sigmoid":
            sat = np.mean((v[:7] < 0.01) | (v[:7] > 0.99))
        np.testing.assert_allclose([float(s["mean"]), float(s["std"])], [mean, std], 1e-5)
        if kind == "relu":
            np.testing.assert_allclose(float(s["dead"]), dead, rtol=1e-6)
            assert dead == 0.4
            assert np.isnan(float(s["saturated"]))
        else:
            assert np.isnan(float(s["dead"]))
            np.testing.assert_allclose(float(s["saturated"]), sat, rtol=1e-6)
            assert 0 < sat < 1
        low, high = {"relu": (0.0, 4.0), "tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}[kind]
        expected, _ = np.histogram(np.clip(v[:7], low, high), bins=np.linspace(low, high, 33))
        np.testing.assert_array_equal(np.asarray(s["hist"]), expected)
    real = np.asarray(values[3][:7], np.float64)
    s = stats(values[3], mask, role="preactivation", kind="linear")
    np.testing.assert_allclose([s["mean"], s["std"]], [real.mean(), real.std()], rtol=1e-5)
    assert np.isnan(s["dead"]) and np.isnan(s["saturated"])


def make_model(activation="relu"):
    return ol.nn.MLP(3, (4,), 3, activation=activation, kernel_init="he_normal", rngs=1)


def np_params(model):
    get = lambda p: np.asarray(p[...], np.float64)
    d, h = model.blocks[0].dense, model.head
    return {
        "blocks/0/dense/kernel": get(d.kernel),
        "blocks/0/dense/bias": get(d.bias),
        "head/kernel": get(h.kernel),
        "head/bias": get(h.bias),
    }


def np_forward_backward(p, x, y):
    """Pre-activations, activations, mean cross-entropy and its gradient, in float64."""
    x = np.asarray(x, np.float64)
    z = x @ p["blocks/0/dense/kernel"] + p["blocks/0/dense/bias"]
    h = np.maximum(z, 0)
    logits = h @ p["head/kernel"] + p["head/bias"]
    shifted = logits - logits.max(1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    loss = -np.mean(np.log(prob[np.arange(len(y)), y]))
    d_logits = (prob - np.eye(3)[y]) / len(y)
    d_z = (d_logits @ p["head/kernel"].T) * (z > 0)
    grads = {
        "head/kernel": h.T @ d_logits,
        "head/bias": d_logits.sum(0),
        "blocks/0/dense/kernel": x.T @ d_z,
        "blocks/0/dense/bias": d_z.sum(0),
    }
    return {"z": z, "h": h, "logits": logits}, loss, grads


class NpAdam:
    """Adam(0.01) written out in float64 (optlab's defaults: b1 0.9, b2 0.999, eps 1e-8)."""

    def __init__(self, params):
        self.m = {k: 0 * v for k, v in params.items()}
        self.v = {k: 0 * v for k, v in params.items()}
        self.t = 0

    def step(self, g):
        """The step of each parameter for gradients ``g`` (Adam's count advances)."""
        self.t += 1
        out = {}
        for k in g:
            self.m[k] = 0.9 * self.m[k] + 0.1 * g[k]
            self.v[k] = 0.999 * self.v[k] + 0.001 * g[k] ** 2
            mhat, vhat = self.m[k] / (1 - 0.9**self.t), self.v[k] / (1 - 0.999**self.t)
            out[k] = -0.01 * mhat / (np.sqrt(vhat) + 1e-8)
        return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)
    return x, y


def test_activation_stats_match_numpy(data):
    x, _ = data
    model = make_model()
    stats = ol.diagnostics.activation_stats(model, x)
    assert stats.names == ("blocks/0/act", "blocks/0/dense", "head")
    assert stats.roles == ("activation", "preactivation", "preactivation")
    values, _, _ = np_forward_backward(np_params(model), x, np.zeros(8, int))
    ones = np.ones(8)
    for i, (v, kind) in enumerate(
        [(values["h"], "relu"), (values["z"], "linear"), (values["logits"], "linear")]
    ):
        mean, std, dead, sat, hist = np_stats(v, ones, kind)
        np.testing.assert_allclose([stats.mean[i], stats.std[i]], [mean, std], rtol=1e-5)
        np.testing.assert_allclose([stats.dead[i], stats.saturated[i]], [dead, sat], rtol=1e-6)
        np.testing.assert_allclose(stats.histogram[i], hist / hist.sum(), rtol=1e-6)
    act = stats.select("activation")
    assert act.names == ("blocks/0/act",) and act.histogram.shape == (1, 32)
    assert "blocks/0/act" in str(stats)


def test_activation_stats_mask_ignores_padded_rows(data):
    x, _ = data
    model = make_model("tanh")
    padded = np.concatenate([x, 100 * np.ones((3, 3), np.float32)])
    mask = np.r_[np.ones(8), np.zeros(3)].astype(np.float32)
    a = ol.diagnostics.activation_stats(model, padded, mask=mask)
    b = ol.diagnostics.activation_stats(model, x)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5)
    np.testing.assert_allclose(a.saturated, b.saturated)
    np.testing.assert_allclose(a.histogram, b.histogram, rtol=1e-6)


def test_gradient_stats_match_numpy(data):
    x, y = data
    model = make_model()
    g = ol.diagnostics.gradient_stats(model, LOSS, (x, y))
    _, loss, grads = np_forward_backward(np_params(model), x, y)
    params = np_params(model)
    assert g.names == ("blocks/0/dense/bias", "blocks/0/dense/kernel", "head/bias", "head/kernel")
    np.testing.assert_allclose(g.loss, loss, rtol=1e-5)
    norms = [np.linalg.norm(grads[n]) for n in g.names]
    np.testing.assert_allclose(g.grad_norm, norms, rtol=1e-5)
    rms = [np.sqrt(np.mean(grads[n] ** 2)) for n in g.names]
    np.testing.assert_allclose(g.grad_rms, rms, rtol=1e-5)
    np.testing.assert_allclose(g.param_norm, [np.linalg.norm(params[n]) for n in g.names], 1e-6)
    assert "head/kernel" in str(g)


def test_bad_arguments_are_refused(data):
    with pytest.raises(ValueError, match="Monitor: every must be"):
        ol.diagnostics.Monitor(every=0)
    with pytest.raises(TypeError, match="Monitor: histograms"):
        ol.diagnostics.Monitor(histograms="yes")
    with pytest.raises(TypeError, match="activation_stats: model must be"):
        ol.diagnostics.activation_stats(lambda x: x, data[0])
    with pytest.raises(TypeError, match="fit: diagnostics must be None or a monitor"):
        ol.fit(make_model(), ol.sgd(0.1), data, loss=LOSS, diagnostics=True, progress=False)


def ratio(a, b):
    norm = np.linalg.norm(b)
    return np.linalg.norm(a) / norm if norm > 0 else np.nan


FIT = dict(loss=LOSS, batch_size=8, progress=False, seed=2)
# One transformation object: the runs below that differ only in epochs, checkpoints or
# resumption reuse one compiled epoch (the transformation is a static part of the state).
TX = ol.adam(0.01)
SGD = ol.sgd(0.1)


@pytest.fixture(scope="module")
def monitored(data, tmp_path_factory):
    """Two monitored epochs of Adam, checkpointed: ``(initial parameters, history, folder)``."""
    model = make_model()
    initial = np_params(model)  # fit trains the model in place
    folder = tmp_path_factory.mktemp("checkpoints")
    history, _ = ol.fit(
        model,
        TX,
        data,
        epochs=2,
        callbacks=[ol.callbacks.ModelCheckpoint(folder)],
        diagnostics=ol.diagnostics.Monitor(),
        **FIT,
    )
    return initial, history, folder


def test_fit_records_numpy_statistics_each_epoch(data, monitored):
    """One step per epoch (the whole data in one batch): epoch e's statistics are those of
    the parameters before step e, which NumPy follows through Adam's two steps."""
    p, history, _ = monitored
    x, y = data
    record = history.diagnostics
    assert record.epoch == [1, 2] and list(record["sampled_steps"]) == [1.0, 1.0]
    adam = NpAdam(p)
    names = record.rows("grad_norm")
    for t in (1, 2):
        values, loss, g = np_forward_backward(p, x, y)
        step = adam.step(g)
        col = t - 1
        expect = {
            "grad_norm": [np.linalg.norm(g[n]) for n in names],
            "param_norm": [np.linalg.norm(p[n]) for n in names],
            "update_ratio": [ratio(step[n], p[n]) for n in names],  # NaN for zero biases
            "effective_lr": [ratio(step[n], g[n]) for n in names],
            "grad_rms": [np.sqrt(np.mean(g[n] ** 2)) for n in names],
        }
        for key, want in expect.items():
            np.testing.assert_allclose(record[key][:, col], want, rtol=2e-4, err_msg=key)
        if t == 1:
            np.testing.assert_allclose(record["loss_first"][0], loss, rtol=1e-5)
        mean, std, dead, _, _ = np_stats(values["h"], np.ones(8), "relu")
        assert record.rows("activation_mean") == ["blocks/0/act"]
        np.testing.assert_allclose(record["activation_mean"][0, col], mean, rtol=1e-4)
        np.testing.assert_allclose(record["activation_std"][0, col], std, rtol=1e-4)
        np.testing.assert_allclose(record["activation_dead"][0, col], dead, rtol=1e-6)
        # the histogram counts the first HISTOGRAM_ROWS rows of the (shuffled) batch: the
        # counts of some HISTOGRAM_ROWS of the rows
        rows = ol.diagnostics.monitor.HISTOGRAM_ROWS
        per_row = np.array([np_stats(h[None], [1.0], "relu")[4] for h in values["h"]])
        counts = record["activation_hist"][0, col] * rows * per_row.sum(1)[0]
        assert any(
            np.allclose(per_row[list(pick)].sum(0), counts, atol=1e-4)
            for pick in itertools.combinations(range(8), rows)
        )
        assert record.rows("preactivation_std") == ["blocks/0/dense", "head"]
        np.testing.assert_allclose(
            record["preactivation_std"][:, col],
            [values["z"].std(), values["logits"].std()],
            rtol=1e-4,
        )
        p = {k: p[k] + step[k] for k in p}
    assert record["num_classes"][0] == 3
    np.testing.assert_allclose(record["input_mean"][0], np.mean(x, dtype=np.float64), 1e-5)
    np.testing.assert_array_equal(record["activation_edges"][0, 0], np.linspace(0, 4, 33))


@pytest.mark.parametrize("every, skip", [(1, False), (2, False), (1, True)])
def test_step_statistics_over_several_steps_match_numpy(data, every, skip):
    """An epoch of four Adam steps (batches of 2 rows, sampled every ``every``; with
    ``skip``, the second batch is NaN, so its step is skipped and adds nothing): the step
    norm is the root mean square of the sampled steps' norms, the effective learning rate
    the root of the ratio of their summed squares to the gradients' (NumPy float64, Adam
    written out), the gradient norm the mean of the sampled steps' norms."""
    x, y = data
    if skip:
        x = x.copy()
        x[2:4] = np.nan
    model = make_model()
    p = np_params(model)
    monitor = ol.diagnostics.Monitor(every=every, histograms=False)
    step = ol.make_train_step(LOSS, metrics=(), monitor=monitor)
    state = ol.TrainState.create(model, TX)
    state, logs = ol.train_epoch(step, state, (x.reshape(4, 2, 3), y.reshape(4, 2)))
    record = monitor.unpack(jax.tree.map(np.asarray, logs["monitor"]), state)
    start = {k: np.linalg.norm(v) for k, v in p.items()}
    adam = NpAdam(p)  # its count advances on the applied updates only
    step_sq = {k: [] for k in p}
    grad = {k: [] for k in p}
    for i in range(4):
        if skip and i == 1:
            continue
        _, _, g = np_forward_backward(p, x[2 * i : 2 * i + 2], y[2 * i : 2 * i + 2])
        delta = adam.step(g)
        for k in p:
            if i % every == 0:
                step_sq[k].append(np.sum(delta[k] ** 2))
                grad[k].append(np.linalg.norm(g[k]))
            p[k] = p[k] + delta[k]
    assert float(logs["skipped_steps"]) == float(skip)
    assert record["sampled_steps"] == len(step_sq["head/kernel"]) == (3 if skip else 4 // every)
    for k in p:
        rms = np.sqrt(np.mean(step_sq[k]))
        np.testing.assert_allclose(record["step_norm"][k], rms, rtol=2e-4, err_msg=k)
        lr = np.sqrt(np.sum(step_sq[k]) / np.sum(np.square(grad[k])))
        np.testing.assert_allclose(record["effective_lr"][k], lr, rtol=2e-4, err_msg=k)
        np.testing.assert_allclose(record["grad_norm"][k], np.mean(grad[k]), rtol=2e-4)
        want = rms / start[k] if start[k] > 0 else np.nan
        np.testing.assert_allclose(record["update_ratio"][k], want, rtol=2e-4, err_msg=k)


def test_monitor_does_not_change_training(data, monitored):
    _, history, _ = monitored
    plain, _ = ol.fit(make_model(), TX, data, epochs=2, **FIT)
    assert plain.diagnostics is None
    np.testing.assert_array_equal(plain.history["loss"], history.history["loss"])


def test_every_samples_chunks_of_each_epoch_and_batchnorm_statistics(data):
    """Monitor(every=3) on a BatchNorm MLP: the epoch's steps 0 and 3 sampled (the others run
    the plain step), plain SGD's effective learning rate, the parameter norms at the epoch's
    start with the update ratio over them, the running BatchNorm averages at each epoch's end;
    and the training itself is that of an unmonitored run."""
    x, y = np.tile(data[0], (4, 1)), np.tile(data[1], 4)

    def run(diagnostics):
        model = ol.nn.MLP(3, (4,), 3, norm="batch", rngs=0)
        params = ol.nn.functional(model)[1]
        start = {
            path_str(k): np.linalg.norm(np.asarray(v, np.float64))
            for k, v in jax.tree_util.tree_flatten_with_path(params)[0]
        }
        history, trained = ol.fit(
            model, SGD, (x, y), epochs=2, diagnostics=diagnostics, metrics=(), **FIT
        )
        return start, history, trained

    start, history, trained = run(ol.diagnostics.Monitor(every=3, histograms=False))
    record = history.diagnostics
    # 4 steps per epoch: steps 0 and 3 of each epoch sampled
    assert list(record["sampled_steps"]) == [2.0, 2.0]
    assert "activation_hist" not in record.keys()
    # plain SGD: the effective learning rate is the learning rate itself
    names = record.rows("effective_lr")
    kernels = [i for i, name in enumerate(names) if name.endswith("kernel")]
    assert len(kernels) == 2
    np.testing.assert_allclose(record["effective_lr"][kernels], 0.1, rtol=1e-5)
    np.testing.assert_allclose(record["param_norm"][:, 0], [start[n] for n in names], 1e-6)
    ratio = record["step_norm"][kernels] / record["param_norm"][kernels]
    np.testing.assert_allclose(record["update_ratio"][kernels], ratio, rtol=1e-6)
    assert np.isnan(record["update_ratio"][names.index("head/bias"), 0])  # zero at init
    assert record.rows("bn_mean") == ["blocks/0/norm"]
    norm = trained.blocks[0].norm
    np.testing.assert_allclose(record["bn_mean"][0, -1], np.mean(norm.mean[...]), rtol=1e-6)
    np.testing.assert_allclose(record["bn_var"][0, -1], np.mean(norm.var[...]), rtol=1e-6)
    # the chunked epoch (monitored and plain steps) trains exactly as the unmonitored one
    _, plain, untouched = run(None)
    np.testing.assert_array_equal(plain.history["loss"], history.history["loss"])
    np.testing.assert_array_equal(untouched.head.kernel[...], trained.head.kernel[...])


def test_record_round_trips_exactly(tmp_path, monitored):
    _, history, _ = monitored
    again = History.from_dict(history.to_dict())
    npz = tmp_path / "d.npz"
    history.diagnostics.save_npz(npz)
    for record in (again.diagnostics, DiagnosticsRecord.load_npz(npz)):
        assert record.keys() == history.diagnostics.keys() and record.epoch == [1, 2]
        for key in record.keys():
            np.testing.assert_array_equal(record[key], history.diagnostics[key])
            assert record.rows(key) == history.diagnostics.rows(key)


def test_resumed_run_holds_the_whole_record(data, monitored):
    """Resumed from the fixture's checkpoint of epoch 2, a third epoch: the record equals an
    uninterrupted run's, epoch for epoch (the same compiled epoch runs all three fits)."""
    _, history, folder = monitored
    kwargs = dict(FIT, diagnostics=ol.diagnostics.Monitor())
    straight, _ = ol.fit(make_model(), TX, data, epochs=3, **kwargs)
    resumed, _ = ol.fit(make_model(), TX, data, epochs=3, resume_from=folder, **kwargs)
    assert resumed.diagnostics.epoch == [1, 2, 3]
    for key in straight.diagnostics.keys():
        np.testing.assert_array_equal(resumed.diagnostics[key], straight.diagnostics[key])
        first_two = (
            straight.diagnostics[key][..., :2, :]
            if key.endswith(("_hist", "_edges"))
            else (straight.diagnostics[key][..., :2])
        )
        np.testing.assert_array_equal(first_two, history.diagnostics[key], err_msg=key)


def test_row_subsamples():
    """The histogram counts the first histogram_rows rows, the moments and the saturated
    fraction read the first moment_rows, all weighted by the mask; dead units read every row
    (the monitor's 4 and 32)."""
    rng = np.random.default_rng(3)
    v = np.tanh(2 * rng.normal(size=(6, 5))).astype(np.float32)
    v[:, 1] = 0.0
    v[5, 1] = 0.5  # unit 1 is alive in the last row only
    mask = np.array([1, 0, 1, 1, 1, 1], np.float32)
    stats = jax.jit(value_stats, static_argnames=("role", "kind", "histogram_rows", "moment_rows"))
    s = stats(v, mask, role="activation", kind="tanh", histogram_rows=3, moment_rows=4)
    expected, _ = np.histogram(np.clip(v[[0, 2]], -1, 1), bins=np.linspace(-1, 1, 33))
    np.testing.assert_array_equal(np.asarray(s["hist"]), expected)
    first = np.asarray(v[[0, 2, 3]], np.float64)  # the real rows among the first 4
    np.testing.assert_allclose([s["mean"], s["std"]], [first.mean(), first.std()], rtol=1e-5)
    np.testing.assert_allclose(float(s["saturated"]), np.mean(np.abs(first) > 0.99), rtol=1e-6)
    relu = np.maximum(v, 0)
    s = stats(relu, mask, role="activation", kind="relu", moment_rows=2)
    want = np.mean(np.all(relu[mask > 0] == 0, axis=0))
    assert float(s["dead"]) == want and want < np.mean(np.all(relu[[0, 2]] == 0, axis=0))
    assert ol.diagnostics.monitor.HISTOGRAM_ROWS == 4 and ol.diagnostics.monitor.MOMENT_ROWS == 32


def test_packed_sums_equal_each_entry_alone(monkeypatch):
    """packed_sums lays several entries side by side (every kind, the input, units of any
    shape, masked rows, row subsamples): each entry's sums are those of value_sums on it
    alone, which the tests above hold to NumPy, whether the totals per entry are taken by a
    product with a 0/1 matrix or by a segment sum; layer_sums, packing the small entries and
    reducing the large ones apart, gives the same in the entries' order."""
    rng = np.random.default_rng(4)
    z = rng.normal(scale=2.0, size=(7, 6)).astype(np.float32)
    relu = np.maximum(z, 0)
    relu[:, 0] = 0.0  # a dead unit
    entries = [
        (z[:, :4] + 50.0, "input", "input"),
        (z, "preactivation", "linear"),
        (relu, "activation", "relu"),
        (np.tanh(z).reshape(7, 2, 3), "activation", "tanh"),
        (1 / (1 + np.exp(-3 * z)), "activation", "sigmoid"),
        (z[:, :2] * 0.1, "activation", "gelu"),
    ]
    mask = np.array([1, 1, 1, 1, 1, 0, 0], np.float32)
    rows = dict(histogram_rows=3, moment_rows=4)
    one = jax.jit(statistics.value_sums, static_argnames=("role", "kind", *rows))
    want = [one(values, mask, role=role, kind=kind, **rows) for values, role, kind in entries]
    arrays, labels = [e[0] for e in entries], [e[1:] for e in entries]

    def together(fn):  # one compiled program for all the entries
        def run(vs, m):
            return fn([(v, *lab) for v, lab in zip(vs, labels, strict=True)], m, **rows)

        return jax.jit(run)

    got = together(packed_sums)(arrays, mask)  # the entries' totals by a 0/1 matrix
    monkeypatch.setattr(statistics, "_SEGMENT_MATRIX", 0)  # ... by a segment sum
    scattered = together(packed_sums)(arrays, mask)
    monkeypatch.setattr(statistics, "PACK_BELOW", 30)  # entries of 42 values alone
    split = together(layer_sums)(arrays, mask)
    for sums in (got, scattered, split):
        for i, one in enumerate(want):
            for key, value in one.items():
                np.testing.assert_allclose(sums[key][i], value, rtol=1e-6, atol=1e-6, err_msg=key)


class _Unused(nnx.Module):
    """Two linear layers and one that the forward pass never calls."""

    def __init__(self):
        self.first = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        self.spare = nnx.Linear(4, 4, rngs=nnx.Rngs(1))
        self.last = nnx.Linear(4, 3, rngs=nnx.Rngs(2))

    def __call__(self, x):
        return self.last(jax.nn.relu(self.first(x)))


def test_layer_not_called_records_nan_and_no_counts(data):
    """A plain nnx module's pre-activations: the layer not called in the pass has NaN moments
    and an empty histogram, the others those of NumPy's forward pass."""
    history, _ = ol.fit(
        _Unused(), SGD, data, epochs=1, diagnostics=ol.diagnostics.Monitor(), metrics=(), **FIT
    )
    record = history.diagnostics
    assert record.rows("preactivation_mean") == ["first", "last", "spare"]
    assert np.isnan(record["preactivation_mean"][2, 0]) and np.isnan(
        record["preactivation_std"][2, 0]
    )
    np.testing.assert_array_equal(record["preactivation_hist"][2, 0], np.zeros(32))
    assert record["preactivation_hist"][0, 0].sum() == pytest.approx(1.0)
    x = np.asarray(data[0], np.float64)
    first = _Unused().first  # the parameters before the single step
    z = x @ np.asarray(first.kernel[...], np.float64) + np.asarray(first.bias[...], np.float64)
    np.testing.assert_allclose(
        [record["preactivation_mean"][0, 0], record["preactivation_std"][0, 0]],
        [z.mean(), z.std()],
        rtol=1e-5,
    )


def test_fit_records_saturation_of_tanh_layers(data):
    """A tanh MLP with large weights: the recorded saturated fraction is NumPy's on the
    parameters before the epoch's single step, and the dead fraction does not apply (NaN)."""
    model = ol.nn.MLP(
        3, (4,), 3, activation="tanh", kernel_init=("normal", {"stddev": 3.0}), rngs=5
    )
    p = np_params(model)
    history, _ = ol.fit(model, SGD, data, epochs=1, diagnostics=ol.diagnostics.Monitor(), **FIT)
    record = history.diagnostics
    h = np.tanh(
        np.asarray(data[0], np.float64) @ p["blocks/0/dense/kernel"] + p["blocks/0/dense/bias"]
    )
    want = np.mean(np.abs(h) > 0.99)
    assert 0 < want < 1
    np.testing.assert_allclose(record["activation_saturated"][0, 0], want, rtol=1e-6)
    assert np.isnan(record["activation_dead"][0, 0])
    np.testing.assert_allclose(record["activation_std"][0, 0], h.std(), rtol=1e-5)
