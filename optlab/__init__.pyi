"""The public surface of ``optlab``, written out: every re-export, grouped by area.

Type checkers and IDEs read this stub; ``optlab/__init__.py`` parses it and imports each name
on first use, so this is the one list of the public names (tests/test_public_api.py checks
that ``optlab.__all__`` is exactly these names, sorted). Add a new public name here.
"""

# --- core -----------------------------------------------------------------------------------
from optlab.core.access import get as get
from optlab.core.access import named_values as named_values
from optlab.core.base import EmptyState as EmptyState
from optlab.core.base import GradientTransformation as GradientTransformation
from optlab.core.base import Params as Params
from optlab.core.base import Schedule as Schedule
from optlab.core.base import Updates as Updates
from optlab.core.base import apply_updates as apply_updates
from optlab.core.base import identity as identity
from optlab.core.base import set_to_zero as set_to_zero
from optlab.core.base import stateless as stateless
from optlab.core.combine import MaskedNode as MaskedNode
from optlab.core.combine import MaskedState as MaskedState
from optlab.core.combine import PartitionState as PartitionState
from optlab.core.combine import chain as chain
from optlab.core.combine import freeze as freeze
from optlab.core.combine import masked as masked
from optlab.core.combine import named_chain as named_chain
from optlab.core.combine import partition as partition
from optlab.core.combine import with_extra_args_support as with_extra_args_support
from optlab.core.numerics import global_norm as global_norm

# --- transforms: scaling --------------------------------------------------------------------
from optlab.transforms.scale import ScaleByLearningRateState as ScaleByLearningRateState
from optlab.transforms.scale import ScaleByScheduleState as ScaleByScheduleState
from optlab.transforms.scale import scale as scale
from optlab.transforms.scale import scale_by_learning_rate as scale_by_learning_rate
from optlab.transforms.scale import scale_by_schedule as scale_by_schedule

# --- transforms: clipping, regularization, constraints, noise, wrappers (issue 4) -----------
from optlab.transforms.clipping import ClipByGlobalNormState as ClipByGlobalNormState
from optlab.transforms.clipping import adaptive_grad_clip as adaptive_grad_clip
from optlab.transforms.clipping import clip as clip
from optlab.transforms.clipping import clip_by_block_rms as clip_by_block_rms
from optlab.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from optlab.transforms.clipping import clip_by_norm as clip_by_norm
from optlab.transforms.clipping import unitwise_norm as unitwise_norm
from optlab.transforms.constraints import keep_params_nonnegative as keep_params_nonnegative
from optlab.transforms.constraints import max_norm as max_norm
from optlab.transforms.constraints import project_box as project_box
from optlab.transforms.constraints import project_l2_ball as project_l2_ball
from optlab.transforms.constraints import project_params as project_params
from optlab.transforms.noise import AddNoiseState as AddNoiseState
from optlab.transforms.noise import add_noise as add_noise
from optlab.transforms.regularization import RegularizationState as RegularizationState
from optlab.transforms.regularization import add_decayed_weights as add_decayed_weights
from optlab.transforms.regularization import add_elastic_net as add_elastic_net
from optlab.transforms.regularization import add_l1 as add_l1
from optlab.transforms.regularization import decay_mask as decay_mask
from optlab.transforms.wrappers import ApplyIfFiniteState as ApplyIfFiniteState
from optlab.transforms.wrappers import MultiSteps as MultiSteps
from optlab.transforms.wrappers import MultiStepsState as MultiStepsState
from optlab.transforms.wrappers import ZeroNansState as ZeroNansState
from optlab.transforms.wrappers import apply_if_finite as apply_if_finite
from optlab.transforms.wrappers import skip_large_updates as skip_large_updates
from optlab.transforms.wrappers import skip_not_finite as skip_not_finite
from optlab.transforms.wrappers import zero_nans as zero_nans
from optlab.transforms.wrappers import zero_nonfinite as zero_nonfinite

# --- schedules, inject_hyperparams, controllers (issue 3) -----------------------------------
from optlab.schedules.basic import constant_schedule as constant_schedule
from optlab.schedules.basic import exponential_decay as exponential_decay
from optlab.schedules.basic import inverse_sqrt_schedule as inverse_sqrt_schedule
from optlab.schedules.basic import inverse_time_decay as inverse_time_decay
from optlab.schedules.basic import linear_schedule as linear_schedule
from optlab.schedules.basic import piecewise_constant_schedule as piecewise_constant_schedule
from optlab.schedules.basic import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from optlab.schedules.basic import polynomial_schedule as polynomial_schedule
from optlab.schedules.cosine import cosine_decay_schedule as cosine_decay_schedule
from optlab.schedules.cosine import cosine_onecycle_schedule as cosine_onecycle_schedule
from optlab.schedules.cosine import linear_onecycle_schedule as linear_onecycle_schedule
from optlab.schedules.cosine import sgdr_schedule as sgdr_schedule
from optlab.schedules.cosine import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from optlab.schedules.cyclic import cyclic_schedule as cyclic_schedule
from optlab.schedules.inject import InjectHyperparamsState as InjectHyperparamsState
from optlab.schedules.inject import inject_hyperparams as inject_hyperparams
from optlab.schedules.inject import inject_stateful_hyperparams as inject_stateful_hyperparams
from optlab.schedules.inject import set_hyperparams as set_hyperparams
from optlab.schedules.join import epochs_to_steps as epochs_to_steps
from optlab.schedules.join import join_schedules as join_schedules
from optlab.schedules.warmup import warmup_constant_schedule as warmup_constant_schedule
from optlab.schedules.warmup import (
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)
from optlab.schedules.warmup import warmup_stable_decay_schedule as warmup_stable_decay_schedule
from optlab.transforms.controllers import BoldDriverState as BoldDriverState
from optlab.transforms.controllers import EarlyStoppingState as EarlyStoppingState
from optlab.transforms.controllers import ReduceLROnPlateauState as ReduceLROnPlateauState
from optlab.transforms.controllers import bold_driver as bold_driver
from optlab.transforms.controllers import early_stopping as early_stopping
from optlab.transforms.controllers import reduce_on_plateau as reduce_on_plateau

