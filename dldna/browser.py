"""What the website's browser trainer is built from: the kernel panel's experiment, exported for TensorFlow.js.

On the website, a trainer (``_trainer/trainer.js``) retrains the chapter's MLP in the reader's browser. It runs
the experiment of the kernel panel, :class:`dldna.widgets.TrainerPanel` under the CPU budget, and this module
exports that experiment from the panel itself, so the two cannot drift apart:

- the controls: the panel's optimizers (those the browser writes an update for), batch sizes, epochs and
  sliders with their labels, ranges, steps and per-optimizer defaults, and which keyword argument of each
  optimizer's update function every slider sets (found by moving the panel's own sliders);
- the data: the panel's FashionMNIST subset as uint8 pixels and labels, with the training set's mean and std;
- the initial weights of the panel's MLP (``dldna.set_seed(seed)``, then the panel's ``model_fn``) and the batch
  order of every epoch, drawn by :func:`dldna.train.epoch_order` exactly as :func:`dldna.train.fit` draws it.

:func:`export_trainer` writes a JSON spec and one gzip-compressed binary file; :func:`python_run` is the Python
run a browser run must reproduce, step for step.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.history import DIVERGENCE_FACTOR, DIVERGENCE_WINDOW, History
from dldna.train import epoch_order, fit
from dldna.widgets.controls import WEIGHT_DECAY_OFF, HyperparameterControls, optimizer_choices
from dldna.widgets.trainer import TrainerPanel

BROWSER_OPTIMIZERS = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "Lion")
"""The optimizers whose update the browser trainer writes with TensorFlow.js operations (the kernel panel
offers every optimizer of :mod:`dldna.optim`). A browser run is reported as diverged by the rule of
:mod:`dldna.history` (``DIVERGENCE_FACTOR``, ``DIVERGENCE_WINDOW``), exported to the page with the controls."""

SPEC_FILE = "trainer.json"
DATA_FILE = "fashion-mnist-subset.bin.gz"

_PROBE_FRACTIONS = (0.31, 0.37, 0.41, 0.43, 0.47)


def kernel_panel() -> TrainerPanel:
    """The kernel panel the browser trainer reproduces: the CPU budget (a 784-128-10 MLP on a 2,000-image
    subset) on the CPU, not started."""
    return TrainerPanel(budget="cpu", device="cpu", start=False)


def _named_sliders(controls: HyperparameterControls) -> dict[str, widgets.Widget]:
    """The controls' sliders by the attribute name the panel gives them (``lr``, ``momentum``, ...)."""
    return {name: value for name, value in vars(controls).items() if any(value is slider for slider in controls.sliders)}


def _slider_range(slider: widgets.Widget) -> dict[str, Any]:
    spec = {"label": slider.description, "min": slider.min, "max": slider.max, "step": slider.step, "format": slider.readout_format}
    if isinstance(slider, widgets.FloatLogSlider):
        spec["log_base"] = slider.base
    return spec


def _position_value(slider: widgets.Widget, fraction: float) -> float:
    """The value ``fraction`` of the way along ``slider``'s track."""
    position = slider.min + fraction * (slider.max - slider.min)
    return slider.base**position if isinstance(slider, widgets.FloatLogSlider) else position


