"""Transformations that are not optimizers: scaling, clipping, regularization, constraints,
noise, robustness wrappers and metric-driven controllers."""
