"""What a training run leaves behind: plain numbers any plot can take, and how the run ended.

How a run ended is decided here, once, for :func:`~dldna.train.fit`, :func:`~dldna.train.fit_fast` and
:func:`~dldna.train.sweep` alike (:meth:`History.conclude`). The rules only read what the run recorded; they never
change its numbers.

- **diverged**: a step's loss was not finite (the run stops there); or the mean loss of
  :data:`DIVERGENCE_WINDOW` consecutive steps exceeded :data:`DIVERGENCE_FACTOR` times the first step's loss (a
  blow-up that stays finite: Adam's step is bounded by its learning rate, so at ``lr=1e6`` its loss reaches
  ``1e13`` without overflowing); or the final evaluation loss is not finite or exceeds that same multiple of the
  first loss. The browser trainer uses the same two numbers.
- **learned nothing** (for a cross-entropy loss, ``config["loss"]``, over ``config["classes"]`` classes): after at
  least one epoch the test accuracy is at most :data:`CHANCE_FACTOR` times chance
  (``1/C`` for ``C`` classes) and at most :data:`CHANCE_MARGIN` above it, and the test loss has not fallen below
  :data:`NOTHING_LOSS_FRACTION` times ``ln C``, the cross-entropy of a uniform guess: on FashionMNIST, at most 15 %
  accuracy with a loss of at least 2.07. Such a run is not an error: it finishes and says so.
- **stopped**: a callback (or a cancelled widget) ended the run early, and it did not diverge.
- **completed**: anything else.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

STEP_METRICS = ("loss", "grad_norm", "update_norm", "weight_norm", "lr")
EPOCH_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "time_s")

DIVERGENCE_FACTOR = 100.0
"""A run has diverged once its loss, averaged over :data:`DIVERGENCE_WINDOW` steps, exceeds this many times the
loss of its first step (a run starts near ``ln C``: on FashionMNIST the limit is about 230)."""
DIVERGENCE_WINDOW = 10
"""Steps averaged by the divergence rule, so that a single spike, such as RMSprop's first steps, does not count."""
CHANCE_FACTOR = 1.5
"""A run learned nothing only if its test accuracy is at most this many times chance (15 % for 10 classes) ..."""
CHANCE_MARGIN = 0.05
"""... and at most this far above chance (55 % for 2 classes, where 1.5 times chance would be 75 %) ..."""
NOTHING_LOSS_FRACTION = 0.9
"""... and its test loss is at least this fraction of ``ln C``, the loss of predicting every class equally."""


