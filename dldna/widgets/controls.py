"""Sliders for optimizer hyperparameters, shared by the trainer panel and the toy-surface playground.

Which sliders apply depends on the optimizer's hyperparameters, read from the one place each optimizer declares
them (:func:`dldna.optim.default_hyperparameters`): ``momentum`` for SGD and RMSprop, ``betas`` for the Adam
family and Lion, ``alpha`` (RMSprop's squared-gradient average, shown on the second beta slider),
``weight_decay`` wherever it exists. Learning rate and weight decay move on a log scale; the left end of the
weight-decay slider means no weight decay.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import ipywidgets as widgets
import torch

from dldna.optim import OPTIMIZERS, SGD, default_hyperparameters

WEIGHT_DECAY_OFF = 1e-6


def optimizer_choices() -> dict[str, type[torch.optim.Optimizer]]:
    """Every optimizer class of :mod:`dldna.optim` that takes parameters directly (:data:`dldna.optim.OPTIMIZERS`),
    by class name."""
    return dict(OPTIMIZERS)


def check_slider_value(name: str, value: object, low: float, high: float) -> None:
    """``value`` must be a finite number within ``[low, high]``, the range of the slider that will show it: a
    slider would otherwise clamp it silently (``lr=100`` shown, and trained, as 10) or accept ``nan``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number between {low:g} and {high:g}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r} is outside its slider's range: pass a value between {low:g} and {high:g}")


class HyperparameterControls:
    """Learning rate, momentum, beta1, beta2 and weight decay sliders; :meth:`kwargs` turns them into the
    constructor arguments of the chosen optimizer, and :meth:`use` enables the sliders that optimizer has."""

    def __init__(self, lr_range: tuple[float, float] = (1e-5, 10.0)) -> None:
        if len(lr_range) != 2 or not all(isinstance(end, numbers.Real) and math.isfinite(end) for end in lr_range):
            raise ValueError(f"lr_range must be two finite numbers (low, high), got {lr_range!r}: pass e.g. lr_range=(1e-5, 10.0)")
        low, high = lr_range
        if not 0 < low < high:
            raise ValueError(f"lr_range must satisfy 0 < low < high, got {lr_range!r}: pass e.g. lr_range=(1e-5, 10.0)")
        style = {"description_width": "110px"}
        self.lr = widgets.FloatLogSlider(
            value=1e-3, base=10, min=float(torch.log10(torch.tensor(low))), max=float(torch.log10(torch.tensor(high))),
            step=0.05, description="learning rate", readout_format=".1e", style=style,
        )
        self.momentum = widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="momentum", style=style)
        self.beta1 = widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="β₁", style=style)
        self.beta2 = widgets.FloatSlider(value=0.999, min=0.5, max=0.9999, step=0.0001, readout_format=".4f", description="β₂", style=style)
        self.weight_decay = widgets.FloatLogSlider(
            value=WEIGHT_DECAY_OFF, base=10, min=-6, max=-1, step=0.1, readout_format=".0e",
            description="weight decay", style=style, tooltip="left end: no weight decay",
        )
        self.sliders = (self.lr, self.momentum, self.beta1, self.beta2, self.weight_decay)
        self.optimizer_class: type[torch.optim.Optimizer] = SGD

    def use(self, cls: type[torch.optim.Optimizer]) -> None:
        """Show ``cls``'s defaults on the sliders and disable the sliders it has no argument for."""
        defaults = default_hyperparameters(cls)
        self.optimizer_class = cls
        self.lr.value = defaults["lr"]
        self.momentum.disabled = "momentum" not in defaults
        self.beta1.disabled = "betas" not in defaults
        self.beta2.disabled = "betas" not in defaults and "alpha" not in defaults
        self.beta2.description = "α" if "alpha" in defaults else "β₂"
        self.weight_decay.disabled = "weight_decay" not in defaults
        if "momentum" in defaults:
            self.momentum.value = defaults["momentum"]
        if "betas" in defaults:
            self.beta1.value, self.beta2.value = defaults["betas"]
        if "alpha" in defaults:
            self.beta2.value = defaults["alpha"]
        if "weight_decay" in defaults:
            self.weight_decay.value = max(defaults["weight_decay"], WEIGHT_DECAY_OFF)

    def switch(self, name: str, on_change: Callable[[dict[str, Any]], None]) -> None:
        """Change to the optimizer called ``name`` without calling ``on_change`` once per slider it moves."""
        for control in self.sliders:
            control.unobserve(on_change, names="value")
        try:
            self.use(optimizer_choices()[name])
        finally:
            for control in self.sliders:
                control.observe(on_change, names="value")

    def kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the current optimizer class from the enabled sliders."""
        defaults = default_hyperparameters(self.optimizer_class)
        chosen: dict[str, Any] = {"lr": self.lr.value}
        if "momentum" in defaults:
            chosen["momentum"] = self.momentum.value
        if "betas" in defaults:
            chosen["betas"] = (self.beta1.value, self.beta2.value)
        if "alpha" in defaults:
            chosen["alpha"] = self.beta2.value
        if "weight_decay" in defaults:
            chosen["weight_decay"] = 0.0 if self.weight_decay.value <= WEIGHT_DECAY_OFF else self.weight_decay.value
        return chosen

    def describe(self) -> str:
        """``"Adam(lr=1.0e-03, betas=(0.9, 0.999), weight_decay=0)"``: the setting in one line."""
        parts = []
        for name, value in self.kwargs().items():
            if name in ("lr", "weight_decay") and value:
                parts.append(f"{name}={value:.1e}")
            elif isinstance(value, tuple):
                parts.append(f"{name}=({', '.join(f'{v:g}' for v in value)})")
            else:
                parts.append(f"{name}={value:g}")
        return f"{self.optimizer_class.__name__}({', '.join(parts)})"
