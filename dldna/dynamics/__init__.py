"""How a training run unfolds, measured: metrics recorded during :func:`dldna.train.fit`, learning-rate schedules
and the range test, gradient clipping, the gradient noise scale, and the debugging checklist as runnable checks.

- :mod:`~dldna.dynamics.metrics`: callbacks (:class:`LayerStats`, :class:`EffectiveLR`, :class:`LossImprovement`,
  :class:`StopAtTarget`, :class:`Sharpness`) and :func:`series` to read their records.
- :mod:`~dldna.dynamics.noise`: :class:`GradientNoiseScale`, :func:`estimate_noise_scale`, :func:`two_batch_noise_scale`,
  :func:`minibatch_gradient_error` (the noise model checked against the exact full gradient).
- :mod:`~dldna.dynamics.batch_size`: :func:`batch_size_sweep` (steps to a target per batch size), :func:`fit_step_curve`, :func:`scaling_regimes`.
- :mod:`~dldna.dynamics.range_test`: :func:`lr_range_test` (the schedules themselves are
  :func:`dldna.train.make_scheduler` and :func:`dldna.train.lr_curve`).
- :mod:`~dldna.dynamics.clipping`: :class:`GradientClipping`.
- :mod:`~dldna.dynamics.checks` and :mod:`~dldna.dynamics.bugs`: the checklist, and broken models that fail it.
"""

from dldna.dynamics.batch_size import BatchSizeResult, batch_size_sweep, fit_step_curve, scaling_regimes
from dldna.dynamics.checks import (
    CheckResult,
    check_gradient_flow,
    check_gradients,
    check_initial_loss,
    check_overfit,
    check_random_labels,
)
from dldna.dynamics.clipping import GradientClipping
from dldna.dynamics.metrics import (
    EffectiveLR,
    LayerStats,
    LossImprovement,
    Sharpness,
    StopAtTarget,
    effective_lr,
    layer_parameters,
    series,
    top_hessian_eigenvalue,
)
from dldna.dynamics.noise import (
    GradientNoiseScale,
    MinibatchError,
    NoiseScale,
    estimate_noise_scale,
    flat_gradient,
    full_gradient,
    minibatch_gradient_error,
    noise_from_batch_gradients,
    two_batch_noise_scale,
)
from dldna.dynamics.range_test import RangeTestResult, lr_range_test

__all__ = [
    "BatchSizeResult",
    "CheckResult",
    "EffectiveLR",
    "GradientClipping",
    "GradientNoiseScale",
    "LayerStats",
    "LossImprovement",
    "MinibatchError",
    "NoiseScale",
    "RangeTestResult",
    "Sharpness",
    "StopAtTarget",
    "batch_size_sweep",
    "check_gradient_flow",
    "check_gradients",
    "check_initial_loss",
    "check_overfit",
    "check_random_labels",
    "effective_lr",
    "estimate_noise_scale",
    "flat_gradient",
    "full_gradient",
    "fit_step_curve",
    "layer_parameters",
    "lr_range_test",
    "minibatch_gradient_error",
    "scaling_regimes",
    "noise_from_batch_gradients",
    "series",
    "top_hessian_eigenvalue",
    "two_batch_noise_scale",
]
