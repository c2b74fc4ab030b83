"""What the build exports for the website's browser trainer (dldna.browser): the kernel panel's controls, data,
initial weights and batch order, read back from the files exactly as the browser reads them."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dldna.browser import (
    BROWSER_OPTIMIZERS,
    DATA_FILE,
    DIVERGENCE_FACTOR,
    DIVERGENCE_WINDOW,
    SPEC_FILE,
    batch_orders,
    export_trainer,
    initial_model,
    kernel_panel,
    linear_layers,
    python_run,
)
from dldna.callbacks import Callback, TrainState
from dldna.models import MLP
from dldna.train import fit
from dldna.widgets.controls import HyperparameterControls, optimizer_choices
from dldna.widgets.trainer import BATCH_SIZES


@pytest.fixture(scope="module")
def panel():
    return kernel_panel()


@pytest.fixture(scope="module")
def exported(panel, tmp_path_factory) -> tuple[dict, dict[str, np.ndarray], Path]:
    """The spec, the arrays of the binary file as the browser decodes them, and the folder."""
    folder = tmp_path_factory.mktemp("trainer")
    spec = export_trainer(folder, panel, extra={"library": {"core": "tfjs/tf.js"}})
    payload = gzip.decompress((folder / DATA_FILE).read_bytes())
    arrays = {}
    for name, entry in spec["arrays"].items():
        dtype = np.dtype(entry["dtype"]).newbyteorder("<")
        count = math.prod(entry["shape"])
        arrays[name] = np.frombuffer(payload, dtype=dtype, count=count, offset=entry["offset"]).reshape(entry["shape"])
    return spec, arrays, folder


def test_the_files_hold_what_the_spec_says(exported) -> None:
    spec, arrays, folder = exported
    assert json.loads((folder / SPEC_FILE).read_text(encoding="utf-8")) == spec
    assert spec["library"] == {"core": "tfjs/tf.js"}, "what the site adds joins the spec"
    assert spec["data_bytes"] == (folder / DATA_FILE).stat().st_size
    sizes = [np.dtype(entry["dtype"]).itemsize * math.prod(entry["shape"]) for entry in spec["arrays"].values()]
    offsets = [entry["offset"] for entry in spec["arrays"].values()]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))], "arrays lie back to back"
    assert sum(sizes) == len(gzip.decompress((folder / DATA_FILE).read_bytes()))
    assert spec["data_bytes"] < 0.7 * sum(sizes), "the binary file is compressed"


def test_the_controls_are_the_kernel_panels(panel, exported) -> None:
    controls = exported[0]["controls"]
    assert controls["optimizer"]["options"] == [name for name in panel.optimizer.options if name in BROWSER_OPTIMIZERS]
    assert set(BROWSER_OPTIMIZERS) >= {"SGD", "RMSprop", "Adam", "AdamW"}
    assert controls["optimizer"]["value"] == panel.optimizer.value
    assert controls["batch_size"] == {"label": "batch size", "value": panel.batch_size.value, "options": list(BATCH_SIZES)}
    assert (controls["epochs"]["min"], controls["epochs"]["max"], controls["epochs"]["value"]) == (
        panel.epochs.min, panel.epochs.max, panel.epochs.value)
    for name, slider in controls["sliders"].items():
        widget = getattr(panel.controls, name)
        assert (slider["min"], slider["max"], slider["step"], slider["label"]) == (widget.min, widget.max, widget.step, widget.description)
        assert ("log_base" in slider) == (name in ("lr", "weight_decay"))
    assert exported[0]["debounce_s"] == panel.debounce_s
    assert exported[0]["divergence"] == {"factor": DIVERGENCE_FACTOR, "window": DIVERGENCE_WINDOW}


@pytest.mark.parametrize("name", BROWSER_OPTIMIZERS)
def test_each_optimizer_gets_the_panels_defaults_and_arguments(exported, name: str) -> None:
    """The browser's update arguments at the default sliders (weight decay's left end meaning none) are those the
    kernel panel gives the optimizer, and each slider feeds the argument the panel feeds."""
    spec = exported[0]["controls"]
    entry = spec["optimizers"][name]
    cls = optimizer_choices()[name]
    controls = HyperparameterControls()
    controls.use(cls)
    enabled = {slider for slider in spec["sliders"] if not getattr(controls, slider).disabled}
    assert set(entry["sliders"]) == enabled
    browser = {**entry["fixed"], **entry["flags"]}
    for slider, setting in entry["sliders"].items():
        assert setting["value"] == getattr(controls, slider).value
        off = slider == "weight_decay" and setting["value"] <= spec["weight_decay_off"]
        browser[setting["argument"]] = 0.0 if off else setting["value"]
    kernel = cls.hyperparameters(cls([torch.zeros(1, requires_grad=True)], **controls.kwargs()).param_groups[0])
    assert browser == kernel


def test_rmsprop_alpha_and_sgd_nesterov(exported) -> None:
    optimizers = exported[0]["controls"]["optimizers"]
    assert optimizers["RMSprop"]["sliders"]["beta2"] == {"label": "α", "value": 0.99, "argument": "alpha"}
    assert optimizers["SGD"]["flags"] == {"nesterov": False}
    assert optimizers["Adam"]["sliders"]["beta1"]["argument"] == "beta1"


def test_pixels_normalise_to_the_panels_data(panel, exported) -> None:
    """The browser normalises the uint8 pixels as dldna.data does, in float32, and gets the panel's inputs exactly."""
    spec, arrays, _ = exported
    for split in ("train", "test"):
        x, y = panel.data.split(split)
        pixels = torch.from_numpy(arrays[f"x_{split}"].copy())
        normalised = pixels.float().div(255).sub(spec["data"]["mean"]).div(spec["data"]["std"])
        assert torch.equal(normalised, x.flatten(1))
        assert torch.equal(torch.from_numpy(arrays[f"y_{split}"].astype(np.int64)), y)


