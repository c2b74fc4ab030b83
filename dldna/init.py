"""Weight initialisation, written from the variance argument, and the diagnostics that show why it matters.

**Schemes.** :func:`apply` initialises every Linear and Conv layer of a model with one call, e.g.
``dldna.init.apply(model, "kaiming_normal")``; biases become zero and normalisation layers get gain 1 and shift 0.
:data:`SCHEMES` lists every scheme with its reference, for the chapter to iterate over.

**Gains are computed, not tabulated.** A layer ``y = W x`` with independent zero-mean weights gives
``Var(y_i) = fan_in * Var(W) * E[x^2]``. When ``x = f(z)`` and the previous pre-activation ``z`` is standard
normal, keeping ``Var(y) = Var(z) = 1`` needs ``Var(W) = gain^2 / fan_in`` with ``gain = 1 / sqrt(E[f(z)^2])``,
which :func:`gain` evaluates by quadrature for any elementwise activation. ReLU gives ``sqrt(2)`` (He et al.,
2015), Leaky ReLU ``sqrt(2 / (1 + a^2))``, the identity 1: torch's table exactly. For tanh and sigmoid the same
argument gives 1.59 and 1.85 (the gain for which unit-variance pre-activations stay at unit variance), where
torch's ``calculate_gain`` lists the heuristic values 5/3 and 1. Keeping the forward variance is not keeping the
backward one: gradients are multiplied per layer by ``gain^2 * E[f'(z)^2]`` in variance, exactly 1 for the
ReLU family but above 1 for tanh at its gain (the "chaotic" side of Poole et al., 2016; Schoenholz et al., 2017),
which is why the diagnostics below measure both directions.

Which activation follows a layer is read from the model: the first activation module registered after the layer
and before the next Linear/Conv (registration order, which is forward order for ``nn.Sequential`` stacks and the
book's models); a layer with none after it (an output layer) gets gain 1. Pass ``nonlinearity=`` to override.

**Residual-branch protocol.** The residual schemes (``zero_residual``, ``fixup``) treat as a residual block any
module with an attribute ``residual_branch_last``: the last ``nn.Linear``/``nn.Conv*`` of its residual branch. Every
Linear/Conv inside such a module belongs to its branch (the shortcut is parameter-free), and the block computes
``x + branch(x)`` (an activation after the sum is allowed). ``dldna.models.ResidualBlock`` follows it.

**Diagnostics.** :func:`signal_propagation` runs one forward and backward pass with hooks and returns per-layer
activation and gradient statistics through depth; :func:`weight_metrics` gives condition number, spectral norm
and effective rank of each weight matrix; :func:`deep_mlp` builds the deep plain stack these experiments use.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor, nn

from dldna.activations import ACTIVATIONS, make
from dldna.norm import NORM_LAYERS

WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""The layers whose weights the schemes initialise."""

ACTIVATION_LAYERS: tuple[type[nn.Module], ...] = tuple(
    {type(factory()) for factory in ACTIVATIONS.values()} - {nn.Identity}
) + (nn.ELU, nn.SELU, nn.Softplus, nn.Mish)
"""Module types recognised as the nonlinearity following a layer (``nn.Identity`` is not one: models use it
as a placeholder for an absent norm layer)."""

Nonlinearity = str | nn.Module | None

# ----------------------------------------------------------------------------------------------- gains

_QUADRATURE_NODES, _QUADRATURE_WEIGHTS = np.polynomial.legendre.leggauss(160)
_QUADRATURE_HALF_WIDTH = 12.0  # the normal density beyond 12 standard deviations is below 1e-31


def second_moment(activation: str | nn.Module) -> float:
    """``E[f(z)^2]`` for ``z ~ N(0, 1)``: how much of a unit-variance signal's power survives the activation.

    Gauss-Legendre quadrature on ``[-12, 0]`` and ``[0, 12]`` separately, so the kink (ReLU family) or jump
    (step) at 0 sits on an interval boundary and the result is accurate to about 1e-12. A per-channel PReLU is
    averaged over its channels, which is what the next layer's sum over inputs sees.
    """
    module = make(activation) if isinstance(activation, str) else copy.deepcopy(activation)
    module = module.to(device="cpu", dtype=torch.float64)
    half = _QUADRATURE_HALF_WIDTH / 2 * (_QUADRATURE_NODES + 1)
    z = np.concatenate([-half, half])
    weights = np.concatenate([_QUADRATURE_WEIGHTS, _QUADRATURE_WEIGHTS]) * _QUADRATURE_HALF_WIDTH / 2
    density = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    points = torch.from_numpy(z)
    if isinstance(module, nn.PReLU) and module.num_parameters > 1:
        points = points[:, None].expand(-1, module.num_parameters)
    with torch.no_grad():
        values = module(points)
    squares = values.reshape(len(z), -1).pow(2).mean(dim=1).numpy()
    return float(np.sum(weights * density * squares))