def _update_arguments(cls: type[torch.optim.Optimizer], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments the optimizer's update function receives when it is built with ``kwargs``."""
    group = cls([torch.zeros(1, requires_grad=True)], **kwargs).param_groups[0]
    return cls.hyperparameters(group)


def _slider_arguments(cls: type[torch.optim.Optimizer]) -> dict[str, str]:
    """Which update-function argument each enabled slider sets for ``cls``: every slider is moved to its own
    probe position and the argument that takes its value is looked up (the panel's ``kwargs`` decides)."""
    controls = HyperparameterControls()
    controls.use(cls)
    sliders = {name: slider for name, slider in _named_sliders(controls).items() if not slider.disabled}
    probes = {name: _position_value(slider, fraction) for (name, slider), fraction in zip(sliders.items(), _PROBE_FRACTIONS)}
    for name, value in probes.items():
        sliders[name].value = value
    arguments = _update_arguments(cls, controls.kwargs())
    found = {}
    for name, value in probes.items():
        matches = [argument for argument, given in arguments.items() if not isinstance(given, bool) and given == value]
        if len(matches) != 1:
            raise RuntimeError(f"the {name} slider of the kernel panel sets {len(matches)} arguments of {cls.__name__}'s update")
        found[name] = matches[0]
    return found


def optimizer_spec(name: str) -> dict[str, Any]:
    """What the browser needs about one optimizer: its enabled sliders (label, default, the update argument each
    sets), the update's other arguments at their defaults, and among those its on/off options (``nesterov``)."""
    cls = optimizer_choices()[name]
    arguments = _slider_arguments(cls)
    controls = HyperparameterControls()
    controls.use(cls)
    sliders = _named_sliders(controls)
    update = _update_arguments(cls, controls.kwargs())
    fixed = {key: value for key, value in update.items() if key not in arguments.values()}
    return {
        "sliders": {
            slider: {"label": sliders[slider].description, "value": sliders[slider].value, "argument": argument}
            for slider, argument in arguments.items()
        },
        "fixed": {key: value for key, value in fixed.items() if not isinstance(value, bool)},
        "flags": {key: value for key, value in fixed.items() if isinstance(value, bool)},
    }


def controls_spec(panel: TrainerPanel) -> dict[str, Any]:
    """The panel's controls as the browser draws them, for the optimizers of :data:`BROWSER_OPTIMIZERS`: labels,
    options, ranges and defaults read from the panel's widgets (it is only read, so no run starts), and each
    optimizer's defaults and slider arguments from the class that makes its sliders."""
    missing = [name for name in BROWSER_OPTIMIZERS if name not in panel.optimizer.options]
    if missing or panel.optimizer.value not in BROWSER_OPTIMIZERS:
        raise ValueError(f"the kernel panel must offer {missing or panel.optimizer.value!r} for the browser trainer")
    return {
        "optimizer": {"label": panel.optimizer.description, "value": panel.optimizer.value,
                      "options": [name for name in panel.optimizer.options if name in BROWSER_OPTIMIZERS]},
        "batch_size": {"label": panel.batch_size.description, "value": panel.batch_size.value,
                       "options": list(panel.batch_size.options)},
        "epochs": {"label": panel.epochs.description, "value": panel.epochs.value, "min": panel.epochs.min, "max": panel.epochs.max},
        "sliders": {name: _slider_range(slider) for name, slider in _named_sliders(panel.controls).items()},
        "weight_decay_off": WEIGHT_DECAY_OFF,
        "optimizers": {name: optimizer_spec(name) for name in BROWSER_OPTIMIZERS},
    }


def initial_model(panel: TrainerPanel) -> nn.Module:
    """The network every run of the panel starts from: its ``model_fn`` under ``dldna.set_seed(panel.seed)``."""
    dldna.set_seed(panel.seed)
    return panel.model_fn()


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The linear layers of an MLP the browser can run: ``Flatten``, then ``Linear`` layers with a ``ReLU``
    between each two; anything else is refused, since the browser would compute another network."""
    layers = [module for module in model.modules() if not isinstance(module, nn.Sequential) and module is not model]
    kinds = [type(module) for module in layers]
    expected = [nn.Flatten] + [nn.Linear, nn.ReLU] * ((len(layers) - 2) // 2) + [nn.Linear]
    if kinds != expected:
        raise ValueError(f"model must be Flatten, then Linear layers with ReLU between them; got {[k.__name__ for k in kinds]}")
    return [module for module in layers if isinstance(module, nn.Linear)]


def pixels(data: Dataset, split: str) -> np.ndarray:
    """The images of ``split`` as the uint8 pixels they were normalised from, one flattened image per row."""
    x, _ = data.split(split)
    values = torch.round(data.unnormalize(x.cpu()) * 255).flatten(1)
    return values.clamp(0, 255).to(torch.uint8).numpy()


def batch_orders(samples: int, epochs: int, seed: int) -> torch.Tensor:
    """The order in which each of ``epochs`` epochs visits ``samples`` training samples under ``seed``: the rows
    :func:`dldna.train.epoch_order` gives a generator seeded as :func:`dldna.train.fit` seeds it (on the CPU)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.stack([epoch_order(generator, samples, "cpu") for _ in range(epochs)])


def _pack(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], bytes]:
    """Little-endian arrays back to back, and where each one starts."""
    table, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        table[name] = {"dtype": array.dtype.name, "shape": list(array.shape), "offset": offset}
        chunks.append(data)
        offset += len(data)
    return table, b"".join(chunks)


