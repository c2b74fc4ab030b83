"""Several seeds of one experiment, and what their spread allows a sentence to say.

One run of a network is one draw: another seed gives other initial weights and another batch order, and the
final accuracy moves by a fraction of a percent or more. A chapter that ranks optimizers or schedules therefore
runs each setting with several seeds (:func:`repeat`), reports the mean and the spread (:class:`Spread`), and
says "X beats Y" only when every seed of X ended above every seed of Y (:func:`separated`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from dldna.config import set_seed
from dldna.history import History


def repeat(run: Callable[[int], History], seeds: int | Sequence[int]) -> list[History]:
    """``run(seed)`` for each seed (``seeds`` given as a count means ``0, 1, ..., seeds - 1``), each started
    after :func:`dldna.set_seed` so that the model built inside ``run`` differs only by the seed. ``run`` should
    pass ``seed=seed`` on to :func:`~dldna.train.fit` so that the batch order changes with it too."""
    chosen = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not chosen:
        raise ValueError("seeds must name at least one seed")
    histories = []
    for seed in chosen:
        set_seed(seed)
        histories.append(run(seed))
    return histories


@dataclass(frozen=True)
class Spread:
    """The values one metric took over seeds: mean, sample standard deviation and range.

    Formats as ``mean ± std`` with the format applied to both, e.g. ``f"{spread:.1%}"`` gives ``84.2% ± 0.3%``.
    """

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation (0 for a single seed)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def __format__(self, spec: str) -> str:
        return f"{format(self.mean, spec)} ± {format(self.std, spec)}"


def final_test_acc(run: History) -> float:
    """Test accuracy after the last epoch; a diverged run counts as 0, not as a missing value."""
    return 0.0 if run.diverged or math.isnan(run.final_test_acc) else run.final_test_acc


def spread(runs: Sequence[History], metric: Callable[[History], float] = final_test_acc) -> Spread:
    """The spread of ``metric`` (by default the final test accuracy) over the seeds ``runs``."""
    if not runs:
        raise ValueError("runs must hold at least one History")
    return Spread(tuple(float(metric(run)) for run in runs))


def separated(higher: Spread, lower: Spread) -> bool:
    """Did every seed of ``higher`` end above every seed of ``lower``? Only then does a page say it did better."""
    return higher.low > lower.high
