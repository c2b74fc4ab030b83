"""dldna.train.fit: what it records, reproducibility, divergence handling, callbacks and argument checks."""

from __future__ import annotations

import functools
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.train import Callback, History, StopFlag, TrainState, epoch_order, evaluate, fit
from dldna.train.run import check_model_fits_data, evaluation_mode, loss_name, training_mode


def blobs(n_train: int = 512, n_test: int = 256, seed: int = 0) -> Dataset:
    """Four Gaussian blobs in 2-D: separable, tiny, and fast to train on."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 4
        return centres[labels] + 0.7 * torch.randn(n, 2, generator=generator), labels

    x_train, y_train = sample(n_train)
    x_val, y_val = sample(64)
    x_test, y_test = sample(n_test)
    return Dataset("blobs", x_train, y_train, x_test, y_test, ("a", "b", "c", "d"), (0.0,), (1.0,), x_val, y_val)


def small_model(seed: int = 0) -> nn.Module:
    dldna.set_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 4))


def test_fit_learns_and_records_every_step() -> None:
    data, model = blobs(), small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=3, batch_size=50)
    assert history.status == "completed" and history.diverged_at is None
    assert history.steps_per_epoch == math.ceil(512 / 50) == 11
    assert all(len(values) == 33 for values in history.steps.values())
    assert all(len(values) == 3 for values in history.epochs.values())
    assert history.final_test_acc > 0.9 and history.epochs["test_loss"][-1] < history.epochs["test_loss"][0]
    assert history.steps["lr"] == [0.1] * 33
    assert history.config["optimizer"] == "SGD" and history.config["batch_size"] == 50
    assert history.config["parameters"] == sum(p.numel() for p in model.parameters())


def test_step_metrics_match_a_hand_computation() -> None:
    """First step of plain SGD: update = lr * gradient, so the recorded norms can be recomputed exactly."""
    data, model = blobs(), small_model()
    reference = small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.05), data, epochs=1, batch_size=600, seed=7)
    order = torch.randperm(512, generator=torch.Generator().manual_seed(7))
    loss = F.cross_entropy(reference(data.x_train[order]), data.y_train[order])
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    grad_norm = torch.sqrt(sum((g**2).sum() for g in grads))
    weights_after = [p - 0.05 * g for p, g in zip(reference.parameters(), grads)]
    assert history.steps["loss"][0] == pytest.approx(loss.item(), rel=1e-6)
    assert history.steps["grad_norm"][0] == pytest.approx(grad_norm.item(), rel=1e-5)
    assert history.steps["update_norm"][0] == pytest.approx(0.05 * grad_norm.item(), rel=1e-4)
    assert history.steps["weight_norm"][0] == pytest.approx(torch.sqrt(sum((w**2).sum() for w in weights_after)).item(), rel=1e-6)


def test_train_metrics_are_epoch_averages_and_test_metrics_match_evaluate() -> None:
    data, model = blobs(), small_model()
    history = fit(model, torch.optim.Adam(model.parameters(), lr=0.01), data, epochs=1, batch_size=64)
    assert history.epochs["train_loss"][0] == pytest.approx(sum(history.steps["loss"]) / 8, rel=1e-5)
    assert (history.epochs["test_loss"][0], history.epochs["test_acc"][0]) == pytest.approx(
        evaluate(model, data.x_test, data.y_test)
    )


def test_same_seed_same_run_different_seed_different_order() -> None:
    runs = []
    for seed in (1, 1, 2):
        model = small_model()
        runs.append(fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), blobs(), epochs=2, batch_size=32, seed=seed))
    assert runs[0].steps["loss"] == runs[1].steps["loss"] and runs[0].epochs["test_acc"] == runs[1].epochs["test_acc"]
    assert runs[0].steps["loss"] != runs[2].steps["loss"]


def test_divergence_stops_the_run_and_says_where() -> None:
    dldna.set_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    history = fit(model, torch.optim.SGD(model.parameters(), lr=1e3, momentum=0.9), blobs(), epochs=5, batch_size=16)
    assert history.status == "diverged" and history.diverged
    assert history.diverged_at == history.num_steps - 1
    assert not math.isfinite(history.steps["loss"][-1])
    assert all(math.isfinite(value) for value in history.steps["loss"][:-1])
    assert history.num_steps < 5 * 32
    assert "diverged at step" in history.summary()
    json.loads(history.to_json())


def test_scheduler_steps_every_optimizer_step_or_every_epoch() -> None:
    data = blobs()
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    history = fit(model, optimizer, data, epochs=1, batch_size=128, scheduler=scheduler)
    assert history.steps["lr"] == [1.0, 0.5, 0.25, 0.125]
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    history = fit(model, optimizer, data, epochs=2, batch_size=256, scheduler=scheduler, scheduler_interval="epoch")
    assert history.steps["lr"] == pytest.approx([1.0, 1.0, 0.1, 0.1])


def test_gradient_clipping_bounds_the_update() -> None:
    data, model = blobs(), small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=1.0), data, epochs=1, batch_size=32, max_grad_norm=0.01)
    assert max(history.steps["update_norm"]) <= 0.01 * (1 + 1e-5)
    assert max(history.steps["grad_norm"]) > 0.01


class _Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_train_begin(self, state: TrainState) -> None:
        self.events.append("begin")

    def after_backward(self, state: TrainState) -> None:
        assert all(p.grad is not None for p in state.model.parameters())
        state.record("first_grad", state.model[0].weight.grad.norm().item())

    def on_epoch_end(self, state: TrainState) -> None:
        self.events.append(f"epoch{state.epoch}")

    def on_train_end(self, state: TrainState) -> None:
        self.events.append("end")


def test_callbacks_see_gradients_and_can_record() -> None:
    recorder = _Recorder()
    model = small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), epochs=2, batch_size=128, callbacks=[recorder])
    assert recorder.events == ["begin", "epoch0", "epoch1", "end"]
    assert len(history.extras["first_grad"]) == history.num_steps == 8


def test_stop_flag_and_max_steps_end_the_run_early() -> None:
    class StopAtThree(StopFlag):
        def on_step_end(self, state: TrainState) -> None:
            if state.step == 3:
                self.set()
            super().on_step_end(state)

    model = small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), epochs=4, batch_size=16, callbacks=[StopAtThree()])
    assert history.status == "stopped" and history.num_steps == 3
    model = small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), epochs=4, batch_size=16, max_steps=40)
    assert history.status == "completed" and history.num_steps == 40 and len(history.epochs["test_acc"]) == 2


def test_evaluation_split_and_mode_restored() -> None:
    data, model = blobs(), nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=1, batch_size=64, eval_split="val")
    assert history.epochs["test_loss"][0] == pytest.approx(evaluate(model, data.x_val, data.y_val)[0])
    model.train()
    evaluate(model, data.x_test, data.y_test)
    assert model.training


def test_epoch_order_gives_the_batches_fit_trains_on() -> None:
    """Reproducing a run's batches needs only the seed: fit visits the samples in ``epoch_order`` of a generator
    seeded with it, one call per epoch, in consecutive slices."""

    class Inputs(Callback):
        def __init__(self) -> None:
            self.batches: list[torch.Tensor] = []

        def on_step_end(self, state: TrainState) -> None:
            self.batches.append(state.inputs.clone())

    data, model, recorder = blobs(), small_model(), Inputs()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=2, batch_size=100, seed=11, callbacks=[recorder])
    generator = torch.Generator().manual_seed(11)
    expected = [data.x_train[order[start : start + 100]] for order in (epoch_order(generator, 512, "cpu") for _ in range(2)) for start in range(0, 512, 100)]
    assert len(recorder.batches) == len(expected) == 12
    assert all(torch.equal(seen, batch) for seen, batch in zip(recorder.batches, expected))


def test_evaluation_and_training_mode_give_every_submodule_its_own_mode_back() -> None:
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.BatchNorm1d(8))
    model[2].eval()  # a frozen norm layer inside a model in training mode
    with evaluation_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, True, False]
    model.eval()
    with training_mode(model):
        assert all(m.training for m in model.modules())
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize(
    "kwargs, name",
    [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"scheduler_interval": "batch"}, "scheduler_interval"),
     ({"max_grad_norm": -1.0}, "max_grad_norm"), ({"eval_split": "dev"}, "split"), ({"max_steps": 0}, "max_steps")],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    model = small_model()
    with pytest.raises(ValueError, match=name):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), **kwargs)


def without_training_samples() -> Dataset:
    data = blobs()
    return Dataset("empty", data.x_train[:0], data.y_train[:0], data.x_test, data.y_test, data.classes, (0.0,), (1.0,))


BAD_INPUTS = [
    (dict(model=lambda: nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3))), ValueError,
     "model gives 3 scores per sample but the labels go up to 3: make its last layer output 4 values, one per class (data.num_classes)"),
    (dict(model=lambda: nn.Sequential(nn.Linear(5, 4))), ValueError,
     "model cannot take this data's inputs, of shape (2,) per sample (torch: mat1 and mat2 shapes cannot be multiplied "
     "(2x2 and 5x4)): make its first layer take that shape (2 features once flattened)"),
    (dict(model=lambda: nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))), ValueError,
     "model gives one number per sample but the labels go up to 3: make its last layer output 4 values"),
    (dict(data=without_training_samples), ValueError, "data has no train samples: load it with a larger train_size"),
    (dict(epochs=2.5), TypeError, "epochs must be a whole number >= 1, got 2.5: pass an int such as epochs=2"),
    (dict(batch_size=32.0), TypeError, "batch_size must be a whole number >= 1, got 32.0: pass an int such as batch_size=32"),
    (dict(epochs=True), TypeError, "epochs must be a whole number >= 1, got True: pass an int"),
    (dict(max_grad_norm=math.nan), ValueError, "max_grad_norm must be a finite number > 0, got nan: pass e.g. max_grad_norm=1.0"),
    (dict(seed=-1), ValueError, "seed must be a whole number >= 0, got -1: pass seed=0 or more"),
    (dict(device="gpu"), ValueError, "device='gpu' is not a device torch knows: pass device='cpu'"),
    (dict(optimizer=lambda model: torch.optim.SGD), TypeError,
     "optimizer must be a torch.optim.Optimizer built on the model's parameters, got <class 'torch.optim.sgd.SGD'>: "
     "pass e.g. SGD(model.parameters(), lr=...)"),
    (dict(data=lambda: (blobs().x_train, blobs().y_train)), TypeError, "data must be a dldna.data.Dataset, got tuple: load one with"),
]


@pytest.mark.parametrize(("bad", "error", "message"), BAD_INPUTS)
def test_bad_input_gets_one_sentence_that_names_the_fix(bad: dict, error: type, message: str) -> None:
    """What a student sees instead of torch's message from inside the first step, or a silent empty run."""
    bad = dict(bad)
    model = bad.pop("model", small_model)()
    optimizer = bad.pop("optimizer", lambda model: torch.optim.SGD(model.parameters(), lr=0.1))(model)
    data = bad.pop("data", blobs)()
    with pytest.raises(error, match=re.escape(message)):
        fit(model, optimizer, data, **{"progress": False, **bad})


