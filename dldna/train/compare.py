"""Optimizers side by side: a learning-rate search per optimizer, the final runs, their state memory, and two
measurements that tell optimizers apart (how weight decay acts per coordinate, how flat a solution is).

Everything trains through :func:`dldna.train.fit`; this module only decides what to run and collects the
:class:`~dldna.train.History` objects. An optimizer is given as a *factory*: ``factory(params, lr=...)``
returns a ready optimizer (an optimizer class, or ``functools.partial(AdamW, weight_decay=0.01)``, or a
function that wraps one optimizer in another, such as Lookahead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.train.callbacks import Callback
from dldna.train.history import History
from dldna.train.loop import fit

OptimizerFactory = Callable[..., torch.optim.Optimizer]
CallbackFactory = Callable[[nn.Module, torch.optim.Optimizer], Sequence[Callback]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LRSearch:
    """Result of :func:`tune_lr`: the validation loss and accuracy reached with each learning rate.

    A diverged run has loss ``inf`` and accuracy ``nan``. ``best_index`` points at the lowest validation loss
    (the first learning rate when every run diverged, so a final run with it shows the divergence).
    """

    lrs: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_acc: tuple[float, ...]

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.val_loss))

    @property
    def best_lr(self) -> float:
        return self.lrs[self.best_index]


def train_run(
    data: Dataset,
    model_fn: Callable[[], nn.Module],
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    *,
    seed: int = 0,
    callbacks: CallbackFactory | None = None,
    **fit_options,
) -> tuple[nn.Module, torch.optim.Optimizer, History]:
    """Train a fresh ``model_fn()`` initialised under ``seed`` with :func:`~dldna.train.fit`.

    Every run with the same ``seed`` starts from the same weights and sees the same batches, so runs differ
    only by their optimizer. Returns the trained model, its optimizer (with its state) and the History.
    """
    dldna.set_seed(seed)
    model = model_fn().to(data.device)
    optimizer = make_optimizer(model.parameters())
    hooks = callbacks(model, optimizer) if callbacks is not None else ()
    history = fit(model, optimizer, data, seed=seed, callbacks=hooks, progress=False, **fit_options)
    return model, optimizer, history


def tune_lr(
    data: Dataset,
    model_fn: Callable[[], nn.Module],
    factory: OptimizerFactory,
    lrs: Sequence[float],
    *,
    epochs: int = 1,
    batch_size: int = 128,
    seed: int = 0,
    callbacks: CallbackFactory | None = None,
    **fit_options,
) -> LRSearch:
    """Train once per learning rate in ``lrs`` and score each run on the *validation* split.

    The test split is never looked at, so the learning rate chosen here can be used for a fair final run.
    ``data`` must have been loaded with ``val_size > 0``.
    """
    if not lrs or any(not (lr > 0 and math.isfinite(lr)) for lr in lrs):
        raise ValueError(f"lrs must be a non-empty sequence of positive numbers, got {lrs!r}")
    if data.y_val is None:
        raise ValueError("data has no validation split: load it with val_size > 0")
    losses, accs = [], []
    for lr in lrs:
        _, _, run = train_run(
            data, model_fn, lambda params, lr=lr: factory(params, lr=lr), seed=seed, callbacks=callbacks,
            epochs=epochs, batch_size=batch_size, eval_split="val", **fit_options,
        )
        finished = not run.diverged and bool(run.epochs["test_loss"]) and math.isfinite(run.epochs["test_loss"][-1])
        losses.append(run.epochs["test_loss"][-1] if finished else math.inf)
        accs.append(run.epochs["test_acc"][-1] if finished else math.nan)
    return LRSearch(tuple(float(lr) for lr in lrs), tuple(losses), tuple(accs))


def compare_optimizers(
    data: Dataset,
    model_fn: Callable[[], nn.Module],
    optimizers: Mapping[str, Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]],
    *,
    epochs: int = 1,
    batch_size: int = 128,
    seed: int = 0,
    callbacks: Mapping[str, CallbackFactory] | None = None,
    **fit_options,
) -> dict[str, History]:
    """Train the same model from the same initial weights and batch order once per optimizer.

    ``optimizers[name](params)`` builds the optimizer (learning rate included); ``callbacks[name](model,
    optimizer)``, where given, returns that run's callbacks (e.g. one that refreshes a Hessian estimate).
    """
    if not optimizers:
        raise ValueError("optimizers must name at least one optimizer")
    unknown = set(callbacks or {}) - set(optimizers)
    if unknown:
        raise ValueError(f"callbacks names optimizers that are not compared: {sorted(unknown)}")
    return {
        name: train_run(
            data, model_fn, make, seed=seed, callbacks=(callbacks or {}).get(name), epochs=epochs,
            batch_size=batch_size, **fit_options,
        )[2]
        for name, make in optimizers.items()
    }


def state_memory(
    model_fn: Callable[[], nn.Module],
    optimizers: Mapping[str, Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]],
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
) -> dict[str, int]:
    """Bytes of optimizer state each optimizer holds for ``model_fn()`` after one step on ``(x, y)``.

    State is created lazily at the first step, so one step is taken; the count comes from
    :func:`dldna.optim.state_bytes` and excludes the parameters and gradients themselves.
    """
    from dldna.optim import state_bytes

    table = {}
    for name, make in optimizers.items():
        model = model_fn().to(x.device)
        optimizer = make(model.parameters())
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step(lambda: loss_fn(model(x), y))
        table[name] = int(state_bytes(optimizer))
    return table


def decay_response(
    factory: OptimizerFactory,
    grad_scales: Sequence[float] | np.ndarray,
    *,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    steps: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """How strongly weight decay acts on coordinates whose gradients have different sizes.

    Each coordinate ``i`` starts at 1 and receives gradients ``grad_scales[i] * z`` with ``z`` standard normal
    noise (the same stream in both runs below, and independent of the weights). Two copies are trained for
    ``steps`` steps, with ``weight_decay`` and without; the gap between them is the decay's effect. It is
    returned divided by what plain decoupled decay would do, ``1 - (1 - lr * weight_decay) ** steps``, so
    1 means "decayed exactly like ``w <- w - lr * weight_decay * w``" and 0.01 means a hundred times weaker.
    Runs in float64 on the CPU.
    """
    scales = torch.as_tensor(np.asarray(grad_scales, dtype=np.float64))
    if scales.dim() != 1 or len(scales) == 0 or not bool((scales > 0).all()):
        raise ValueError("grad_scales must be a non-empty 1-D sequence of positive numbers")
    if not (lr > 0 and weight_decay > 0):
        raise ValueError(f"lr and weight_decay must be > 0, got lr={lr}, weight_decay={weight_decay}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(steps, len(scales), generator=generator, dtype=torch.float64)
    finals = []
    for decay in (weight_decay, 0.0):
        weights = torch.ones(len(scales), dtype=torch.float64, requires_grad=True)
        optimizer = factory([weights], lr=lr, weight_decay=decay)
        for step in range(steps):
            weights.grad = scales * noise[step]
            optimizer.step()
        finals.append(weights.detach().clone())
    with_decay, without_decay = finals
    nominal = 1.0 - (1.0 - lr * weight_decay) ** steps
    return ((without_decay - with_decay) / nominal).numpy()


def random_direction_losses(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    alphas: Sequence[float] | np.ndarray = np.linspace(-1.0, 1.0, 21),
    *,
    directions: int = 3,
    seed: int = 0,
    loss_fn: LossFn = F.cross_entropy,
) -> np.ndarray:
    """Loss of ``model`` moved along ``directions`` random filter-normalised directions, shape ``(directions,
    len(alphas))``.

    A flat solution keeps a low loss further from ``alpha = 0``; filter normalisation (Li et al., 2018) makes
    models with different weight scales comparable. Different ``seed`` values give different directions; the
    same seed gives the same directions for every model of the same architecture. The model is not changed.
    """
    from dldna.landscape.directions import random_direction
    from dldna.landscape.surface import loss_line

    if directions < 1:
        raise ValueError(f"directions must be >= 1, got {directions}")
    rows = []
    for index in range(directions):
        direction = random_direction(model, seed=seed + index)
        rows.append(np.asarray(loss_line(model, x, y, direction, alphas, loss_fn=loss_fn).loss, dtype=float))
    return np.stack(rows)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table from already formatted cells, for ``IPython.display.Markdown`` on a page."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row must have {len(headers)} cells, one per header")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plotly_comparison(runs: Mapping[str, History], captions: Mapping[str, str] | None = None, max_points: int = 300):
    """Training loss of every run (smoothed), with a slider that highlights one run at a time.

    All curves are drawn once and each slider step only changes their opacity and width and the title
    (``captions[name]``), so the figure works on a static page without a kernel.
    """
    import plotly.graph_objects as go

    from dldna.viz import smooth

    if not runs:
        raise ValueError("runs must hold at least one History")
    names = list(runs)
    fig = go.Figure()
    for name in names:
        run = runs[name]
        loss = smooth(run.steps["loss"], max(1, run.steps_per_epoch // 10))
        keep = np.unique(np.linspace(0, len(loss) - 1, min(max_points, len(loss))).astype(int)) if len(loss) else []
        fig.add_scatter(x=np.asarray(keep) + 1, y=loss[keep], name=name, mode="lines")

    def highlight(index: int) -> list[dict]:
        title = f"{names[index]}: {(captions or {}).get(names[index], '')}".rstrip(": ")
        return [
            {"opacity": [1.0 if i == index else 0.2 for i in range(len(names))],
             "line.width": [3 if i == index else 1 for i in range(len(names))]},
            {"title.text": title},
        ]

    steps = [dict(method="update", label=name, args=highlight(i)) for i, name in enumerate(names)]
    first = highlight(0)
    fig.update_traces(opacity=0.2, line_width=1)
    fig.data[0].opacity, fig.data[0].line.width = 1.0, 3
    fig.update_layout(
        title=first[1]["title.text"], height=440, sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="optimizer: "), pad=dict(t=40))],
        xaxis_title="optimizer step", yaxis_title="training loss (cross-entropy, smoothed)", yaxis_type="log",
        margin=dict(l=60, r=20, t=60, b=40),
    )
    return fig