def trainer_export(panel: TrainerPanel) -> tuple[dict[str, Any], bytes]:
    """The browser trainer's spec (JSON-ready) and its binary payload (uncompressed), from ``panel``."""
    data = panel.data.to("cpu")
    model = initial_model(panel)
    layers = linear_layers(model)
    names = {id(param): name for name, param in model.named_parameters()}
    epochs = panel.epochs.max
    orders = batch_orders(len(data.y_train), epochs, panel.seed).numpy()
    arrays: dict[str, np.ndarray] = {names[id(param)]: param.detach().numpy().astype(np.float32)
                                     for layer in layers for param in (layer.weight, layer.bias)}
    arrays["order"] = orders.astype(np.uint16 if len(data.y_train) <= 1 << 16 else np.uint32)
    arrays.update(
        y_train=data.y_train.numpy().astype(np.uint8), y_test=data.y_test.numpy().astype(np.uint8),
        x_train=pixels(data, "train"), x_test=pixels(data, "test"),
    )
    table, payload = _pack(arrays)
    spec = {
        "model": {
            "widths": [layers[0].in_features, *(layer.out_features for layer in layers)],
            "layers": [{"weight": names[id(layer.weight)], "bias": names[id(layer.bias)]} for layer in layers],
            "parameters": sum(param.numel() for param in model.parameters()),
        },
        "data": {"name": data.name, "classes": list(data.classes), "mean": data.mean[0], "std": data.std[0],
                 "train": len(data.y_train), "test": len(data.y_test)},
        "file": DATA_FILE,
        "arrays": table,
        "seed": panel.seed,
        "debounce_s": panel.debounce_s,
        "divergence": {"factor": DIVERGENCE_FACTOR, "window": DIVERGENCE_WINDOW},
        "controls": controls_spec(panel),
    }
    return spec, payload


def export_trainer(folder: Path | str, panel: TrainerPanel | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the browser trainer's :data:`SPEC_FILE` and :data:`DATA_FILE` (gzip) into ``folder`` for ``panel``
    (default: :func:`kernel_panel`); ``extra`` entries (what the site adds, such as where the library is) join
    the spec. Returns the spec, with the data file's size in bytes as ``data_bytes``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec, payload = trainer_export(panel if panel is not None else kernel_panel())
    compressed = gzip.compress(payload, compresslevel=9, mtime=0)
    (folder / DATA_FILE).write_bytes(compressed)
    spec.update(extra or {}, data_bytes=len(compressed))
    (folder / SPEC_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
    return spec


def python_run(
    panel: TrainerPanel,
    optimizer: str,
    sliders: Mapping[str, float] | None = None,
    flags: Mapping[str, bool] | None = None,
    *,
    batch_size: int,
    epochs: int,
) -> History:
    """The run the panel trains for ``optimizer`` with ``sliders`` moved (by attribute name, e.g. ``{"lr":
    0.01}``; the others at the optimizer's defaults) and ``flags`` set: the run a browser run must reproduce."""
    choices = optimizer_choices()
    if optimizer not in choices:
        raise ValueError(f"optimizer must be one of {sorted(choices)}, got {optimizer!r}")
    cls = choices[optimizer]
    controls = HyperparameterControls()
    controls.use(cls)
    named = _named_sliders(controls)
    for name, value in (sliders or {}).items():
        if name not in named:
            raise ValueError(f"sliders: no slider called {name!r}; the panel has {sorted(named)}")
        named[name].value = value
    model = initial_model(panel)
    built = cls(model.parameters(), **controls.kwargs(), **(flags or {}))
    return fit(model, built, panel.data, epochs=epochs, batch_size=batch_size, seed=panel.seed, progress=False)
