"""The tests of optax's own suite that fail on purpose when optax is routed to optlab.

Each entry is a test id of the routed run (a glob over the ids of its parametrizations) and
the reason optlab departs from optax there. ``test_optax_suite.py`` fails on any other
failure, and on an entry that no longer fails (so this list stays exact); the README's
compatibility section lists the same entries.

``DESELECTED`` names, the same way, the parametrizations the routed run leaves out because they
are slow (each compiles its own programs) and exercise no code of optlab that a kept
parametrization of the same optax test does not: every routed optimizer still runs every one
of optax's test methods. An entry is matched against the test's id followed by its parameters
as ``optax_routing.described`` writes them (``... (opt_name=adam, opt_kwargs={...},
dtype=float16)``), where ``{a,b}`` matches either alternative; the README's compatibility
section lists these entries too.
"""

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

_DTYPES = (
    "kept: bfloat16 (16-bit floats, the strictest for dtype stability) and complex128 (the "
    "complex code path under jax_enable_x64); float16, float32, float64 and complex64 take "
    "the same code paths as one of them, and float32 runs in every other test"
)
_TOLERANCES = (
    "atol and rtol enter the sufficient-decrease test as one sum, rtol·f(θ) + atol: the kept "
    "cases with both at 1e-4 and both at 0 run each term on and off"
)
_CONFUSED = (
    "kept: one case per parameter dtype with its hyperparameters and value in another dtype "
    "(float16 with bfloat16, bfloat16 with float16, float32 with float64, float64 with "
    "float32), the cases where a dtype can leak into the state; the dropped ones repeat a "
    "dtype pair or give both the same dtype"
)

_OPTAX_PRIVATE = (
    "the test calls optax's private transform._precondition_by_lbfgs, which is not routed: it "
    "runs no optlab code (optlab's own tests check its two-loop recursion against a dense "
    "NumPy L-BFGS matrix); case 0, kept, still runs the method"
)
# The optimizers of optax's alias tests that optlab does not export, so the routing leaves them
# optax's (their update rules are optax's own code; optlab's chain, scale_by_learning_rate,
# add_decayed_weights, ... run inside them): all of them, and those taking complex parameters.
_UNROUTED = (
    "{adabelief,adafactor,adamaxw,adan,fromage,lamb,lars,lion,noisy_sgd,novograd,"
    "optimistic_adam,optimistic_adam_v2,optimistic_gradient_descent,polyak_sgd,radam,rprop,"
    "sign_sgd,signum,sm3,yogi}"
)
_UNROUTED_COMPLEX = "{adabelief,adamaxw,lamb,lars,novograd,optimistic_adam_v2,radam,yogi}"
_UNROUTED_COMPLEX_REASON = (
    "optimizers optlab does not export (not routed: their update rules are optax's own code); "
    "the optlab functions the routed run reaches inside them (chain, scale_by_learning_rate, "
    "add_decayed_weights, scale_by_adam, scale_by_adamax, trace, masked) take their complex "
    "code path in the kept complex cases of the routed optimizers (adam, adamax, adamw, sgd, "
    "...), and their kept float cases still run them through optlab's functions"
)
_UNROUTED_WRAPPED = (
    "optimizers optlab does not export (not routed: their update rules are optax's own code), "
    "tested here by optax's own code around them; the optlab functions inside them (chain, "
    "scale_by_learning_rate, add_decayed_weights, ...) run in this test in the kept cases of "
    "the routed optimizers, and these optimizers still run through optlab's functions in "
    "their kept test_optimization, test_state_shape_dtype_shard_stability, "
    "inject_hyperparams and extra-args cases"
)