@dataclass
class History:
    """Per-step and per-epoch records of one run.

    ``steps[name]`` holds one value per optimizer step for each of :data:`STEP_METRICS`; ``epochs[name]``
    one value per finished epoch for :data:`EPOCH_METRICS` (train metrics are running averages over the
    epoch's batches; test metrics are measured on the whole evaluation split after the epoch).
    ``status`` is ``"running"`` until the run ends, then ``"completed"``, ``"learned nothing"``, ``"diverged"``
    (``diverged_at`` gives the step where it happened) or ``"stopped"`` (a callback or a cancelled widget ended it),
    by the rules of this module. ``config["classes"]`` is the number of classes of the data and ``config["loss"]``
    names the loss (``"cross_entropy"`` for the whole cross-entropy family). ``extras`` holds what callbacks
    recorded, keyed by metric name.
    """

    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    steps: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in STEP_METRICS})
    epochs: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in EPOCH_METRICS})
    extras: dict[str, list[Any]] = field(default_factory=dict)
    status: str = "running"
    diverged_at: int | None = None
    steps_per_epoch: int = 0
    total_time_s: float = 0.0

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def learned_nothing(self) -> bool:
        return self.status == "learned nothing"

    @property
    def num_steps(self) -> int:
        return len(self.steps["loss"])

    @property
    def final_test_acc(self) -> float:
        """Test accuracy after the last finished epoch (NaN if no epoch finished)."""
        return self.epochs["test_acc"][-1] if self.epochs["test_acc"] else math.nan

    @property
    def best_test_acc(self) -> float:
        return max(self.epochs["test_acc"], default=math.nan)

    def diverge(self, step: int) -> None:
        """Mark the run diverged at ``step`` (its first step whose loss was not finite, found while training)."""
        self.status, self.diverged_at = "diverged", step

    def conclude(self, *, stopped: bool = False) -> None:
        """Give a run that has ended its status by the rules of this module (``stopped``: a callback ended it).
        A run already marked diverged keeps its status and step; nothing recorded changes."""
        if self.diverged:
            return
        blow_up = self._blow_up_step()
        if blow_up is not None:
            self.diverge(blow_up)
        elif stopped:
            self.status = "stopped"
        elif self._learned_nothing():
            self.status = "learned nothing"
        else:
            self.status = "completed"

    def _blow_up_step(self) -> int | None:
        """The step at which the run's loss blew up while staying finite, or ``None``: the first step ending
        :data:`DIVERGENCE_WINDOW` steps whose mean loss exceeds :data:`DIVERGENCE_FACTOR` times the first loss,
        else the last step when the final evaluation loss is not finite or exceeds that limit."""
        losses = self.steps["loss"]
        if not losses or not losses[0] > 0:
            return None
        limit = DIVERGENCE_FACTOR * losses[0]
        window_sum = 0.0
        for step, loss in enumerate(losses):
            window_sum += loss - (losses[step - DIVERGENCE_WINDOW] if step >= DIVERGENCE_WINDOW else 0.0)
            if step >= DIVERGENCE_WINDOW - 1 and window_sum > limit * DIVERGENCE_WINDOW:
                return step
        final_loss = self.epochs["test_loss"][-1] if self.epochs["test_loss"] else 0.0
        return len(losses) - 1 if not final_loss <= limit else None

    @property
    def _classes(self) -> int | None:
        """The number of classes a cross-entropy run chose among (``None`` for another loss, or when unknown)."""
        classes = self.config.get("classes")
        cross_entropy = self.config.get("loss", "cross_entropy") == "cross_entropy"
        return classes if cross_entropy and isinstance(classes, int) and classes >= 2 else None

    def _learned_nothing(self) -> bool:
        classes = self._classes
        if classes is None or not self.epochs["test_acc"]:
            return False
        chance = 1.0 / classes
        accuracy, loss = self.epochs["test_acc"][-1], self.epochs["test_loss"][-1]
        near_chance = accuracy <= min(CHANCE_FACTOR * chance, chance + CHANCE_MARGIN)
        return near_chance and loss >= NOTHING_LOSS_FRACTION * math.log(classes)

    def divergence_cause(self) -> str:
        """Why a diverged run counts as diverged, in words: ``"the loss became non-finite"``, ..."""
        losses = self.steps["loss"]
        if self.diverged_at is not None and self.diverged_at < len(losses) and not math.isfinite(losses[self.diverged_at]):
            return "the loss became non-finite"
        if self.epochs["test_loss"] and self.diverged_at == len(losses) - 1 and not math.isfinite(self.epochs["test_loss"][-1]):
            return "the test loss became non-finite"
        return f"the loss grew to more than {DIVERGENCE_FACTOR:g} times its first value, {losses[0]:.3g}"

    def _nothing_learned(self) -> str:
        """``"10.0% test accuracy, loss at ln 10"``: what shows that the run learned nothing."""
        classes, loss = self._classes, self.epochs["test_loss"][-1]
        uniform = math.log(classes)
        where = f"loss at ln {classes}" if abs(loss - uniform) <= 0.05 * uniform else f"test loss {loss:.3g}, against ln {classes} = {uniform:.2f}"
        return f"{self.final_test_acc:.1%} test accuracy, {where}"

    def summary(self) -> str:
        """One line: how the run ended, final metrics and time."""
        name = self.config.get("optimizer", "run")
        if self.diverged:
            return f"{name}: diverged at step {self.diverged_at} ({self.divergence_cause()})"
        if not self.epochs["test_acc"]:
            return f"{name}: {self.status} before the first epoch ended"
        ended = f"learned nothing in {len(self.epochs['test_acc'])} epochs ({self._nothing_learned()})" if self.learned_nothing else (
            f"{self.status} {len(self.epochs['test_acc'])} epochs, test acc {self.final_test_acc:.2%}, "
            f"test loss {self.epochs['test_loss'][-1]:.4f}"
        )
        return f"{name}: {ended}, {self.total_time_s:.1f} s on {self.device}"

    def outcome(self) -> str:
        """How the run ended, as words a sentence can quote: ``"diverged at step 12"``, ``"learned nothing (10.0% test
        accuracy, loss at ln 10)"``, ``"reached 84.1% test accuracy"``. Prose glues this instead of a number that a
        run which ended otherwise would not have."""
        if self.diverged:
            return f"diverged at step {self.diverged_at}"
        if not self.epochs["test_acc"]:
            return f"was {self.status} before its first epoch ended"
        if self.learned_nothing:
            return f"learned nothing ({self._nothing_learned()})"
        return f"reached {self.final_test_acc:.1%} test accuracy"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        return cls(**data)

    def to_json(self) -> str:
        """JSON text; non-finite floats are written as ``null`` so any JSON reader accepts it."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return json.dumps(clean(self.to_dict()))
