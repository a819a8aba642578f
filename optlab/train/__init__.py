"""The training engine: TrainState, compiled train/eval steps, fit, callbacks, checkpoints,
and the trained model as an artifact (evaluate, predict, save_model, load_model).

Layering: imports core, schedules, transforms, data and nn (never cli). Callbacks live here
and in ``optlab.callbacks`` (``ol.callbacks.EarlyStopping``), as ``keras.callbacks`` does.
"""

from optlab.train import callbacks as callbacks
from optlab.train.callbacks import Callback as Callback
from optlab.train.callbacks import CSVLogger as CSVLogger
from optlab.train.callbacks import EarlyStopping as EarlyStopping
from optlab.train.callbacks import LambdaCallback as LambdaCallback
from optlab.train.callbacks import ModelCheckpoint as ModelCheckpoint
from optlab.train.callbacks import MonitorCallback as MonitorCallback
from optlab.train.callbacks import ReduceLROnPlateau as ReduceLROnPlateau
from optlab.train.callbacks import TerminateOnNaN as TerminateOnNaN
from optlab.train.checkpoint import Checkpointer as Checkpointer
from optlab.train.checkpoint import DamagedCheckpointWarning as DamagedCheckpointWarning
from optlab.train.checkpoint import latest_epoch as latest_epoch
from optlab.train.checkpoint import restore_checkpoint as restore_checkpoint
from optlab.train.checkpoint import save_checkpoint as save_checkpoint
from optlab.train.evaluation import evaluate as evaluate
from optlab.train.evaluation import predict as predict
from optlab.train.fit import fit as fit
from optlab.train.history import History as History
from optlab.train.progress import Progress as Progress
from optlab.train.run import Run as Run
from optlab.train.run import RunConfig as RunConfig
from optlab.train.saved_model import load_model as load_model
from optlab.train.saved_model import save_model as save_model
from optlab.train.state import TrainState as TrainState
from optlab.train.step import accuracy as accuracy
from optlab.train.step import evaluate_batches as evaluate_batches
from optlab.train.step import make_eval_step as make_eval_step
from optlab.train.step import make_train_step as make_train_step
from optlab.train.step import train_epoch as train_epoch
