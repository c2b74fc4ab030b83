"""Sophia (Liu et al., 2023): a clipped, diagonal second-order step. The gradient's EMA is divided by an EMA of
a cheap Hessian-diagonal estimate, and the ratio is clipped so no coordinate moves more than ``lr``::

    every k steps:  ĥ ← estimate of diag(H)         (Gauss-Newton-Bartlett or Hutchinson, below)
                    h ← β₂ h + (1 - β₂) ĥ
    every step:     w ← w (1 - lr λ)                  decoupled weight decay
                    m ← β₁ m + (1 - β₁) g
                    w ← w - lr · clip(m / max(ρ h, ε), 1)      clip(x, 1) = max(min(x, 1), -1)

Where the curvature is large the step is Newton-like, ``m / (ρ h)``; where it is flat or negative the clip
turns it into a sign step of size ``lr``. The two estimators of ``diag(H)``:

* Gauss-Newton-Bartlett (GNB): sample labels ``ŷ`` from the model's own softmax, take the gradient ``ĝ`` of
  the mean loss on ``ŷ`` over a batch of ``B`` inputs; then ``ĥ = B · ĝ ⊙ ĝ``, whose expectation is the
  Gauss-Newton diagonal (Bartlett's identity). Always >= 0, one extra backward pass.
* Hutchinson: ``ĥ = u ⊙ (H u)`` with ``u`` Rademacher (±1), unbiased for ``diag(H)``; one Hessian-vector
  product (a second backward through the first).

During :func:`dldna.train.fit`, refresh ``h`` with the :class:`SophiaHessianRefresh` callback::

    optimizer = Sophia(model.parameters(), lr=3e-4)
    fit(model, optimizer, data, callbacks=[SophiaHessianRefresh(every=10)])

or by hand, between backward and step: ``optimizer.update_hessian(model, inputs, targets)``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dldna.callbacks import Callback, TrainState
from dldna.linalg import rademacher
from dldna.optim._base import PerParameterOptimizer, decay_weights_, init_state
from dldna.optim._checks import check_betas, check_lr, check_non_negative, check_positive

HESSIAN_METHODS = ("gnb", "hutchinson")


def hutchinson_diagonal(
    loss: torch.Tensor, params: Sequence[torch.Tensor], generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """``u ⊙ (H u)`` per parameter, ``u`` Rademacher: an unbiased estimate of the Hessian diagonal of ``loss``."""
    grads = torch.autograd.grad(loss, params, create_graph=True, materialize_grads=True)
    probes = [rademacher(p.shape, generator, dtype=p.dtype, device=p.device) for p in params]
    directional = [(g * u).sum() for g, u in zip(grads, probes) if g.requires_grad]
    if not directional:
        return [torch.zeros_like(p) for p in params]
    products = torch.autograd.grad(torch.stack(directional).sum(), params, materialize_grads=True)
    return [u * hu for u, hu in zip(probes, products)]


def gauss_newton_bartlett_diagonal(
    logits: torch.Tensor,
    params: Sequence[torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """``B · ĝ ⊙ ĝ`` with ``ĝ`` the gradient of the mean loss on labels sampled from ``softmax(logits)``.

    ``logits`` has shape (B, classes) and must come from a forward pass through ``params``.
    """
    if logits.dim() != 2:
        raise ValueError(f"Invalid logits: expected shape (batch, classes), got {tuple(logits.shape)}")
    with torch.no_grad():
        sampled = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    grads = torch.autograd.grad(loss_fn(logits, sampled), params, materialize_grads=True)
    batch_size = logits.shape[0]
    return [batch_size * g * g for g in grads]


def estimate_hessian_diagonal(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    method: str = "gnb",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    params: Sequence[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """One estimate ``ĥ`` of the loss's Hessian diagonal, a tensor per parameter (``params`` or all trainable).

    ``"gnb"`` needs no targets (it samples its own labels); ``"hutchinson"`` uses the loss on ``targets``.
    ``.grad`` is left untouched (``torch.autograd.grad`` returns the gradients instead of accumulating them).
    """
    if method not in HESSIAN_METHODS:
        raise ValueError(f"Invalid method: method={method!r} (expected one of {HESSIAN_METHODS})")
    if method == "hutchinson" and targets is None:
        raise ValueError("Invalid targets: method='hutchinson' needs targets for the loss")
    params = [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    with torch.enable_grad():
        outputs = model(inputs)
        if method == "gnb":
            return gauss_newton_bartlett_diagonal(outputs, params, loss_fn, generator)
        return hutchinson_diagonal(loss_fn(outputs, targets), params, generator)


def sophia_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.965,
    rho: float | torch.Tensor = 0.04,
    eps: float | torch.Tensor = 1e-15,
    weight_decay: float | torch.Tensor = 0.1,
) -> None:
    """One Sophia step on ``param`` in place, with the Hessian EMA ``state["hessian"]`` (zeros until refreshed)."""
    init_state(state, param, "exp_avg", "hessian")
    decay_weights_(param, lr, weight_decay)
    m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * grad)
    denominator = torch.maximum(rho * state["hessian"], torch.as_tensor(eps, dtype=param.dtype, device=param.device))
    param.sub_(lr * (m / denominator).clamp(-1.0, 1.0))


class Sophia(PerParameterOptimizer):
    """Sophia with the defaults of the paper's reference code (``SophiaG``). Apart from the decoupled decay, no
    coordinate moves by more than ``lr`` in a step. ``h`` stays zero (pure sign steps) until it is refreshed."""

    update = staticmethod(sophia_update)

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.965, 0.99),
        rho: float = 0.04,
        weight_decay: float = 1e-1,
        eps: float = 1e-15,
    ) -> None:
        check_lr(lr)
        check_betas(betas)
        check_positive("rho", rho)
        check_non_negative("weight_decay", weight_decay)
        check_positive("eps", eps)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), rho=rho, weight_decay=weight_decay, eps=eps))

    def _trainable(self) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        return [(p, group) for group in self.param_groups for p in group["params"] if p.requires_grad]

    @torch.no_grad()
    def accumulate_hessian(self, estimates: Sequence[torch.Tensor]) -> None:
        """``h ← β₂ h + (1 - β₂) ĥ``, ``estimates`` in the order of the trainable parameters of ``param_groups``."""
        trainable = self._trainable()
        if len(estimates) != len(trainable):
            raise ValueError(f"Invalid estimates: got {len(estimates)} tensors for {len(trainable)} parameters")
        for (param, group), estimate in zip(trainable, estimates):
            state = self.state[param]
            init_state(state, param, "exp_avg", "hessian")
            beta2 = group["betas"][1]
            state["hessian"].mul_(beta2).add_((1 - beta2) * estimate)

    def update_hessian(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        method: str = "gnb",
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
        generator: torch.Generator | None = None,
    ) -> None:
        """Estimate ``diag(H)`` on this batch (:func:`estimate_hessian_diagonal`) and fold it into ``h``."""
        params = [p for p, _ in self._trainable()]
        estimates = estimate_hessian_diagonal(
            model, inputs, targets, method=method, loss_fn=loss_fn, params=params, generator=generator
        )
        self.accumulate_hessian(estimates)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        """``betas[1]`` is not an argument of the step: it weighs the Hessian refresh (:meth:`accumulate_hessian`)."""
        return dict(lr=group["lr"], beta1=group["betas"][0], rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"])


class SophiaHessianRefresh(Callback):
    """For :func:`dldna.train.fit`: refresh a :class:`Sophia` optimizer's Hessian EMA every ``every`` steps,
    on the current batch, after the backward pass and before the step (the first refresh is at step 0).

    The extra forward pass runs in training mode, so batch-norm running statistics see the batch once more.
    """

    def __init__(
        self,
        every: int = 10,
        *,
        method: str = "gnb",
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
        seed: int = 0,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Invalid every: every={every!r} (must be an integer >= 1)")
        if method not in HESSIAN_METHODS:
            raise ValueError(f"Invalid method: method={method!r} (expected one of {HESSIAN_METHODS})")
        self.every, self.method, self.loss_fn, self.seed = every, method, loss_fn, seed
        self.generator: torch.Generator | None = None

    def after_backward(self, state: TrainState) -> None:
        if not isinstance(state.optimizer, Sophia):
            name = type(state.optimizer).__name__
            raise ValueError(f"Invalid optimizer: SophiaHessianRefresh needs Sophia, got {name}")
        if state.step % self.every != 0:
            return
        if self.generator is None:
            self.generator = torch.Generator(device=state.inputs.device).manual_seed(self.seed)
        state.optimizer.update_hessian(
            state.model, state.inputs, state.targets, method=self.method, loss_fn=self.loss_fn, generator=self.generator
        )
        state.record("hessian_refresh_step", state.step)
