"""Diagnostics: per-layer statistics inside the compiled step, verdicts, optimizer trajectories
on test surfaces and loss landscapes.

The layer above :mod:`optlab.train`: it may use every layer below it. :class:`Monitor` records
per-layer activation, gradient and update statistics inside ``fit``'s compiled step
(``fit(..., diagnostics=Monitor())``; :func:`activation_stats` and :func:`gradient_stats` give
the same numbers for one's own loop); :func:`diagnose` turns a history into findings and
:func:`plot_diagnostics` draws them. ``ol.diagnostics.surfaces`` holds the test functions
(:func:`~optlab.diagnostics.surfaces.ravine`, :func:`~optlab.diagnostics.surfaces.saddle`,
...); :func:`trajectories` runs optimizers on them in one compiled program and
:func:`plot_trajectories` draws the lectures' picture; :func:`landscape` evaluates a model's
loss along an interpolation or filter-normalized random directions and :func:`plot_landscape`
draws it. Plots return matplotlib ``Figure`` objects made without ``pyplot`` (no backend is
switched, nothing is left open).
"""

from optlab.diagnostics import surfaces as surfaces
from optlab.diagnostics import zoo as zoo
from optlab.diagnostics.landscape import Landscape as Landscape
from optlab.diagnostics.landscape import filter_normalize as filter_normalize
from optlab.diagnostics.landscape import landscape as landscape
from optlab.diagnostics.landscape import plot_landscape as plot_landscape
from optlab.diagnostics.landscape import random_directions as random_directions
from optlab.diagnostics.monitor import ActivationStats as ActivationStats
from optlab.diagnostics.monitor import GradientStats as GradientStats
from optlab.diagnostics.monitor import Monitor as Monitor
from optlab.diagnostics.monitor import activation_stats as activation_stats
from optlab.diagnostics.monitor import gradient_stats as gradient_stats
from optlab.diagnostics.plots import plot_diagnostics as plot_diagnostics
from optlab.diagnostics.surfaces import Surface as Surface
from optlab.diagnostics.trajectories import Trajectories as Trajectories
from optlab.diagnostics.trajectories import plot_trajectories as plot_trajectories
from optlab.diagnostics.trajectories import trajectories as trajectories
from optlab.diagnostics.verdicts import Finding as Finding
from optlab.diagnostics.verdicts import diagnose as diagnose

__all__ = [
    "ActivationStats",
    "GradientStats",
    "Finding",
    "Landscape",
    "Monitor",
    "Surface",
    "Trajectories",
    "activation_stats",
    "diagnose",
    "filter_normalize",
    "gradient_stats",
    "plot_diagnostics",
    "landscape",
    "plot_landscape",
    "plot_trajectories",
    "random_directions",
    "surfaces",
    "trajectories",
    "zoo",
]
