"""Weight initialisation and what it does to a deep network.

- :mod:`~dldna.init.schemes`: gains computed from the activation (:func:`gain`, :func:`second_moment`), tensor
  initialisers (:func:`kaiming_normal_`, :func:`orthogonal_`, ...) and :func:`apply`, which initialises a whole
  model with one of :data:`SCHEMES`.
- :mod:`~dldna.init.bias`: the bias rules other than zero (:func:`log_prior_bias_`, :func:`relu_bias_`,
  :func:`lstm_forget_bias_`).
- :mod:`~dldna.init.diagnostics`: :func:`deep_mlp`, :func:`signal_propagation` and :func:`compare_schemes`
  (signals through depth), :func:`weight_metrics` (condition number, spectral norm, effective rank).

The figures of both live in :mod:`dldna.viz.init`.
"""

from dldna.init.bias import log_prior_bias_, lstm_forget_bias_, relu_bias_
from dldna.init.diagnostics import (
    SignalPropagation,
    WeightMetrics,
    compare_schemes,
    condition_number,
    dead_unit_fraction,
    deep_mlp,
    effective_rank,
    signal_propagation,
    singular_values,
    spectral_norm,
    weight_metrics,
)
from dldna.init.schemes import (
    ACTIVATION_LAYERS,
    SCHEMES,
    WEIGHT_LAYERS,
    InitOptions,
    Scheme,
    apply,
    constant_,
    fans,
    gain,
    kaiming_normal_,
    kaiming_uniform_,
    layers_and_activations,
    lecun_normal_,
    normal_,
    orthogonal_,
    residual_blocks,
    second_moment,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
)

__all__ = [
    "ACTIVATION_LAYERS",
    "SCHEMES",
    "WEIGHT_LAYERS",
    "InitOptions",
    "Scheme",
    "SignalPropagation",
    "WeightMetrics",
    "apply",
    "compare_schemes",
    "condition_number",
    "constant_",
    "dead_unit_fraction",
    "deep_mlp",
    "effective_rank",
    "fans",
    "gain",
    "kaiming_normal_",
    "kaiming_uniform_",
    "layers_and_activations",
    "lecun_normal_",
    "log_prior_bias_",
    "lstm_forget_bias_",
    "normal_",
    "orthogonal_",
    "relu_bias_",
    "residual_blocks",
    "second_moment",
    "signal_propagation",
    "singular_values",
    "spectral_norm",
    "uniform_",
    "weight_metrics",
    "xavier_normal_",
    "xavier_uniform_",
]