DESELECTED: dict[str, str] = {
    "optax/_src/alias_test.py::AliasTest::test_state_shape_dtype_shard_stability* "
    "(*dtype=float16)": _DTYPES,
    "optax/_src/alias_test.py::AliasTest::test_state_shape_dtype_shard_stability* "
    "(*dtype=float32)": _DTYPES,
    "optax/_src/alias_test.py::AliasTest::test_state_shape_dtype_shard_stability* "
    "(*dtype=float64)": _DTYPES,
    "optax/_src/alias_test.py::AliasTest::test_state_shape_dtype_shard_stability* "
    "(*dtype=complex64)": _DTYPES,
    "optax/_src/alias_test.py::AliasTest::test_optimization* "
    "(*target=_setup_parabola, dtype=float32)": (
        "each optimizer still converges on the real (float32) Rosenbrock function and the "
        "complex (complex64) parabola: the real parabola takes the real code path again, on "
        "an easier problem"
    ),
    "optax/_src/alias_test.py::AliasTest::test_optimization* "
    "(*target=_setup_rosenbrock, dtype=complex64)": (
        "the complex (complex64) parabola, kept, runs the complex code path of each optimizer"
    ),
    "optax/_src/alias_test.py::AliasTest::test_gradient_accumulation* (*dtype=float32)": (
        "the bfloat16 case, kept, runs the same accumulation with the stricter dtype"
    ),
    "optax/_src/alias_test.py::AliasTest::test_preserve_dtype* (*dtype=float32)": (
        "float32 is the default dtype: the bfloat16 case, kept, is the one that can fail"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_against_plain_implementation[02-9]": (
        "each case runs the test's Python-loop reference, which compiles anew at every step; "
        "kept: Rosenbrock without scale_init_precond (with it, L-BFGS runs in the kept scipy "
        "comparisons), and optlab's own tests check the two-loop recursion against a dense "
        "NumPy L-BFGS matrix. Cases 2, 3 and 8 "
        "(Himmelblau, Zakharov) would fail on purpose: optlab keeps a curvature pair only when "
        "s·y > eps·‖y‖² (Nocedal & Wright §7.2), the reference keeps pairs of negative "
        "curvature and takes non-descent steps"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_state_shape_dtype_shard_stability[014-9]": (
        _DTYPES + "; both line searches are kept for each kept dtype"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_multiclass_logreg0": (
        "scale_init_precond=True (lbfgs's default) runs in the kept scipy comparisons; "
        "the kept case 1 solves the same problem without it"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_binary_logreg0": (
        "scale_init_precond=True (lbfgs's default) runs in the kept scipy comparisons; "
        "the kept case 1 solves the same problem without it"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_lbfgs_complex0": (
        "complex L-BFGS with the backtracking line search runs in the kept "
        "test_lbfgs_complex_rosenbrock0, with the zoom line search in the kept case 1"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_lbfgs_complex_rosenbrock1": (
        "complex L-BFGS with the zoom line search runs in the kept test_lbfgs_complex1, "
        "with the backtracking line search in the kept case 0"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_preconditioning_by_lbfgs_on_vectors[1-3]": (
        _OPTAX_PRIVATE
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_preconditioning_by_lbfgs_on_trees[1-3]": (
        _OPTAX_PRIVATE
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_against_scipy* (problem_name=himmelblau)": (
        "the same assertions as the kept Rosenbrock case (L-BFGS's minimizer against scipy's "
        "BFGS, its minimum against the known one) on another smooth 2-D problem"
    ),
    "optax/_src/alias_test.py::LBFGSTest::test_against_scipy* (problem_name=zakharov)": (
        "the same assertions as the kept Matyas case (L-BFGS's minimizer and minimum against "
        "the known ones) on a 6-D quartic"
    ),
    "optax/transforms/_accumulation_test.py::AccumulationTest::test_multi_steps_mixed_precision1": (
        "case 0, kept, runs the same grid of parameter and gradient dtypes through MultiSteps "
        "with adam; this case adds mu_dtype=float32, which alias_test's test_explicit_dtype "
        "checks"
    ),
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::test_linesearch* (*seed=1)": (
        "the seed only draws another starting point of the same problem: seed 0, kept, runs "
        "every problem with every setting"
    ),
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::test_linesearch* "
    "(*atol=0.0001, rtol=0.0,*)": _TOLERANCES,
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::test_linesearch* "
    "(*atol=0.0, rtol=0.0001,*)": _TOLERANCES,
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::test_linesearch* "
    "(*slope_rtol=0.0, atol=0.0001, rtol=0.0001,*)": (
        "slope_rtol and the tolerances are terms of one sufficient-decrease inequality, "
        "f(θ + ηd) ≤ f(θ) + slope_rtol·η·∇f(θ)·d + atol + rtol·f(θ): the kept cases run each "
        "term on and off (the slope term with the tolerances on and off, no slope term with "
        "them off) on every problem with every increase factor"
    ),
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::test_dtype_stability[0235-9]": (
        _CONFUSED
    ),
    "optax/_src/linesearch_test.py::BacktrackingLinesearchTest::test_dtype_stability1[0235]": (
        _CONFUSED
    ),
    "optax/_src/linesearch_test.py::ZoomLinesearchTest::test_dtype_stability[0235-9]": _CONFUSED,
    "optax/_src/linesearch_test.py::ZoomLinesearchTest::test_dtype_stability1[0235]": _CONFUSED,
    "optax/_src/alias_test.py::AliasTest::test_optimization* "
    f"(opt_name={_UNROUTED_COMPLEX}, *dtype=complex64)": _UNROUTED_COMPLEX_REASON,
    "optax/_src/alias_test.py::AliasTest::test_state_shape_dtype_shard_stability* "
    f"(opt_name={_UNROUTED_COMPLEX}, *dtype=complex128)": _UNROUTED_COMPLEX_REASON,
    "optax/_src/alias_test.py::AliasTest::test_gradient_accumulation* "
    f"(opt_name={_UNROUTED}, *)": _UNROUTED_WRAPPED,
    "optax/_src/alias_test.py::AliasTest::test_preserve_dtype* "
    f"(opt_name={_UNROUTED}, *)": _UNROUTED_WRAPPED,
}
