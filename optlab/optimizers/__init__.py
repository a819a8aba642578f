"""First-order optimizers: momentum/Nesterov SGD, AdaGrad, RMSProp, AdaDelta and the Adam family.

One module per family holds the state NamedTuple, the ``scale_by_<algo>`` building block and
the ready-made alias, which only composes building blocks (``adam = chain(scale_by_adam(...),
scale_by_learning_rate(lr))``). Names, arguments and defaults follow optax. The users' names
are re-exported from ``optlab`` (``ol.adam``); :mod:`optlab.optimizers.registry` lists every
optimizer with default hyperparameters for benchmarks, the conformance suite and
``optlab compare``.
"""
