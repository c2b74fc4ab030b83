"""The GPU-scale comparison's runner, on a tiny CIFAR-shaped dataset and tiny models so it runs on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dldna.data import Dataset
from dldna.models import ResidualCNN, VisionTransformer
from dldna.train.scale import (
    CPU_SCALE_MODELS,
    SCALE_MODELS,
    SCALE_OPTIMIZERS,
    SPREAD_HEADERS,
    TABLE_HEADERS,
    checkpoint_cost,
    compare_at_scale,
    estimate_epoch_seconds,
    forward_backward_seconds,
    run_at_scale,
    spread_row,
)

TINY_MODELS = {
    "cnn": lambda classes, channels=3, size=32: ResidualCNN(in_channels=channels, num_classes=classes, width=8, blocks=1),
    "vit": lambda classes, channels=3, size=32: VisionTransformer(
        image_size=size, in_channels=channels, num_classes=classes, dim=24, depth=1, heads=2, patch=size // 4
    ),
}


def tiny_cifar(n: int = 96, classes: int = 5, channels: int = 3, size: int = 32) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randn(n, channels, size, size, generator=generator) + labels.view(-1, 1, 1, 1).float()
    return Dataset("tiny", images, labels, images[:32], labels[:32], tuple(map(str, range(classes))), (0.0,) * channels, (1.0,) * channels)


@pytest.mark.parametrize("model", sorted(TINY_MODELS))
@pytest.mark.parametrize("optimizer", sorted(SCALE_OPTIMIZERS))
def test_a_run_reports_accuracy_memory_and_time(model: str, optimizer: str) -> None:
    run = run_at_scale(tiny_cifar(), model, optimizer, epochs=2, batch_size=32, amp=False, models=TINY_MODELS)
    # six steps may leave a model at chance level, which the History reports as such: only the accounting is tested
    assert run.history.status in ("completed", "learned nothing") and len(run.history.epochs["test_acc"]) == 2
    float_bytes = 4 * run.parameters
    buffers = {"SGD + momentum": 1, "AdamW": 2, "Lion": 1}[optimizer]
    assert buffers * float_bytes <= run.state_bytes <= buffers * float_bytes + 1024, "state = one float per parameter per buffer"
    assert run.peak_memory_bytes is None and run.seconds_per_epoch > 0
    assert len(run.row()) == len(TABLE_HEADERS)


def test_unknown_names_are_value_errors() -> None:
    with pytest.raises(ValueError, match="model"):
        run_at_scale(tiny_cifar(), "mlp", "AdamW", epochs=1, models=TINY_MODELS)
    with pytest.raises(ValueError, match="optimizer"):
        run_at_scale(tiny_cifar(), "cnn", "Adam", epochs=1, models=TINY_MODELS)


def test_max_steps_times_a_partial_epoch_as_a_whole_one() -> None:
    data = tiny_cifar()
    run = run_at_scale(data, "cnn", "AdamW", epochs=2, batch_size=32, amp=False, max_steps=2, models=TINY_MODELS)
    assert run.history.num_steps == 2 and len(run.history.epochs["time_s"]) == 1
    assert run.seconds_per_epoch == pytest.approx(run.history.epochs["time_s"][0] * 3 / 2)


def test_checkpointed_blocks_train_to_the_same_weights() -> None:
    plain = run_at_scale(tiny_cifar(), "vit", "AdamW", epochs=1, batch_size=32, amp=False, models=TINY_MODELS)
    checkpointed = run_at_scale(tiny_cifar(), "vit", "AdamW", epochs=1, batch_size=32, amp=False, models=TINY_MODELS, checkpoint_blocks=True)
    np.testing.assert_allclose(checkpointed.history.steps["loss"], plain.history.steps["loss"], rtol=1e-5)


def test_the_networks_are_built_for_the_shape_of_the_images() -> None:
    grey = torch.randn(2, 1, 28, 28)
    for models in (SCALE_MODELS, CPU_SCALE_MODELS):
        for build in models.values():
            assert build(10, 1, 28)(grey).shape == (2, 10)
            assert build(100)(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    small = {name: sum(p.numel() for p in build(10, 1, 28).parameters()) for name, build in CPU_SCALE_MODELS.items()}
    large = {name: sum(p.numel() for p in build(10, 1, 28).parameters()) for name, build in SCALE_MODELS.items()}
    assert all(small[name] < large[name] / 4 for name in small)
    run = run_at_scale(tiny_cifar(channels=1, size=28), "vit", "Lion", epochs=1, batch_size=32, amp=False, augment=False, models=TINY_MODELS)
    assert len(run.history.epochs["test_acc"]) == 1 and not run.history.diverged


def test_compare_at_scale_runs_every_pair_for_every_seed_and_tabulates_the_spread() -> None:
    runs = compare_at_scale(tiny_cifar(), epochs=1, seeds=[0, 1], batch_size=32, amp=False, models=TINY_MODELS)
    assert set(runs) == {(m, o) for m in TINY_MODELS for o in SCALE_OPTIMIZERS}
    first, second = runs[("cnn", "AdamW")]
    assert first.history.config["seed"] == 0 and second.history.config["seed"] == 1
    assert first.history.steps["loss"][0] != second.history.steps["loss"][0], "another seed, other initial weights"
    again = run_at_scale(tiny_cifar(), "cnn", "AdamW", epochs=1, batch_size=32, amp=False, seed=1, models=TINY_MODELS)
    assert again.history.steps["loss"] == second.history.steps["loss"]
    row = spread_row(runs[("cnn", "AdamW")])
    assert len(row) == len(SPREAD_HEADERS) and row[:2] == ["cnn", "AdamW"] and "±" in row[2]
    with pytest.raises(ValueError, match="seeds"):
        compare_at_scale(tiny_cifar(), epochs=1, seeds=[], models=TINY_MODELS)


def test_checkpoint_cost_measures_less_memory_and_a_slower_step() -> None:
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 5, (8,))
    cost = checkpoint_cost(lambda: TINY_MODELS["vit"](5), images, labels, repeats=1)
    assert cost.checkpointed_bytes < cost.activation_bytes and cost.saving > 1
    assert cost.half_batch_activation_bytes < cost.activation_bytes
    assert cost.parameter_bytes == 4 * sum(p.numel() for p in TINY_MODELS["vit"](5).parameters())
    assert cost.slowdown > 0
    assert forward_backward_seconds(TINY_MODELS["cnn"](5), images, labels, repeats=2) > 0
    with pytest.raises(ValueError, match="repeats"):
        forward_backward_seconds(TINY_MODELS["cnn"](5), images, labels, repeats=0)


def test_an_epoch_estimate_scales_the_time_of_a_few_steps() -> None:
    seconds = estimate_epoch_seconds("cnn", "AdamW", image_shape=(3, 32, 32), classes=5, train_size=640, batch_size=32, steps=2, models=TINY_MODELS)
    assert seconds > 0
    with pytest.raises(ValueError, match="steps"):
        estimate_epoch_seconds("cnn", "AdamW", steps=0, models=TINY_MODELS)