@lru_cache(maxsize=None)
def _gain_by_name(name: str) -> float:
    return 1.0 / math.sqrt(second_moment(name))


def gain(nonlinearity: Nonlinearity) -> float:
    """The weight gain that keeps pre-activation variance constant through layers followed by ``nonlinearity``
    (a registry name, a module, or ``None``/``"linear"`` for none): ``1 / sqrt(E[f(z)^2])``, ``z ~ N(0, 1)``."""
    if nonlinearity is None or nonlinearity == "linear" or isinstance(nonlinearity, nn.Identity):
        return 1.0
    if isinstance(nonlinearity, str):
        if nonlinearity not in ACTIVATIONS:
            raise ValueError(f"Unknown nonlinearity: nonlinearity={nonlinearity!r} (must be one of {sorted(ACTIVATIONS)})")
        return _gain_by_name(nonlinearity)
    return 1.0 / math.sqrt(second_moment(nonlinearity))


# ------------------------------------------------------------------------------------- single tensors


def fans(weight: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a Linear ``(out, in)`` or Conv ``(out, in / groups, *kernel)`` weight: the number of
    inputs summed into one output, and of outputs one input feeds (kernel positions count)."""
    if weight.dim() < 2:
        raise ValueError(f"fan_in and fan_out need a weight with at least 2 dimensions, got shape {tuple(weight.shape)}")
    receptive_field = weight[0][0].numel()
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


def _fan(weight: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Invalid mode: mode={mode!r} (must be 'fan_in' or 'fan_out')")
    fan_in, fan_out = fans(weight)
    return fan_in if mode == "fan_in" else fan_out


def _check_std(std: float) -> None:
    if not std >= 0:
        raise ValueError(f"Invalid standard deviation: std={std} (must be >= 0)")


def constant_(weight: Tensor, value: float) -> Tensor:
    """Fill ``weight`` in place with ``value`` (0 for the zeros scheme): every unit of a layer computes the same
    function and receives the same gradient, so no training can tell them apart."""
    with torch.no_grad():
        return weight.fill_(value)


def normal_(weight: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Fill ``weight`` in place from ``N(0, std^2)``."""
    _check_std(std)
    with torch.no_grad():
        return weight.normal_(0.0, std, generator=generator)


def uniform_(weight: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Fill ``weight`` in place from ``U(-a, a)`` with ``a = sqrt(3) * std``, the uniform law with standard
    deviation ``std``."""
    _check_std(std)
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return weight.uniform_(-bound, bound, generator=generator)


def lecun_normal_(weight: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``N(0, 1 / fan_in)``: LeCun et al. (1998), "Efficient BackProp", section 4.6. Preserves variance through a
    linear layer on unit-variance inputs; the recommendation there pairs it with a scaled tanh."""
    return normal_(weight, 1.0 / math.sqrt(fans(weight)[0]), generator)


def xavier_normal_(weight: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """``N(0, gain^2 * 2 / (fan_in + fan_out))``: Glorot & Bengio (2010), a compromise between keeping the forward
    variance (``1 / fan_in``) and the backward variance (``1 / fan_out``)."""
    fan_in, fan_out = fans(weight)
    return normal_(weight, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def xavier_uniform_(weight: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``: the "normalized initialization" of Glorot &
    Bengio (2010), equation 16, with the same variance as :func:`xavier_normal_`."""
    fan_in, fan_out = fans(weight)
    return uniform_(weight, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_normal_(
    weight: Tensor, gain: float = math.sqrt(2.0), mode: str = "fan_in", generator: torch.Generator | None = None
) -> Tensor:
    """``N(0, gain^2 / fan)``: He et al. (2015). ``mode="fan_in"`` preserves the forward variance, ``"fan_out"`` the
    backward variance; the default gain is ReLU's, ``sqrt(2)``."""
    return normal_(weight, gain / math.sqrt(_fan(weight, mode)), generator)


def kaiming_uniform_(
    weight: Tensor, gain: float = math.sqrt(2.0), mode: str = "fan_in", generator: torch.Generator | None = None
) -> Tensor:
    """``U(-a, a)`` with ``a = gain * sqrt(3 / fan)``, the same variance as :func:`kaiming_normal_`."""
    return uniform_(weight, gain / math.sqrt(_fan(weight, mode)), generator)


def orthogonal_(weight: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """A random (Haar-distributed) orthogonal matrix times ``gain``: Saxe et al. (2014).

    The weight is viewed as ``(out, in * kernel)``. Wide matrices get orthonormal rows (``W W^T = gain^2 I``), tall
    ones orthonormal columns (``W^T W = gain^2 I``): every singular value equals ``gain``. QR of a Gaussian matrix,
    with the signs of ``R``'s diagonal moved into ``Q`` so that ``Q`` is uniform over the orthogonal group
    (Mezzadri, 2007).
    """
    rows = weight.shape[0]
    cols = weight.numel() // rows
    dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    gaussian = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r))
    if rows < cols:
        q = q.T
    with torch.no_grad():
        return weight.copy_((gain * q).reshape(weight.shape))


# ------------------------------------------------------------------------------------------- schemes


@dataclass(frozen=True)
class Scheme:
    """One initialisation scheme: how it fills a weight tensor and where it comes from.

    ``fill(weight, gain, options)`` initialises one tensor; ``uses_gain`` says whether the activation-aware gain is
    passed (otherwise ``gain`` is 1); ``residual`` names the post-processing of residual blocks, if any.
    """

    name: str
    summary: str
    reference: str
    fill: Callable[[Tensor, float, "InitOptions"], Tensor]
    uses_gain: bool = False
    residual: str | None = None


@dataclass(frozen=True)
class InitOptions:
    """Per-call settings of :func:`apply`: ``std`` of the fixed-width schemes, ``value`` of ``constant``, Kaiming's
    ``mode``, and the random ``generator``."""

    std: float = 0.01
    value: float = 0.1
    mode: str = "fan_in"
    generator: torch.Generator | None = None


def _kaiming(weight: Tensor, gain: float, options: InitOptions) -> Tensor:
    return kaiming_normal_(weight, gain, options.mode, options.generator)


_SCHEME_LIST = [
    Scheme("zeros", "every weight 0: all units of a layer stay identical (symmetry is never broken)", "",
           lambda w, g, o: constant_(w, 0.0)),
    Scheme("constant", "every weight equal to `value`: as symmetric as zeros, and the signal scales with width", "",
           lambda w, g, o: constant_(w, o.value)),
    Scheme("normal", "N(0, std^2) with a fixed std, blind to the layer's width", "",
           lambda w, g, o: normal_(w, o.std, o.generator)),
    Scheme("uniform", "U(-sqrt(3) std, sqrt(3) std), fixed std, blind to the layer's width", "",
           lambda w, g, o: uniform_(w, o.std, o.generator)),
    Scheme("lecun_normal", "N(0, 1/fan_in)", "LeCun, Bottou, Orr & Mueller (1998), Efficient BackProp",
           lambda w, g, o: lecun_normal_(w, o.generator)),
    Scheme("xavier_normal", "N(0, 2/(fan_in + fan_out))",
           "Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural networks",
           lambda w, g, o: xavier_normal_(w, 1.0, o.generator)),
    Scheme("xavier_uniform", "U(-a, a), a = sqrt(6/(fan_in + fan_out))", "Glorot & Bengio (2010)",
           lambda w, g, o: xavier_uniform_(w, 1.0, o.generator)),
    Scheme("kaiming_normal", "N(0, gain^2/fan), gain from the following activation",
           "He, Zhang, Ren & Sun (2015), Delving Deep into Rectifiers", _kaiming, uses_gain=True),
    Scheme("kaiming_uniform", "U(-a, a), a = gain sqrt(3/fan), gain from the following activation",
           "He et al. (2015)", lambda w, g, o: kaiming_uniform_(w, g, o.mode, o.generator), uses_gain=True),
    Scheme("orthogonal", "random orthogonal matrix: every singular value 1",
           "Saxe, McClelland & Ganguli (2014), Exact solutions to the nonlinear dynamics of learning in deep linear "
           "neural networks", lambda w, g, o: orthogonal_(w, 1.0, o.generator)),
    Scheme("scaled_orthogonal", "random orthogonal matrix times the activation's gain", "Saxe et al. (2014)",
           lambda w, g, o: orthogonal_(w, g, o.generator), uses_gain=True),
    Scheme("zero_residual", "Kaiming everywhere, then the last layer of every residual branch scaled to zero "
           "(its norm layer's gamma when one follows, else its weight): each block starts as the identity",
           "Goyal et al. (2017), Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour, section 5.1",
           _kaiming, uses_gain=True, residual="zero_residual"),
    Scheme("fixup", "Kaiming everywhere, branch layers scaled by L^(-1/(2m-2)) for L branches of m layers, "
           "the last layer of each branch and the output layer set to zero",
           "Zhang, Dauphin & Ma (2019), Fixup Initialization: Residual Learning Without Normalization",
           _kaiming, uses_gain=True, residual="fixup"),
]

SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in _SCHEME_LIST}
"""Every scheme :func:`apply` knows, by name, in historical order."""


def _leaves(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in module.named_modules() if not any(True for _ in m.children())]


def layers_and_activations(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module | None]]:
    """Every Linear/Conv layer of ``model`` in registration order, with the activation module that follows it
    (``None`` when another weight layer, or the end of the model, comes first)."""
    pairs: list[tuple[str, nn.Module, nn.Module | None]] = []
    waiting = False
    for name, leaf in _leaves(model):
        if isinstance(leaf, WEIGHT_LAYERS):
            pairs.append((name, leaf, None))
            waiting = True
        elif waiting and isinstance(leaf, ACTIVATION_LAYERS):
            pairs[-1] = (pairs[-1][0], pairs[-1][1], leaf)
            waiting = False
    return pairs


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """Modules that follow the residual-branch protocol (an attribute ``residual_branch_last``)."""
    return [m for m in model.modules() if hasattr(m, "residual_branch_last")]


def _zero_(layer: nn.Module) -> None:
    with torch.no_grad():
        layer.weight.zero_()
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()


def _zero_residual_branches(model: nn.Module) -> None:
    """Goyal et al.: the norm layer right after the branch's last weight layer gets gamma = 0 (their zero-gamma);
    without one the weight layer itself is zeroed. Either way the branch outputs 0 and the block is ``x -> act(x)``."""
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError("zero_residual needs residual blocks: modules with a `residual_branch_last` attribute")
    for block in blocks:
        last = block.residual_branch_last
        target = last
        seen_last = False
        for _, leaf in _leaves(block):
            if leaf is last:
                seen_last = True
            elif seen_last and isinstance(leaf, WEIGHT_LAYERS):
                break
            elif seen_last and isinstance(leaf, NORM_LAYERS) and getattr(leaf, "weight", None) is not None:
                target = leaf
                break
        _zero_(target)


def _fixup(model: nn.Module) -> None:
    """Fixup rules 1 and 2 (the scalar multipliers and biases of rule 3 are part of the architecture, not of
    the initialisation): scale branch layers by ``L^(-1/(2m-2))``, zero each branch's last layer and the output layer."""
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError("fixup needs residual blocks: modules with a `residual_branch_last` attribute")
    in_branch: set[int] = set()
    with torch.no_grad():
        for block in blocks:
            branch = [leaf for _, leaf in _leaves(block) if isinstance(leaf, WEIGHT_LAYERS)]
            in_branch.update(id(layer) for layer in branch)
            m = len(branch)
            if m > 1:
                for layer in branch:
                    layer.weight.mul_(len(blocks) ** (-1.0 / (2 * m - 2)))
            _zero_(block.residual_branch_last)
        layers = [leaf for _, leaf in _leaves(model) if isinstance(leaf, WEIGHT_LAYERS)]
        if id(layers[-1]) not in in_branch:
            _zero_(layers[-1])


def apply(
    model: nn.Module,
    scheme: str,
    *,
    nonlinearity: Nonlinearity = None,
    mode: str = "fan_in",
    std: float = 0.01,
    value: float = 0.1,
    zero_bias: bool = True,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialise every Linear/Conv weight of ``model`` in place with ``scheme`` (a key of :data:`SCHEMES`) and
    return the model. Biases become 0 (unless ``zero_bias=False``); normalisation layers get gamma 1, beta 0.

    Activation-aware schemes use :func:`gain` of the activation that follows each layer, or of ``nonlinearity``
    for every layer when it is given (a name such as ``"relu"`` or a module such as ``nn.LeakyReLU(0.2)``).
    ``std`` is the width of ``normal``/``uniform``, ``value`` the weight of ``constant``, ``mode`` Kaiming's
    ``"fan_in"`` (forward variance) or ``"fan_out"`` (backward variance). The residual schemes
    (``zero_residual``, ``fixup``) initialise like ``kaiming_normal`` and then adjust the residual blocks found
    through the protocol in the module docstring; they raise ``ValueError`` on a model without residual blocks.
    Parameters of other layer types (embeddings, recurrent cells, PReLU slopes) are left as they are.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown scheme: scheme={scheme!r} (must be one of {list(SCHEMES)})")
    _check_std(std)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Invalid mode: mode={mode!r} (must be 'fan_in' or 'fan_out')")
    chosen = SCHEMES[scheme]
    options = InitOptions(std=std, value=value, mode=mode, generator=generator)
    fixed_gain = gain(nonlinearity) if nonlinearity is not None else None
    for _, layer, activation in layers_and_activations(model):
        layer_gain = 1.0
        if chosen.uses_gain:
            layer_gain = fixed_gain if fixed_gain is not None else gain(activation)
        chosen.fill(layer.weight, layer_gain, options)
        if zero_bias and layer.bias is not None:
            with torch.no_grad():
                layer.bias.zero_()
    for norm in model.modules():
        if isinstance(norm, NORM_LAYERS):
            with torch.no_grad():
                if getattr(norm, "weight", None) is not None:
                    norm.weight.fill_(1.0)
                if getattr(norm, "bias", None) is not None:
                    norm.bias.zero_()
    if chosen.residual == "zero_residual":
        _zero_residual_branches(model)
    elif chosen.residual == "fixup":
        _fixup(model)
    return model


# -------------------------------------------------------------------------------------- deep stacks


def deep_mlp(depth: int, width: int, activation: str = "relu", in_features: int | None = None, bias: bool = True) -> nn.Sequential:
    """``depth`` blocks of ``Linear(width) -> activation`` (a fresh module each), the plain deep stack of the
    signal-propagation experiments. ``activation="linear"`` gives a deep linear network."""
    if depth < 1:
        raise ValueError(f"Invalid depth: depth={depth} (must be >= 1)")
    if width < 1:
        raise ValueError(f"Invalid width: width={width} (must be >= 1)")
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [nn.Linear((in_features or width) if index == 0 else width, width, bias=bias), make(activation)]
    return nn.Sequential(*layers)


@dataclass
class SignalPropagation:
    """Per-layer statistics of one forward and backward pass, index ``l`` for the ``l``-th Linear/Conv layer.

    ``preactivation_*``: the layer's output; ``activation_*``: the output of the activation that follows it (the
    layer's output when none does); ``gradient_std``: std of the loss gradient w.r.t. the layer's output (the
    backward signal); ``weight_gradient_std``: std of the gradient w.r.t. its weight; ``dead_fraction``: units of
    the activation output that are zero on every sample; ``activation_samples``: evenly strided values of each
    activation output, for histograms.
    """

    layers: list[str]
    preactivation_mean: np.ndarray
    preactivation_std: np.ndarray
    activation_mean: np.ndarray
    activation_std: np.ndarray
    gradient_std: np.ndarray
    weight_gradient_std: np.ndarray
    dead_fraction: np.ndarray
    activation_samples: list[np.ndarray] = field(repr=False)


def dead_unit_fraction(activations: Tensor) -> float:
    """Fraction of units that output exactly 0 on every sample of the batch: dead ReLUs.

    ``activations`` is ``(N, features)`` or ``(N, C, *spatial)``; for feature maps the unit is a channel (a dead
    filter is zero at every position of every image).
    """
    if activations.dim() < 2:
        raise ValueError(f"activations must be (N, features) or (N, C, ...), got shape {tuple(activations.shape)}")
    per_unit = activations.detach().transpose(0, 1).reshape(activations.shape[1], -1)
    return (per_unit == 0).all(dim=1).double().mean().item()


def _strided_sample(values: Tensor, max_samples: int) -> np.ndarray:
    flat = values.detach().flatten()
    step = max(1, math.ceil(flat.numel() / max_samples))
    return flat[::step].double().cpu().numpy()


def _keep_output(store: dict[int, Tensor], index: int) -> Callable:
    """Forward hook that stores a layer's output and passes a copy on, so that an in-place activation after the
    layer (``nn.ReLU(inplace=True)``) cannot overwrite the stored tensor; gradients flow through the copy."""

    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        store[index] = output
        return output.clone()

    return hook


def signal_propagation(
    model: nn.Module,
    inputs: Tensor,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    max_samples: int = 4096,
    generator: torch.Generator | None = None,
) -> SignalPropagation:
    """Forward ``inputs`` through ``model`` and backpropagate, recording per-layer activation and gradient
    statistics with hooks (see :class:`SignalPropagation`).

    Without ``loss_fn`` the backward pass starts from a standard normal vector ``g`` at the output (the loss is
    ``sum(g * output)``), so the gradient statistics measure the backward gain of the network alone. The model is
    left as it was: hooks are removed, ``.grad`` is untouched (``torch.autograd.grad``) and buffers such as batch
    norm's running statistics are restored.
    """
    pairs = layers_and_activations(model)
    if not pairs:
        raise ValueError("signal_propagation needs a model with Linear or Conv layers")
    outputs: dict[int, Tensor] = {}
    activated: dict[int, Tensor] = {}
    handles = []
    saved_buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    try:
        for index, (_, layer, activation) in enumerate(pairs):
            handles.append(layer.register_forward_hook(_keep_output(outputs, index)))
            if activation is not None:
                handles.append(activation.register_forward_hook(lambda m, i, o, index=index: activated.__setitem__(index, o)))
        with torch.enable_grad():
            result = model(inputs)
            if loss_fn is None:
                direction = torch.randn(result.shape, generator=generator, dtype=result.dtype).to(result.device)
                loss = (result * direction).sum()
            else:
                loss = loss_fn(result)
            missing = [pairs[i][0] for i in range(len(pairs)) if i not in outputs]
            if missing:
                raise ValueError(f"Layers never called in the forward pass: {missing}")
            trainable = [i for i, (_, layer, _) in enumerate(pairs) if layer.weight.requires_grad]
            targets = [outputs[i] for i in range(len(pairs))] + [pairs[i][1].weight for i in trainable]
            grads = torch.autograd.grad(loss, targets, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved_buffers[name])
    output_grads = grads[: len(pairs)]
    weight_grad_std = np.full(len(pairs), np.nan)
    for index, grad in zip(trainable, grads[len(pairs):]):
        if grad is not None:
            weight_grad_std[index] = grad.std().item()
    after = [activated.get(i, outputs[i]).detach() for i in range(len(pairs))]
    return SignalPropagation(
        layers=[name for name, _, _ in pairs],
        preactivation_mean=np.array([outputs[i].mean().item() for i in range(len(pairs))]),
        preactivation_std=np.array([outputs[i].std().item() for i in range(len(pairs))]),
        activation_mean=np.array([a.mean().item() for a in after]),
        activation_std=np.array([a.std().item() for a in after]),
        gradient_std=np.array([0.0 if g is None else g.std().item() for g in output_grads]),
        weight_gradient_std=weight_grad_std,
        dead_fraction=np.array([dead_unit_fraction(a) for a in after]),
        activation_samples=[_strided_sample(a, max_samples) for a in after],
    )


def compare_schemes(
    schemes: Sequence[str],
    depth: int = 50,
    width: int = 256,
    activation: str = "relu",
    batch_size: int = 512,
    seed: int = 0,
    **options,
) -> dict[str, SignalPropagation]:
    """:func:`signal_propagation` of a :func:`deep_mlp` initialised with each scheme, on the same standard normal
    batch; ``options`` go to :func:`apply`. The data behind the depth figures of the chapter."""
    results = {}
    for scheme in schemes:
        generator = torch.Generator().manual_seed(seed)
        model = apply(deep_mlp(depth, width, activation), scheme, generator=generator, **options)
        inputs = torch.randn(batch_size, width, generator=generator)
        results[scheme] = signal_propagation(model, inputs, generator=generator)
    return results


def plot_signal_propagation(results: Mapping[str, SignalPropagation], title: str | None = None) -> plt.Figure:
    """Activation std (forward) and gradient std (backward) against layer index, log scale, one line per run:
    the picture of vanishing and exploding signals."""
    fig, (ax_forward, ax_backward) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for name, stats in results.items():
        layers = np.arange(1, len(stats.layers) + 1)
        ax_forward.plot(layers, stats.activation_std, label=name, lw=1.5)
        ax_backward.plot(layers, stats.gradient_std, label=name, lw=1.5)
    ax_forward.set(yscale="log", xlabel="layer (depth)", ylabel="std of activations", title="Forward signal")
    ax_backward.set(yscale="log", xlabel="layer (depth)", ylabel="std of dLoss/d(layer output)", title="Backward signal")
    for ax in (ax_forward, ax_backward):
        ax.grid(alpha=0.3, which="both")
    ax_backward.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def plot_activation_histograms(
    stats: SignalPropagation, layers: Sequence[int] | None = None, bins: int = 60, title: str | None = None
) -> plt.Figure:
    """Histograms of activation values at a few layers (default: five evenly spaced, 0-based indices), as in
    Glorot & Bengio's Figure 6: watch the distribution collapse to 0 or pile up at saturation with depth."""
    count = len(stats.layers)
    chosen = list(layers) if layers is not None else sorted(set(np.linspace(0, count - 1, min(5, count)).astype(int)))
    if not chosen or min(chosen) < 0 or max(chosen) >= count:
        raise ValueError(f"Invalid layers: layers={chosen} (indices in [0, {count - 1}])")
    fig, axes = plt.subplots(1, len(chosen), figsize=(2.4 * len(chosen), 2.6), constrained_layout=True, squeeze=False)
    for ax, index in zip(axes[0], chosen):
        ax.hist(stats.activation_samples[index], bins=bins, density=True, color="tab:blue", alpha=0.8)
        ax.set(title=f"layer {index + 1}", xlabel="activation value")
    axes[0][0].set_ylabel("density")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------- weight metrics


def _matrix(weight: Tensor) -> Tensor:
    return weight.detach().reshape(weight.shape[0], -1).double()


def singular_values(weight: Tensor) -> Tensor:
    """Singular values (descending, float64) of a weight viewed as ``(out, in * kernel)``: ``min(out, in)`` of them."""
    return torch.linalg.svdvals(_matrix(weight))


def condition_number(weight: Tensor) -> float:
    """``sigma_max / sigma_min`` over the ``min(m, n)`` singular values of an ``m x n`` weight.

    For a non-square matrix the ``|m - n|`` zero eigenvalues of the larger Gram matrix are not counted: the ratio
    is how unevenly the matrix stretches the directions it does not annihilate. A square Gaussian matrix has
    ``sigma_min`` near 0 (condition number growing like ``n``); a rectangular one with aspect ratio ``b < 1`` stays
    near ``(1 + sqrt(b)) / (1 - sqrt(b))`` (Marchenko-Pastur). ``inf`` when rank-deficient, ``nan`` for zero.
    """
    s = singular_values(weight)
    return (s[0] / s[-1]).item()


def spectral_norm(weight: Tensor) -> float:
    """Largest singular value: the most a layer can stretch an input (Miyato et al., 2018, normalise it to 1)."""
    return singular_values(weight)[0].item()


def effective_rank(weight: Tensor) -> float:
    """``exp(H(p))`` with ``p_i = sigma_i / sum_j sigma_j`` (Roy & Vetterli, 2007): between 1 (rank one) and
    ``min(m, n)`` (all singular values equal). 0 for the zero matrix."""
    s = singular_values(weight)
    total = s.sum()
    if total == 0:
        return 0.0
    p = s[s > 0] / total
    return torch.exp(-(p * p.log()).sum()).item()


@dataclass
class WeightMetrics:
    """Spectral summary of one weight matrix; ``effective_rank_ratio`` is effective rank over ``min(m, n)``."""

    name: str
    shape: tuple[int, ...]
    condition_number: float
    spectral_norm: float
    effective_rank: float
    effective_rank_ratio: float


def weight_metrics(model: nn.Module) -> list[WeightMetrics]:
    """:class:`WeightMetrics` of every Linear/Conv weight of ``model``, in registration order."""
    metrics = []
    for name, layer, _ in layers_and_activations(model):
        rank = effective_rank(layer.weight)
        metrics.append(
            WeightMetrics(
                name=name,
                shape=tuple(layer.weight.shape),
                condition_number=condition_number(layer.weight),
                spectral_norm=spectral_norm(layer.weight),
                effective_rank=rank,
                effective_rank_ratio=rank / min(_matrix(layer.weight).shape),
            )
        )
    return metrics