def test_the_class_count_is_checked_under_cross_entropy_only() -> None:
    """A regression loss on integer targets (one output) is no mismatch; label smoothing is still cross-entropy."""
    assert loss_name(F.cross_entropy) == loss_name(functools.partial(F.cross_entropy, label_smoothing=0.1)) == "cross_entropy"
    assert loss_name(nn.CrossEntropyLoss()) == "cross_entropy" and loss_name(F.mse_loss) == "mse_loss"
    dldna.set_seed(0)
    model = nn.Linear(2, 1)

    def squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs.squeeze(1) - targets.float()).pow(2).mean()

    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.01), blobs(), epochs=1, loss_fn=squared_error, progress=False)
    assert history.config["loss"] == "squared_error" and history.status == "completed"
    with pytest.raises(ValueError, match="model gives one number per sample but the labels go up to 3"):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.01), blobs(), loss_fn=functools.partial(F.cross_entropy, label_smoothing=0.1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_names_the_fix() -> None:
    model = small_model()
    with pytest.raises(ValueError, match="device='cuda' was asked for, but torch sees no CUDA device: pass device='cpu'"):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), device="cuda")


def test_the_fit_check_leaves_the_model_and_the_random_state_alone() -> None:
    """The check runs the model once on two samples: batch norm keeps its statistics, dropout draws nothing, every
    submodule keeps its mode, and the run is the one an unchecked run would be (same losses as by hand)."""
    dldna.set_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 4))
    model[1].eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_model_fits_data(model, blobs(), "test", F.cross_entropy)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert [m.training for m in model] == [True, False, True, True, True]


def test_history_round_trips_through_dict_and_json() -> None:
    model = small_model()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), epochs=1, batch_size=128)
    again = History.from_dict(json.loads(history.to_json()))
    assert again.steps == history.steps and again.epochs == history.epochs and again.status == "completed"


def test_bf16_autocast_trains_to_the_same_accuracy() -> None:
    runs = {}
    for amp in (False, True):
        model = small_model()
        runs[amp] = fit(model, torch.optim.Adam(model.parameters(), lr=0.01), blobs(), epochs=3, batch_size=64, amp=amp)
    assert runs[True].config["amp"] is True
    assert runs[True].final_test_acc == pytest.approx(runs[False].final_test_acc, abs=0.03)
    assert runs[True].steps["loss"] != runs[False].steps["loss"]


@pytest.mark.slow
def test_compiled_model_follows_the_eager_loss_curve() -> None:
    runs = {}
    for compiled in (False, True):
        model = small_model()
        runs[compiled] = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), blobs(), epochs=2, batch_size=64, compile=compiled)
    assert runs[True].steps["loss"] == pytest.approx(runs[False].steps["loss"], rel=1e-4, abs=1e-6)
