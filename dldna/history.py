"""What a training run leaves behind: plain numbers any plot can take, and how the run ended."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

STEP_METRICS = ("loss", "grad_norm", "update_norm", "weight_norm", "lr")
EPOCH_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "time_s")


@dataclass
class History:
    """Per-step and per-epoch records of one run.

    ``steps[name]`` holds one value per optimizer step for each of :data:`STEP_METRICS`; ``epochs[name]``
    one value per finished epoch for :data:`EPOCH_METRICS` (train metrics are running averages over the
    epoch's batches; test metrics are measured on the whole evaluation split after the epoch).
    ``status`` is ``"completed"``, ``"diverged"`` (``diverged_at`` gives the first step whose loss was not
    finite) or ``"stopped"`` (a callback or a cancelled widget ended it). ``extras`` holds what callbacks
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
    def num_steps(self) -> int:
        return len(self.steps["loss"])

    @property
    def final_test_acc(self) -> float:
        """Test accuracy after the last finished epoch (NaN if no epoch finished)."""
        return self.epochs["test_acc"][-1] if self.epochs["test_acc"] else math.nan

    @property
    def best_test_acc(self) -> float:
        return max(self.epochs["test_acc"], default=math.nan)

    def summary(self) -> str:
        """One line: how the run ended, final metrics and time."""
        name = self.config.get("optimizer", "run")
        if self.diverged:
            return f"{name}: diverged at step {self.diverged_at} (loss became non-finite)"
        if not self.epochs["test_acc"]:
            return f"{name}: {self.status} before the first epoch ended"
        return (
            f"{name}: {self.status} {len(self.epochs['test_acc'])} epochs, test acc {self.final_test_acc:.2%}, "
            f"test loss {self.epochs['test_loss'][-1]:.4f}, {self.total_time_s:.1f} s on {self.device}"
        )

    def outcome(self) -> str:
        """How the run ended, as words a sentence can quote: ``"diverged at step 12"``, ``"reached 84.1% test
        accuracy"``. Prose glues this instead of a number that a run which ended otherwise would not have."""
        if self.diverged:
            return f"diverged at step {self.diverged_at}"
        if not self.epochs["test_acc"]:
            return f"was {self.status} before its first epoch ended"
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
