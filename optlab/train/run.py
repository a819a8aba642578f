"""The state of a run of :func:`optlab.fit` beyond the arrays: what callbacks see and what a
checkpoint records.

:class:`Run` is the ``run`` argument of every callback hook: the current
:class:`~optlab.train.state.TrainState` (which a callback may replace), the
:class:`~optlab.train.history.History`, the run's fixed settings (:class:`RunConfig`) and the
flags callbacks set (``stop_training``, ``restored_epoch``). :class:`RunMeta` is the JSON
record written with each checkpoint, so a resumed run continues exactly: the epochs done, the
settings that fix the data order, the history so far and each callback's state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from optlab.train.history import History
from optlab.train.state import TrainState

FORMAT = "optlab.fit/2"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings of a run that fix its data order and steps (an exact resume needs the
    same ones).

    Attributes:
      seed: fixes the data order, the augmentation keys and the state's RNG key.
      batch_size: rows per step.
      drop_remainder: whether the last incomplete batch of each epoch is dropped (else padded
        and masked).
      tx_metric: the validation value passed to every update as ``metric=``, or None.
      skip_nonfinite: whether steps with a non-finite loss or gradient are skipped.
    """

    seed: int
    batch_size: int
    drop_remainder: bool = True
    tx_metric: str | None = None
    skip_nonfinite: bool = True

    # The settings a resumed run must share with the checkpoint (the seed is taken from it).
    MUST_MATCH = ("batch_size", "drop_remainder", "tx_metric", "skip_nonfinite")


@dataclasses.dataclass
class RunMeta:
    """The JSON record saved with each checkpoint of a run (see the module docstring).

    Attributes:
      epoch: the number of completed epochs (the checkpoint folder's name).
      config: the run's :class:`RunConfig`.
      tx_metric_value: the value of ``config.tx_metric`` passed to the next epoch's updates.
      history: :meth:`History.to_dict` of the epochs so far.
      callbacks: each callback's :meth:`~optlab.train.callbacks.Callback.get_state`, by
        :meth:`Run.callback_keys`.
    """

    epoch: int
    config: RunConfig
    tx_metric_value: float | None
    history: dict[str, Any]
    callbacks: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (tagged with the format)."""
        config = dataclasses.asdict(self.config)
        return {
            "format": FORMAT,
            "epoch": self.epoch,
            "config": config,
            "tx_metric_value": self.tx_metric_value,
            "history": self.history,
            "callbacks": self.callbacks,
        }

    @classmethod
    def from_json(cls, record: Any, source: str) -> RunMeta:
        """The inverse of :meth:`to_json`.

        Raises:
          ValueError: the record was not written by :func:`optlab.fit` (or by an older version),
            naming ``source``.
        """
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            found = record.get("format") if isinstance(record, dict) else type(record).__name__
            raise ValueError(
                f"{source} does not hold a checkpoint written by optlab.fit (format {FORMAT!r}, "
                f"found {found!r})"
            )
        fields = {f.name for f in dataclasses.fields(RunConfig)}
        config = RunConfig(**{k: v for k, v in record["config"].items() if k in fields})
        value = record.get("tx_metric_value")
        return cls(
            epoch=int(record["epoch"]),
            config=config,
            tx_metric_value=None if value is None else float(value),
            history=dict(record["history"]),
            callbacks=dict(record.get("callbacks", {})),
        )


class Run:
    """What callbacks see of a running :func:`optlab.fit` (the ``run`` argument of their hooks).

    Attributes:
      state: the current :class:`TrainState` (a callback may replace it).
      history: the :class:`History` so far.
      config: the :class:`RunConfig`.
      epochs: the epoch count asked for (the total, when resuming).
      initial_epoch: the epochs already done when this call started (0, or the checkpoint's).
      callbacks: the callbacks, in the order they are called.
      stop_training: set it to True to stop after the current epoch.
      stop_reason: a short sentence saying why, when a callback stops the run.
      restored_epoch: set by a callback that put an earlier epoch's weights back.
      resumed: whether this run started from a checkpoint.
      tx_metric_value: the value passed as ``metric=`` to the next epoch's updates.
    """

    def __init__(
        self,
        state: TrainState,
        *,
        config: RunConfig,
        epochs: int,
        callbacks: list[Any],
    ):
        self.state = state
        self.config = config
        self.epochs = epochs
        self.callbacks = callbacks
        self.history = History()
        self.initial_epoch = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self.restored_epoch: int | None = None
        self.resumed = False
        self.tx_metric_value: float | None = None

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.config.seed

    @property
    def epoch(self) -> int:
        """The number of completed epochs."""
        return self.history.epoch[-1] if self.history.epoch else self.initial_epoch

    def callback_keys(self) -> list[str]:
        """A stable name per callback (``"EarlyStopping:0"``): its key in checkpoints."""
        seen: dict[str, int] = {}
        keys = []
        for cb in self.callbacks:
            name = type(cb).__name__
            keys.append(f"{name}:{seen.get(name, 0)}")
            seen[name] = seen.get(name, 0) + 1
        return keys

    def meta(self, completed_epochs: int) -> RunMeta:
        """The checkpoint record of the run after ``completed_epochs`` epochs."""
        return RunMeta(
            epoch=completed_epochs,
            config=self.config,
            tx_metric_value=self.tx_metric_value,
            history=self.history.to_dict(),
            callbacks={
                k: cb.get_state()
                for k, cb in zip(self.callback_keys(), self.callbacks, strict=True)
            },
        )

    def stop(self, reason: str) -> None:
        """Stops after the current epoch, saying why (the first reason given is kept)."""
        self.stop_training = True
        if self.stop_reason is None:
            self.stop_reason = reason