# --- optimizers: first order (issue 2) ------------------------------------------------------
from optlab.optimizers.adadelta import ScaleByAdaDeltaState as ScaleByAdaDeltaState
from optlab.optimizers.adadelta import adadelta as adadelta
from optlab.optimizers.adadelta import scale_by_adadelta as scale_by_adadelta
from optlab.optimizers.adagrad import ScaleByRssState as ScaleByRssState
from optlab.optimizers.adagrad import adagrad as adagrad
from optlab.optimizers.adagrad import scale_by_rss as scale_by_rss
from optlab.optimizers.adam import ScaleByAdamState as ScaleByAdamState
from optlab.optimizers.adam import ScaleByAmsgradState as ScaleByAmsgradState
from optlab.optimizers.adam import adam as adam
from optlab.optimizers.adam import adamax as adamax
from optlab.optimizers.adam import adamw as adamw
from optlab.optimizers.adam import amsgrad as amsgrad
from optlab.optimizers.adam import nadam as nadam
from optlab.optimizers.adam import nadamw as nadamw
from optlab.optimizers.adam import scale_by_adam as scale_by_adam
from optlab.optimizers.adam import scale_by_adamax as scale_by_adamax
from optlab.optimizers.adam import scale_by_amsgrad as scale_by_amsgrad
from optlab.optimizers.rmsprop import ScaleByRStdDevState as ScaleByRStdDevState
from optlab.optimizers.rmsprop import ScaleByRmsState as ScaleByRmsState
from optlab.optimizers.rmsprop import rmsprop as rmsprop
from optlab.optimizers.rmsprop import scale_by_rms as scale_by_rms
from optlab.optimizers.rmsprop import scale_by_stddev as scale_by_stddev
from optlab.optimizers.sgd import TraceState as TraceState
from optlab.optimizers.sgd import sgd as sgd
from optlab.optimizers.sgd import trace as trace

# --- optimizers: second order, line searches, minimize (issue 5) ----------------------------
from optlab.optimizers.lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from optlab.optimizers.lbfgs import lbfgs as lbfgs
from optlab.optimizers.lbfgs import scale_by_lbfgs as scale_by_lbfgs
from optlab.optimizers.linesearch import BacktrackingLinesearchInfo as BacktrackingLinesearchInfo
from optlab.optimizers.linesearch import (
    ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState,
)
from optlab.optimizers.linesearch import ScaleByZoomLinesearchState as ScaleByZoomLinesearchState
from optlab.optimizers.linesearch import ZoomLinesearchInfo as ZoomLinesearchInfo
from optlab.optimizers.linesearch import (
    scale_by_backtracking_linesearch as scale_by_backtracking_linesearch,
)
from optlab.optimizers.linesearch import scale_by_zoom_linesearch as scale_by_zoom_linesearch
from optlab.optimizers.linesearch import value_and_grad_from_state as value_and_grad_from_state
from optlab.optimizers.minimize import MinimizeResult as MinimizeResult
from optlab.optimizers.minimize import minimize as minimize
from optlab.optimizers.newton import ScaleByBFGSState as ScaleByBFGSState
from optlab.optimizers.newton import ScaleByNewtonState as ScaleByNewtonState
from optlab.optimizers.newton import bfgs as bfgs
from optlab.optimizers.newton import newton as newton
from optlab.optimizers.newton import scale_by_bfgs as scale_by_bfgs
from optlab.optimizers.newton import scale_by_newton as scale_by_newton

# --- train engine (issue 7) ------------------------------------------------------------------
from optlab.train import callbacks as callbacks
from optlab.train.evaluation import evaluate as evaluate
from optlab.train.evaluation import predict as predict
from optlab.train.fit import fit as fit
from optlab.train.history import DiagnosticsRecord as DiagnosticsRecord
from optlab.train.history import History as History
from optlab.train.saved_model import load_model as load_model
from optlab.train.saved_model import save_model as save_model
from optlab.train.state import TrainState as TrainState
from optlab.train.step import make_eval_step as make_eval_step
from optlab.train.step import make_train_step as make_train_step
from optlab.train.step import train_epoch as train_epoch

# --- subpackages -----------------------------------------------------------------------------
from optlab import data as data
from optlab import diagnostics as diagnostics
from optlab import nn as nn
from optlab import tune as tune
