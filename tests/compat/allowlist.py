"""The tests of optax's own suite that fail on purpose when optax is routed to optlab.

Each entry is a test id of the routed run (a glob over the ids of its parametrizations) and
the reason optlab departs from optax there. ``test_optax_suite.py`` fails on any other
failure, and on an entry that no longer fails (so this list stays exact); the README's
compatibility section lists the same entries.
"""

_LBFGS = (
    "optlab's L-BFGS keeps a curvature pair (s, y) only when s·y > eps·‖y‖² (the condition "
    "that keeps its inverse-Hessian estimate positive definite, Nocedal & Wright §7.2); on the "
    "non-convex Himmelblau and Eggholder functions the test's textbook reference keeps pairs "
    "of negative curvature and its iterates take non-descent steps, so the two part ways"
)
_DEGENERATE = (
    "a non-positive transition_steps is refused (ValueError): optax silently returns a "
    "constant schedule holding init_value, which never reaches end_value"
)
_ZERO_RATE = (
    "exponential_decay(decay_rate=0) is refused (ValueError): optax silently returns a "
    "constant schedule holding init_value, where the formula init_value * 0^(t/T) drops to 0"
)
_UNUSED_ARGS = (
    "every optlab transformation ignores the extra arguments it does not read (the protocol), "
    "so a line search can share a chain with a controller that reads metric=; the line search "
    "passes value_fn the extra arguments its signature names, and optax's raises on the others"
)

ALLOWLIST: dict[str, str] = {
    "optax/_src/alias_test.py::LBFGSTest::test_against_plain_implementation2": _LBFGS,
    "optax/_src/alias_test.py::LBFGSTest::test_against_plain_implementation3": _LBFGS,
    "optax/_src/alias_test.py::LBFGSTest::test_against_plain_implementation8": _LBFGS,
    "optax/schedules/_schedule_test.py::PolynomialTest::test_zero_steps_schedule": _DEGENERATE,
    "optax/schedules/_schedule_test.py::ExponentialTest::test_nonvalid_transition_steps*": (
        _DEGENERATE
    ),
    "optax/schedules/_schedule_test.py::ExponentialTest::test_nonvalid_decay_rate*": _ZERO_RATE,
    "optax/schedules/_schedule_test.py::WarmupCosineDecayTest::test_zero_peak_value": (
        "optlab's warmup_cosine_decay_schedule decays from peak_value to end_value as its "
        "formula says, also when peak_value is 0; optax computes the decay as a fraction "
        "end_value / peak_value of the peak, so with a zero peak it stays at 0 and ignores "
        "end_value"
    ),
    "optax/schedules/_inject_test.py::InjectHyperparamsTest::test_hyperparam_default_dtype_bf16": (
        "optlab stores a float hyperparameter as the weakly typed scalar JAX makes of it, so "
        "inject_hyperparams never changes the arithmetic of the optimizer it wraps; optax casts "
        "it to the parameters' dtype by default (in bfloat16, b2=0.999 becomes 1.0 and Adam's "
        "second moment stops moving). hyperparam_dtype= still stores the dtype asked for"
    ),
    "optax/transforms/_clipping_test.py::ClippingTest::test_clip_by_block_rms": (
        "fails with optax itself as installed (0.9999999 against 1.0 to 7 places in float32); "
        "optlab computes optax's formula, u / max(1, rms(u) / threshold), operation for "
        "operation"
    ),
    "optax/transforms/_adding_test.py::AddingTest::test_none_argument": (
        "optlab's add_decayed_weights keeps a step count in its state whatever its coefficient "
        "(a state's structure never depends on whether a hyperparameter is a number or a "
        "schedule), so it reads the state it is given; the test passes the integer 0 as state"
    ),
    "optax/transforms/_combining_test.py::ExtraArgsTest::test_extra_args": (
        "the test gives adam Python integers as parameters and gradients; optlab refuses "
        "integer gradients, naming the leaf (Adam would return integer zeros: issue 11)"
    ),
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::"
    "test_linesearch_raises_on_unused_extra_args": _UNUSED_ARGS,
    "optax/_src/linesearch_test.py::ZoomLinesearchTest::"
    "test_zoom_linesearch_raises_on_unused_extra_args": _UNUSED_ARGS,
}