def test_weights_are_the_panels_initial_network(panel, exported) -> None:
    spec, arrays, _ = exported
    model = initial_model(panel)
    state = model.state_dict()
    for layer in spec["model"]["layers"]:
        for name in (layer["weight"], layer["bias"]):
            assert np.array_equal(arrays[name], state[name].numpy())
    assert spec["model"]["widths"] == [784, *panel.size.hidden, 10]
    assert spec["model"]["parameters"] == sum(p.numel() for p in model.parameters())


class _RecordBatches(Callback):
    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []

    def after_backward(self, state: TrainState) -> None:
        self.inputs.append(state.inputs.clone())


def test_batch_order_is_the_order_fit_visits(panel, exported) -> None:
    """Epoch by epoch, the batches fit trains on are consecutive slices of the exported order."""
    spec, arrays, _ = exported
    batch_size, epochs = 512, 3
    recorder = _RecordBatches()
    model = initial_model(panel)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.0), panel.data, epochs=epochs, batch_size=batch_size,
        seed=spec["seed"], callbacks=[recorder], progress=False)
    order = torch.from_numpy(arrays["order"].astype(np.int64))
    expected = [panel.data.x_train[order[epoch, start : start + batch_size]]
                for epoch in range(epochs) for start in range(0, spec["data"]["train"], batch_size)]
    assert len(recorder.inputs) == len(expected)
    assert all(torch.equal(seen, wanted) for seen, wanted in zip(recorder.inputs, expected))
    assert arrays["order"].shape == (panel.epochs.max, spec["data"]["train"])
    assert not torch.equal(order[0], order[1]), "every epoch has its own order"
    assert torch.equal(batch_orders(10, 2, 0), batch_orders(10, 2, 0))


def test_python_run_is_the_kernel_panels_run(panel) -> None:
    history = python_run(panel, "SGD", {"lr": 0.05, "momentum": 0.9}, {"nesterov": True}, batch_size=256, epochs=1)
    assert history.config["optimizer"] == "SGD"
    assert history.config["hyperparameters"]["nesterov"] is True
    assert history.config["hyperparameters"]["momentum"] == 0.9
    assert history.num_steps == math.ceil(len(panel.data.y_train) / 256)
    assert history.steps["loss"][-1] < history.steps["loss"][0]
    with pytest.raises(ValueError, match="sliders: no slider called 'beta3'"):
        python_run(panel, "Adam", {"beta3": 0.5}, batch_size=64, epochs=1)
    with pytest.raises(ValueError, match="optimizer must be one of .* got 'Adamax'"):
        python_run(panel, "Adamax", batch_size=64, epochs=1)


def test_a_network_the_browser_cannot_run_is_refused() -> None:
    assert [layer.out_features for layer in linear_layers(MLP(hidden=(32, 16)))] == [32, 16, 10]
    with pytest.raises(ValueError, match="model must be Flatten, then Linear layers with ReLU"):
        linear_layers(MLP(hidden=(32,), activation="tanh"))
    with pytest.raises(ValueError, match="model must be Flatten"):
        linear_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Dropout(0.1), nn.ReLU(), nn.Linear(2, 2)))
