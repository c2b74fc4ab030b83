"""Weight initialisation, written from the variance argument: gains, tensor initialisers and the schemes that
apply them to a whole model.

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
which is why :mod:`dldna.init.diagnostics` measures both directions.

Which activation follows a layer is read from the model: the first activation module registered after the layer
and before the next Linear/Conv (registration order, which is forward order for ``nn.Sequential`` stacks and the
book's models); a layer with none after it (an output layer) gets gain 1. Pass ``nonlinearity=`` to override.

**Residual-branch protocol.** The residual schemes (``zero_residual``, ``fixup``) treat as a residual block any
module with an attribute ``residual_branch_last``: the last ``nn.Linear``/``nn.Conv*`` of its residual branch. Every
Linear/Conv inside such a module belongs to its branch (the shortcut is parameter-free), and the block computes
``x + branch(x)`` (an activation after the sum is allowed). ``dldna.models.ResidualBlock`` follows it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

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
