"""Issue 11 for the library: every public transformation works on an empty parameter tree,
refuses wrong types and values at construction naming the function and the argument, and
names the differing leaf when the gradients do not fit the state or the parameters.

The public transformations are enumerated from ``optlab.__all__`` (every factory annotated to
return a ``GradientTransformation``), so a new one must be added to ``EXAMPLES`` here."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol


def F(p):
    return jnp.sum(p["w"] ** 2) if "w" in p else jnp.zeros([])


# One working call per public transformation factory, and the extra arguments its update reads.
EXAMPLES = {
    "adadelta": (lambda: ol.adadelta(), {}),
    "adagrad": (lambda: ol.adagrad(0.1), {}),
    "adam": (lambda: ol.adam(0.1), {}),
    "adamax": (lambda: ol.adamax(0.1), {}),
    "adamw": (lambda: ol.adamw(0.1, mask=ol.decay_mask), {}),
    "adaptive_grad_clip": (lambda: ol.adaptive_grad_clip(0.1), {}),
    "add_decayed_weights": (lambda: ol.add_decayed_weights(0.1), {}),
    "add_elastic_net": (lambda: ol.add_elastic_net(0.1, 0.1), {}),
    "add_l1": (lambda: ol.add_l1(0.1), {}),
    "add_noise": (lambda: ol.add_noise(0.1, 0.55, key=0), {}),
    "amsgrad": (lambda: ol.amsgrad(0.1), {}),
    "apply_if_finite": (lambda: ol.apply_if_finite(ol.adam(0.1), 3), {}),
    "bfgs": (lambda: ol.bfgs(), {"linesearch": True}),
    "bold_driver": (lambda: ol.bold_driver(), {"value": 1.0}),
    "chain": (lambda: ol.chain(ol.clip(1.0), ol.sgd(0.1, momentum=0.9)), {}),
    "clip": (lambda: ol.clip(1.0), {}),
    "clip_by_block_rms": (lambda: ol.clip_by_block_rms(1.0), {}),
    "clip_by_global_norm": (lambda: ol.clip_by_global_norm(1.0), {}),
    "clip_by_norm": (lambda: ol.clip_by_norm(1.0), {}),
    "early_stopping": (lambda: ol.early_stopping(), {"value": 1.0}),
    "freeze": (lambda: ol.freeze(lambda p: jax.tree.map(lambda _: True, p)), {}),
    "identity": (lambda: ol.identity(), {}),
    "inject_hyperparams": (lambda: ol.inject_hyperparams(ol.adam)(learning_rate=0.1), {}),
    "keep_params_nonnegative": (lambda: ol.keep_params_nonnegative(), {}),
    "lbfgs": (lambda: ol.lbfgs(), {"linesearch": True}),
    "masked": (lambda: ol.masked(ol.sgd(0.1, momentum=0.9), ol.decay_mask), {}),
    "max_norm": (lambda: ol.max_norm(1.0), {}),
    "nadam": (lambda: ol.nadam(0.1), {}),
    "nadamw": (lambda: ol.nadamw(0.1), {}),
    "named_chain": (lambda: ol.named_chain(("clip", ol.clip(1.0)), ("sgd", ol.sgd(0.1))), {}),
    "newton": (lambda: ol.newton(), {"linesearch": True}),
    "partition": (lambda: ol.partition({"a": ol.adam(0.1)}, lambda p: "a"), {}),
    "project_box": (lambda: ol.project_box(-1.0, 1.0), {}),
    "project_l2_ball": (lambda: ol.project_l2_ball(1.0), {}),
    "project_params": (lambda: ol.project_params(lambda p: p), {}),
    "reduce_on_plateau": (lambda: ol.reduce_on_plateau(), {"value": 1.0}),
    "rmsprop": (lambda: ol.rmsprop(0.1, centered=True, momentum=0.9), {}),
    "scale": (lambda: ol.scale(0.5), {}),
    "scale_by_adadelta": (lambda: ol.scale_by_adadelta(), {}),
    "scale_by_adam": (lambda: ol.scale_by_adam(), {}),
    "scale_by_adamax": (lambda: ol.scale_by_adamax(), {}),
    "scale_by_amsgrad": (lambda: ol.scale_by_amsgrad(), {}),
    "scale_by_backtracking_linesearch": (
        lambda: ol.scale_by_backtracking_linesearch(5, store_grad=True),
        {"linesearch": True},
    ),
    "scale_by_bfgs": (lambda: ol.scale_by_bfgs(), {}),
    "scale_by_lbfgs": (lambda: ol.scale_by_lbfgs(), {}),
    "scale_by_learning_rate": (lambda: ol.scale_by_learning_rate(0.1), {}),
    "scale_by_newton": (lambda: ol.scale_by_newton(), {"linesearch": True}),
    "scale_by_rms": (lambda: ol.scale_by_rms(), {}),
    "scale_by_rss": (lambda: ol.scale_by_rss(), {}),
    "scale_by_schedule": (lambda: ol.scale_by_schedule(lambda n: 0.5), {}),
    "scale_by_stddev": (lambda: ol.scale_by_stddev(), {}),
    "scale_by_zoom_linesearch": (lambda: ol.scale_by_zoom_linesearch(5), {"linesearch": True}),
    "set_to_zero": (lambda: ol.set_to_zero(), {}),
    "sgd": (lambda: ol.sgd(0.1, momentum=0.9, nesterov=True), {}),
    "stateless": (lambda: ol.stateless(lambda u, p: u), {}),
    "trace": (lambda: ol.trace(0.9), {}),
    "with_extra_args_support": (lambda: ol.with_extra_args_support(ol.sgd(0.1)), {}),
    "zero_nans": (lambda: ol.zero_nans(), {}),
    "zero_nonfinite": (lambda: ol.zero_nonfinite(), {}),
}


def _public_transformation_factories():
    names = []
    for name in ol.__all__:
        obj = getattr(ol, name)
        if not inspect.isfunction(obj) or not obj.__module__.startswith(
            ("optlab.core", "optlab.transforms", "optlab.optimizers", "optlab.schedules")
        ):
            continue
        ret = inspect.signature(obj).return_annotation
        if "GradientTransformation" in str(ret) and "Callable" not in str(ret):
            names.append(name)
    return sorted([*names, "inject_hyperparams"])


def test_every_public_transformation_has_an_example():
    assert sorted(EXAMPLES) == _public_transformation_factories()


def _extra(spec, params):
    if not spec.get("linesearch"):
        return {k: v for k, v in spec.items()}
    value, grad = jax.value_and_grad(F)(params)
    return {"value": value, "grad": grad, "value_fn": F}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_empty_parameter_tree(name):
    # {} (a model without parameters, a frozen everything) must work end to end, jitted too.
    make, spec = EXAMPLES[name]
    tx = make()
    params = {}
    state = tx.init(params)
    extra = _extra(spec, params)
    u, state = tx.update({}, state, params, **extra)
    assert u == {}
    u, _ = jax.jit(lambda s: tx.update({}, s, params, **extra))(state)
    assert ol.apply_updates(params, u) == {}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_one_step_on_a_small_tree_stays_finite_and_keeps_dtypes(name):
    make, spec = EXAMPLES[name]
    tx = make()
    params = {"w": jnp.asarray([[0.5, -1.0], [2.0, 0.25]]), "b": jnp.asarray([0.1, -0.2])}
    grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"] ** 2))(params)
    state = tx.init(params)
    u, state = tx.update(grads, state, params, **_extra(spec, params))
    assert jax.tree.structure(u) == jax.tree.structure(params)
    for leaf, p in zip(jax.tree.leaves(u), jax.tree.leaves(params), strict=True):
        assert leaf.shape == p.shape and leaf.dtype == p.dtype
        assert np.all(np.isfinite(np.asarray(leaf)))


# ---------------------------------------------------------------------------------------------
# Wrong types and values, refused at construction


BAD = [
    ("adam-str", lambda: ol.adam("abc"), TypeError, r"adam: learning_rate must be a real number"),
    (
        "adam-none",
        lambda: ol.adam(None),
        TypeError,
        r"adam: learning_rate .*got learning_rate=None",
    ),
    ("adam-list-b1", lambda: ol.adam(0.1, b1=[0.9]), TypeError, r"adam: b1 must be a real number"),
    ("adam-bool-eps", lambda: ol.adam(0.1, eps=True), TypeError, r"adam: eps .*\(bool\)"),
    ("adam-dtype", lambda: ol.adam(0.1, mu_dtype="int"), TypeError, r"adam: mu_dtype must be a"),
    ("adam-nesterov", lambda: ol.adam(0.1, nesterov=1), TypeError, r"adam: nesterov must be True"),
    ("sgd-momentum-str", lambda: ol.sgd(0.1, momentum="abc"), TypeError, r"sgd: momentum must be"),
    ("sgd-momentum-1", lambda: ol.sgd(0.1, momentum=1.0), ValueError, r"momentum must be in"),
    ("trace-above-1", lambda: ol.trace(1.5), ValueError, r"trace: decay must be in \[0, 1\]"),
    ("stddev-decay-0", lambda: ol.scale_by_stddev(decay=0.0), ValueError, r"decay must be in \(0"),
    ("rmsprop-centered-0", lambda: ol.rmsprop(0.1, 0.0, centered=True), ValueError, r"decay"),
    ("rmsprop-flag", lambda: ol.rmsprop(0.1, centered="yes"), TypeError, r"centered must be True"),
    ("cosine-alpha", lambda: ol.cosine_decay_schedule(1.0, 10, 1.5), ValueError, r"alpha must"),
    ("clip-str", lambda: ol.clip("1"), TypeError, r"clip: max_delta must be a real number"),
    ("clip-axis", lambda: ol.clip_by_norm(1.0, axis="0"), TypeError, r"axis must be None, an"),
    ("masked-array", lambda: ol.masked(ol.sgd(0.1), jnp.ones(2)), TypeError, r"mask must be a"),
    ("masked-inner", lambda: ol.masked(ol.sgd, ["*"]), TypeError, r"masked: inner must be a"),
    ("chain-factory", lambda: ol.chain(ol.adam), TypeError, r"chain: transforms\[0\] must be"),
    ("partition-list", lambda: ol.partition([ol.sgd(0.1)], "a"), TypeError, r"partition: trans"),
    ("named-chain", lambda: ol.named_chain(ol.sgd(0.1)), TypeError, r"named_chain: each arg"),
    ("stateless", lambda: ol.stateless(3), TypeError, r"stateless: f must be a function"),
    ("project-fn", lambda: ol.project_params(None), TypeError, r"projection must be a function"),
    ("noise-key", lambda: ol.add_noise(0.1, 0.5, key="k"), TypeError, r"add_noise: key must be"),
    ("finite-errors", lambda: ol.apply_if_finite(ol.sgd(1.0), "3"), TypeError, r"max_consecut"),
    ("plateau-str", lambda: ol.reduce_on_plateau(factor="x"), TypeError, r"factor must be a"),
    ("bold-reject", lambda: ol.bold_driver(reject="no"), TypeError, r"reject must be True"),
    ("zoom-verbose", lambda: ol.scale_by_zoom_linesearch(5, verbose=1), TypeError, r"verbose"),
    ("lbfgs-memory", lambda: ol.lbfgs(memory_size=2.5), ValueError, r"memory_size must be an int"),
    ("lbfgs-search", lambda: ol.lbfgs(linesearch="zoom"), TypeError, r"lbfgs: linesearch must"),
    ("minimize-tol", lambda: ol.minimize(F, {"w": jnp.ones(2)}, tol=None), TypeError, r"tol"),
    ("minimize-fun", lambda: ol.minimize(3, {"w": jnp.ones(2)}), TypeError, r"fun must be a fun"),
    ("inject-tx", lambda: ol.inject_hyperparams(ol.adam(0.1)), TypeError, r"not ol.adam\(1e-3\)"),
    ("inject-dtype", lambda: ol.inject_hyperparams(ol.adam, hyperparam_dtype=3), TypeError, "dt"),
    ("sched-str", lambda: ol.linear_schedule("1", 0.0, 10), TypeError, r"init_value must be a"),
    ("sgdr-dict", lambda: ol.sgdr_schedule({"decay_steps": 3}), TypeError, r"cosine_kwargs must"),
]


@pytest.mark.parametrize(
    ("factory", "error", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_arguments_are_refused_by_name(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_traced_hyperparameters_are_not_checked():
    # vmap over learning rates, including values a concrete check would refuse: traced values
    # are the caller's business (a sweep), and they must not be refused.
    def step(lr):
        tx = ol.adam(lr, b1=lr)
        p = jnp.ones(2)
        u, _ = tx.update(p, tx.init(p), p)
        return u

    out = jax.vmap(step)(jnp.asarray([0.1, 0.5]))
    assert out.shape == (2, 2)


# ---------------------------------------------------------------------------------------------
# Trees: the differing leaf is named


@pytest.mark.parametrize(
    "name", ["adam", "sgd", "rmsprop", "adagrad", "adadelta", "amsgrad", "adamax", "lbfgs"]
)
def test_gradients_unlike_the_state_name_the_leaf(name):
    make, spec = EXAMPLES[name]
    tx = make()
    params = {"w": jnp.ones((3, 2))}
    state = tx.init(params)
    bad = {"w": jnp.ones((1, 2))}  # used to broadcast silently and reshape the parameters
    with pytest.raises(ValueError, match=r"at \['w'\] has shape \(1, 2\)"):
        tx.update(bad, state, params, **_extra(spec, params))
    ints = {"w": jnp.ones((3, 2), jnp.int32)}  # used to give integer zeros
    with pytest.raises(TypeError, match=r"at \['w'\] must be a floating or complex array"):
        tx.update(ints, state, params, **_extra(spec, params))


@pytest.mark.parametrize(
    "tx",
    [
        ol.max_norm(1.0),
        ol.project_box(-1.0, 1.0),
        ol.project_l2_ball(1.0),
        ol.keep_params_nonnegative(),
        ol.adaptive_grad_clip(0.1),
    ],
    ids=["max_norm", "project_box", "project_l2_ball", "keep_params_nonnegative", "agc"],
)
def test_constraints_name_the_differing_path(tx):
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"only in the params: \['b'\]"):
        tx.update({"w": jnp.ones((3, 2))}, tx.init(params), params)
    with pytest.raises(ValueError, match=r"the updates at \['b'\] has shape \(3,\)"):
        tx.update({"w": jnp.ones((3, 2)), "b": jnp.ones(3)}, tx.init(params), params)


def test_apply_updates_names_the_differing_path():
    with pytest.raises(ValueError, match=r"apply_updates: .*only in the parameters: \['b'\]"):
        ol.apply_updates({"w": jnp.ones(2), "b": jnp.ones(1)}, {"w": jnp.ones(2)})


def test_glob_mask_matching_nothing_lists_the_paths():
    params = {"w": jnp.ones(2), "dense": {"bias": jnp.ones(1)}}
    for fn, tx in (("masked", ol.masked(ol.sgd(1.0), ["*kernel"])), ("freeze", ol.freeze("*k*"))):
        with pytest.raises(ValueError, match=rf"{fn}: .* matches no parameter.*'dense/bias', 'w'"):
            tx.init(params)
    tx = ol.partition({"a": ol.sgd(1.0), "b": ol.sgd(2.0)}, {"*kernel": "a", "*": "b"})
    with pytest.raises(ValueError, match=r"label pattern '\*kernel' matches no parameter"):
        tx.init(params)
