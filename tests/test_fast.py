"""dldna.train.fast: the graph-ready training step gives the numbers of fit, eagerly on CPU and replayed on CUDA."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.optim import SGD, Adam
from dldna.train import Callback, History, StopFlag, fit
from dldna.train.fast import fit_fast


def blobs(n_train: int = 600, n_test: int = 200, dims: int = 8, seed: int = 0) -> Dataset:
    """Four noisy Gaussian blobs in ``dims`` dimensions (float32)."""
    generator = torch.Generator().manual_seed(seed)
    centres = 1.5 * torch.randn(4, dims, generator=generator)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 4
        return centres[labels] + torch.randn(n, dims, generator=generator), labels

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return Dataset("blobs", x_train, y_train, x_test, y_test, ("a", "b", "c", "d"), (0.0,), (1.0,))


def mlp(seed: int = 0) -> nn.Module:
    dldna.set_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))


OPTIMIZERS = {
    "sgd_momentum_clipped": (lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4), {"max_grad_norm": 0.5}),
    "dldna_adam": (lambda p: Adam(p, lr=3e-3), {}),
    "torch_adam": (lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99)), {}),
    "diverging_sgd": (lambda p: SGD(p, lr=5e3, momentum=0.9), {}),
}


def assert_same_history(fast: History, eager: History, rtol: float) -> None:
    assert fast.status == eager.status and fast.diverged_at == eager.diverged_at
    assert fast.num_steps == eager.num_steps
    for name in ("loss", "grad_norm", "update_norm", "weight_norm", "lr"):
        np.testing.assert_allclose(fast.steps[name], eager.steps[name], rtol=rtol, atol=1e-7, err_msg=name)
    for name in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(fast.epochs[name], eager.epochs[name], rtol=rtol, err_msg=name)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_eager_fast_path_equals_fit(name: str) -> None:
    make_optimizer, options = OPTIMIZERS[name]
    data, model = blobs(), mlp()
    reference = copy.deepcopy(model)
    fast = fit_fast(model, make_optimizer(model.parameters()), data, epochs=3, batch_size=64, seed=4, cuda_graph=False, **options)
    eager = fit(reference, make_optimizer(reference.parameters()), data, epochs=3, batch_size=64, seed=4, progress=False, **options)
    assert_same_history(fast, eager, rtol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters())) or fast.diverged
    assert fast.config["fast"] is True and fast.config["cuda_graph"] is False
    if name == "diverging_sgd":
        assert fast.diverged and fast.diverged_at is not None
    else:
        assert fast.status == "completed" and fast.final_test_acc > 0.8


def test_augmentation_draws_the_same_randomness_as_fit() -> None:
    data, model = blobs(), mlp()
    reference = copy.deepcopy(model)

    def jitter(inputs: torch.Tensor) -> torch.Tensor:
        return inputs + 0.1 * torch.randn_like(inputs)

    torch.manual_seed(11)
    fast = fit_fast(model, SGD(model.parameters(), lr=0.05), data, epochs=2, batch_size=64, augment=jitter, cuda_graph=False)
    torch.manual_seed(11)
    eager = fit(reference, SGD(reference.parameters(), lr=0.05), data, epochs=2, batch_size=64, augment=jitter, progress=False)
    assert_same_history(fast, eager, rtol=1e-6)


def test_stop_flag_max_steps_and_graph_fallback_message() -> None:
    data, model = blobs(), mlp()
    flag = StopFlag()

    class StopAtFive(Callback):
        def on_step_end(self, state) -> None:
            if state.step == 5:
                flag.set()

    history = fit_fast(model, SGD(model.parameters(), lr=0.01), data, epochs=3, batch_size=64, callbacks=[StopAtFive(), flag])
    assert history.status == "stopped" and history.num_steps == 5
    with pytest.warns(RuntimeWarning, match="CUDA graphs need a CUDA device"):
        history = fit_fast(model, SGD(model.parameters(), lr=0.01), data, epochs=2, batch_size=64, max_steps=12, cuda_graph=True)
    assert history.num_steps == 12 and len(history.epochs["test_acc"]) == 2 and history.config["cuda_graph"] is False
    with pytest.raises(ValueError, match="cuda_graph"):
        fit_fast(model, SGD(model.parameters(), lr=0.01), data, cuda_graph="yes")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_cuda_graph_replay_equals_the_eager_step(name: str) -> None:
    make_optimizer, options = OPTIMIZERS[name]
    data, model = blobs(n_train=1000).to("cuda"), mlp().cuda()
    reference = copy.deepcopy(model)
    graphed = fit_fast(model, make_optimizer(model.parameters()), data, epochs=3, batch_size=64, seed=1, cuda_graph=True, **options)
    eager = fit(reference, make_optimizer(reference.parameters()), data, epochs=3, batch_size=64, seed=1, progress=False, **options)
    assert graphed.config["cuda_graph"] is True
    assert_same_history(graphed, eager, rtol=2e-4)
