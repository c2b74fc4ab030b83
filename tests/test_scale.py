"""The GPU-scale comparison's runner, on a tiny CIFAR-shaped dataset and tiny models so it runs on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dldna.data import Dataset
from dldna.models import ResidualCNN, VisionTransformer
from dldna.train.scale import SCALE_OPTIMIZERS, TABLE_HEADERS, run_at_scale

TINY_MODELS = {
    "cnn": lambda classes: ResidualCNN(in_channels=3, num_classes=classes, width=8, blocks=1),
    "vit": lambda classes: VisionTransformer(num_classes=classes, dim=24, depth=1, heads=2, patch=8),
}


def tiny_cifar(n: int = 96, classes: int = 5) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randn(n, 3, 32, 32, generator=generator) + labels.view(-1, 1, 1, 1).float()
    return Dataset("tiny", images, labels, images[:32], labels[:32], tuple(map(str, range(classes))), (0.0,) * 3, (1.0,) * 3)


@pytest.mark.parametrize("model", sorted(TINY_MODELS))
@pytest.mark.parametrize("optimizer", sorted(SCALE_OPTIMIZERS))
def test_a_run_reports_accuracy_memory_and_time(model: str, optimizer: str) -> None:
    run = run_at_scale(tiny_cifar(), model, optimizer, epochs=2, batch_size=32, amp=False, models=TINY_MODELS)
    assert run.history.status == "completed" and len(run.history.epochs["test_acc"]) == 2
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
