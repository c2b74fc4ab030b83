"""Initialisation schemes against their formulas and torch.nn.init, signal propagation through depth, weight
metrics, dead units and the residual schemes."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from torch import nn

from dldna import init
from dldna.models import ResidualCNN, ResidualMLP
from dldna.norm import BatchNorm1d

# ------------------------------------------------------------------------------ stds against formulas

LARGE_LINEAR = (1000, 2000)  # 2e6 entries: the sample std is within 0.05 % of the true std (one standard error)
LARGE_CONV = (256, 128, 3, 3)  # fan_in 1152, fan_out 2304, 2.9e5 entries


def _assert_std(weight: torch.Tensor, expected: float, kurtosis: float) -> None:
    """Sample std within 5 standard errors of ``expected``. For ``N`` i.i.d. entries the relative standard error of
    the sample std is ``sqrt((kurtosis - 1) / (4 N))``: 1/sqrt(2N) for a normal law, sqrt(0.2/N) for a uniform one."""
    n = weight.numel()
    relative_se = math.sqrt((kurtosis - 1) / (4 * n))
    assert weight.std().item() == pytest.approx(expected, rel=5 * relative_se)
    assert abs(weight.mean().item()) < 5 * expected / math.sqrt(n)


NORMAL, UNIFORM = 3.0, 1.8


def _fans(shape):
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


CASES = {
    # name: (ours, torch's, expected std from the formula, kurtosis)
    "lecun_normal": (
        lambda w: init.lecun_normal_(w),
        lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear"),
        lambda fi, fo: 1 / math.sqrt(fi), NORMAL,
    ),
    "xavier_normal": (
        lambda w: init.xavier_normal_(w), nn.init.xavier_normal_, lambda fi, fo: math.sqrt(2 / (fi + fo)), NORMAL,
    ),
    "xavier_uniform": (
        lambda w: init.xavier_uniform_(w), nn.init.xavier_uniform_, lambda fi, fo: math.sqrt(2 / (fi + fo)), UNIFORM,
    ),
    "kaiming_normal_relu": (
        lambda w: init.kaiming_normal_(w, init.gain("relu")),
        lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
        lambda fi, fo: math.sqrt(2 / fi), NORMAL,
    ),
    "kaiming_normal_fan_out": (
        lambda w: init.kaiming_normal_(w, init.gain("relu"), mode="fan_out"),
        lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
        lambda fi, fo: math.sqrt(2 / fo), NORMAL,
    ),
    "kaiming_uniform_leaky": (
        lambda w: init.kaiming_uniform_(w, init.gain(nn.LeakyReLU(0.2))),
        lambda w: nn.init.kaiming_uniform_(w, a=0.2, nonlinearity="leaky_relu"),
        lambda fi, fo: math.sqrt(2 / ((1 + 0.2**2) * fi)), UNIFORM,
    ),
}


@pytest.mark.parametrize("shape", [LARGE_LINEAR, LARGE_CONV], ids=["linear", "conv"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_std_matches_formula_and_torch(case, shape):
    ours, theirs, formula, kurtosis = CASES[case]
    torch.manual_seed(0)
    expected = formula(*_fans(shape))
    _assert_std(ours(torch.empty(shape)), expected, kurtosis)
    _assert_std(theirs(torch.empty(shape)), expected, kurtosis)


def test_uniform_schemes_respect_their_bound():
    weight = init.kaiming_uniform_(torch.empty(LARGE_LINEAR), init.gain("relu"))
    bound = math.sqrt(2) * math.sqrt(3 / LARGE_LINEAR[1])
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.999 * bound


def test_fans_of_linear_grouped_conv_and_conv3d():
    assert init.fans(torch.empty(3, 7)) == (7, 3)
    assert init.fans(nn.Conv2d(8, 16, 3, groups=4).weight) == (2 * 9, 16 * 9)
    assert init.fans(torch.empty(4, 2, 3, 3, 3)) == (54, 108)
    with pytest.raises(ValueError, match="at least 2"):
        init.fans(torch.empty(5))


# --------------------------------------------------------------------------------------------- gains


@pytest.mark.parametrize(
    "nonlinearity, torch_gain",
    [
        ("linear", nn.init.calculate_gain("linear")),
        ("relu", nn.init.calculate_gain("relu")),
        ("leaky_relu", nn.init.calculate_gain("leaky_relu", 0.01)),
        (nn.LeakyReLU(0.3), nn.init.calculate_gain("leaky_relu", 0.3)),
        (nn.Identity(), 1.0),
        (None, 1.0),
    ],
)
def test_computed_gain_equals_torch_for_linear_and_rectifiers(nonlinearity, torch_gain):
    assert init.gain(nonlinearity) == pytest.approx(torch_gain, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "silu", "relu"])
def test_gain_is_the_unit_variance_fixed_point(name):
    """Independent check with scipy's adaptive quadrature: gain^2 * E[f(z)^2] = 1 for z ~ N(0, 1)."""
    from dldna.activations import make

    f = make(name).double()

    def integrand(z: float) -> float:
        value = f(torch.tensor([z], dtype=torch.float64)).item()
        return value**2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    moment = integrate.quad(integrand, -np.inf, 0)[0] + integrate.quad(integrand, 0, np.inf)[0]
    assert init.gain(name) ** 2 * moment == pytest.approx(1.0, rel=1e-8)


def test_gain_of_per_channel_prelu_averages_the_channels():
    layer = nn.PReLU(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.0, 1.0]))
    # Half the channels are ReLU (E[f^2] = 1/2), half linear (1): mean 3/4.
    assert init.gain(layer) == pytest.approx(1 / math.sqrt(0.75), rel=1e-12)


def test_unknown_nonlinearity_raises():
    with pytest.raises(ValueError, match="nonlinearity='swish2'"):
        init.gain("swish2")


# --------------------------------------------------------------------------------- apply on models


def test_apply_reads_each_layers_activation_from_the_model():
    torch.manual_seed(0)
    width = 512
    model = nn.Sequential(
        nn.Linear(width, width), nn.LeakyReLU(0.2),
        nn.Linear(width, width), BatchNorm1d(width), nn.Tanh(),
        nn.Linear(width, width), nn.Dropout(0.1), nn.ReLU(),
        nn.Linear(width, width),
    )
    with torch.no_grad():
        model[3].weight.fill_(3.0)
    assert init.apply(model, "kaiming_normal") is model
    expected = [init.gain(nn.LeakyReLU(0.2)), init.gain("tanh"), math.sqrt(2), 1.0]
    for layer, layer_gain in zip([model[0], model[2], model[5], model[8]], expected):
        _assert_std(layer.weight, layer_gain / math.sqrt(width), NORMAL)
        assert torch.count_nonzero(layer.bias) == 0
    assert torch.all(model[3].weight == 1.0) and torch.all(model[3].bias == 0.0)
    init.apply(model, "kaiming_normal", nonlinearity="relu")
    for layer in [model[0], model[2], model[5], model[8]]:
        _assert_std(layer.weight, math.sqrt(2 / width), NORMAL)


def test_apply_is_reproducible_with_a_generator_and_can_keep_biases():
    first = init.apply(init.deep_mlp(3, 16), "orthogonal", generator=torch.Generator().manual_seed(3))
    second = init.deep_mlp(3, 16)
    biases = [second[i].bias.clone() for i in (0, 2, 4)]
    init.apply(second, "orthogonal", generator=torch.Generator().manual_seed(3), zero_bias=False)
    for i, bias in zip((0, 2, 4), biases):
        assert torch.equal(first[i].weight, second[i].weight)
        assert torch.equal(second[i].bias, bias)


def test_every_plain_scheme_applies_to_an_mlp_and_a_cnn():
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    for name, scheme in init.SCHEMES.items():
        assert scheme.summary
        if scheme.residual is not None:
            continue
        for model in (init.deep_mlp(3, 16), cnn):
            init.apply(model, name, generator=torch.Generator().manual_seed(0))
            assert all(torch.isfinite(p).all() for p in model.parameters())
    cited = {"lecun_normal", "xavier_normal", "kaiming_normal", "orthogonal", "zero_residual", "fixup"}
    assert all(init.SCHEMES[name].reference for name in cited)


def test_constant_initialisation_never_breaks_symmetry():
    torch.manual_seed(0)
    model = init.apply(nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)), "constant", value=0.1)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    for _ in range(20):
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), list(model.parameters()))
        with torch.no_grad():
            for parameter, grad in zip(model.parameters(), grads):
                parameter -= 0.5 * grad
    hidden = model[0].weight
    assert torch.allclose(hidden, hidden[0].expand_as(hidden))
    assert not torch.allclose(hidden[0], hidden[0, 0].expand_as(hidden[0]))


def test_apply_rejects_bad_arguments():
    model = init.deep_mlp(2, 4)
    with pytest.raises(ValueError, match="scheme='he'"):
        init.apply(model, "he")
    with pytest.raises(ValueError, match="mode='fan_avg'"):
        init.apply(model, "kaiming_normal", mode="fan_avg")
    with pytest.raises(ValueError, match="std=-1"):
        init.apply(model, "normal", std=-1)
    with pytest.raises(ValueError, match="residual_branch_last"):
        init.apply(model, "zero_residual")
    with pytest.raises(ValueError, match="depth=0"):
        init.deep_mlp(0, 4)


# --------------------------------------------------------------------------------------- orthogonal


@pytest.mark.parametrize("shape", [(64, 200), (200, 64), (32, 8, 3, 3), (128, 4, 3, 3), (50, 50)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    weight = init.orthogonal_(torch.empty(shape), gain=1.0, generator=torch.Generator().manual_seed(0))
    matrix = weight.reshape(shape[0], -1).double()
    rows, cols = matrix.shape
    gram = matrix @ matrix.T if rows <= cols else matrix.T @ matrix
    torch.testing.assert_close(gram, torch.eye(min(rows, cols), dtype=torch.float64), rtol=0, atol=1e-5)


def test_scaled_orthogonal_uses_the_relu_gain():
    model = init.apply(init.deep_mlp(2, 64, "relu"), "scaled_orthogonal")
    weight = model[0].weight.double()
    torch.testing.assert_close(weight @ weight.T, 2 * torch.eye(64, dtype=torch.float64), rtol=0, atol=1e-5)
    assert init.condition_number(weight) == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------ signal through depth

DEPTH = 50


def _std_ratio(scheme: str, activation: str, width: int, batch: int = 64, **options) -> tuple[float, float]:
    """(last / first activation std, first / last gradient std) of a depth-50 stack on a standard normal batch."""
    generator = torch.Generator().manual_seed(0)
    model = init.apply(init.deep_mlp(DEPTH, width, activation), scheme, generator=generator, **options)
    stats = init.signal_propagation(model, torch.randn(batch, width, generator=generator), generator=generator)
    return stats.activation_std[-1] / stats.activation_std[0], stats.gradient_std[0] / stats.gradient_std[-1]


# The variance argument fixes the *expected* second moment; a finite-width network's log-variance random-walks
# around it with variance about 5 * depth / width for ReLU with Gaussian weights (Hanin & Rolnick, 2018), i.e. a
# standard deviation of about 0.25 for log(std ratio) at depth 50, width 1024. [0.5, 2] (|log| < 0.69) leaves
# about 2.8 of those. Orthogonal weights remove the weights' share of the fluctuation, so width 512 does there.
PRESERVED = (0.5, 2.0)


@pytest.mark.parametrize("scheme, width", [("kaiming_normal", 1024), ("kaiming_uniform", 1024), ("scaled_orthogonal", 512)])
def test_relu_stack_keeps_its_signal_with_kaiming(scheme, width):
    forward, backward = _std_ratio(scheme, "relu", width=width)
    assert PRESERVED[0] <= forward <= PRESERVED[1]
    assert PRESERVED[0] <= backward <= PRESERVED[1]


def test_relu_stack_loses_its_signal_with_xavier():
    forward, backward = _std_ratio("xavier_normal", "relu", width=256)
    # Each ReLU layer halves the second moment: 49 layers give 2^(-49/2) ~ 2e-8.
    assert forward < 1e-6 and backward < 1e-6


@pytest.mark.parametrize("scheme", ["xavier_normal", "lecun_normal", "orthogonal"])
def test_linear_stack_keeps_its_signal(scheme):
    forward, backward = _std_ratio(scheme, "linear", width=512)
    assert PRESERVED[0] <= forward <= PRESERVED[1]
    assert PRESERVED[0] <= backward <= PRESERVED[1]


def test_orthogonal_linear_stack_preserves_norms_exactly():
    forward, backward = _std_ratio("orthogonal", "linear", width=128)
    assert forward == pytest.approx(1.0, abs=1e-3) and backward == pytest.approx(1.0, abs=1e-3)


def test_fixed_std_vanishes_or_explodes_with_width():
    # Per layer the std is multiplied by std * sqrt(width): 0.01 * 16 = 0.16 and 0.2 * 16 = 3.2.
    small, _ = _std_ratio("normal", "linear", width=256, std=0.01)
    large, _ = _std_ratio("normal", "linear", width=256, std=0.2)
    assert small < 1e-30 and large > 1e20


def test_tanh_stack_keeps_forward_signal_with_computed_gain_but_not_with_lecun():
    computed, backward = _std_ratio("kaiming_normal", "tanh", width=512)
    lecun, _ = _std_ratio("lecun_normal", "tanh", width=512)
    assert PRESERVED[0] <= computed <= PRESERVED[1]
    assert lecun < 0.3
    # Backwards, each of the 49 layers multiplies the gradient variance by chi = gain^2 E[tanh'(z)^2] > 1 at the
    # unit-variance fixed point: the forward-preserving gain makes gradients grow towards the input. Finite width
    # and the first layers' approach to the fixed point (the input has variance 1, not E[tanh^2]) allow a factor 2.
    moment = integrate.quad(lambda z: (1 - math.tanh(z) ** 2) ** 2 * math.exp(-z * z / 2), -np.inf, np.inf)[0]
    chi = init.gain("tanh") ** 2 * moment / math.sqrt(2 * math.pi)
    assert chi > 1.1
    predicted = chi ** ((DEPTH - 1) / 2)
    assert predicted / 2 <= backward <= 2 * predicted


def test_signal_propagation_statistics_match_a_manual_pass():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(40, 6)
    stats = init.signal_propagation(model, x, loss_fn=lambda out: out.pow(2).sum() / 2)
    hidden = model[0](x)
    output = model[2](hidden.relu())
    assert stats.layers == ["0", "2"]
    assert stats.preactivation_std[0] == pytest.approx(hidden.std().item(), rel=1e-6)
    assert stats.activation_mean[0] == pytest.approx(hidden.relu().mean().item(), rel=1e-6)
    assert stats.activation_std[1] == pytest.approx(output.std().item(), rel=1e-6)
    # d(|out|^2 / 2) / d out = out.
    assert stats.gradient_std[1] == pytest.approx(output.std().item(), rel=1e-6)
    weight_grad = torch.autograd.grad(output.pow(2).sum() / 2, model[2].weight)[0]
    assert stats.weight_gradient_std[1] == pytest.approx(weight_grad.std().item(), rel=1e-5)
    assert len(stats.activation_samples[0]) == 40 * 5


def test_signal_propagation_with_in_place_relu_records_pre_activations():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 50), nn.ReLU(inplace=True), nn.Linear(50, 2))
    x = torch.randn(30, 6)
    stats = init.signal_propagation(model, x)
    assert stats.preactivation_mean[0] == pytest.approx(model[0](x).mean().item(), rel=1e-6)
    assert stats.preactivation_mean[0] < stats.activation_mean[0]


def test_signal_propagation_leaves_the_model_unchanged():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    init.signal_propagation(model, torch.randn(16, 4))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


# ------------------------------------------------------------------------------------ dead units


def test_dead_unit_fraction_on_constructed_activations():
    activations = torch.rand(4, 5) + 0.1
    activations[:, 0] = 0
    activations[:, 3] = 0
    activations[:3, 1] = 0  # zero on three samples of four: alive
    assert init.dead_unit_fraction(activations) == pytest.approx(2 / 5)
    maps = torch.rand(2, 4, 3, 3) + 0.1
    maps[:, 2] = 0
    maps[:, 1] = 0
    maps[1, 1, 2, 2] = 0.5  # one active pixel keeps the channel alive
    assert init.dead_unit_fraction(maps) == pytest.approx(1 / 4)


def test_dead_fraction_in_signal_propagation():
    model = nn.Sequential(nn.Linear(8, 10), nn.ReLU())
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # these three units can never fire on standard normal inputs
    stats = init.signal_propagation(model, torch.randn(64, 8))
    assert stats.dead_fraction[0] == pytest.approx(0.3)


# ------------------------------------------------------------------------------------ weight metrics


def test_effective_rank_of_identity_rank_one_and_a_two_value_spectrum():
    assert init.effective_rank(torch.eye(7)) == pytest.approx(7.0, rel=1e-12)
    u, v = torch.randn(6, 1), torch.randn(1, 9)
    assert init.effective_rank(u @ v) == pytest.approx(1.0, abs=1e-6)
    p = np.array([0.75, 0.25])
    assert init.effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert init.effective_rank(torch.zeros(3, 3)) == 0.0


def test_condition_number_and_spectral_norm():
    q1, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    wide = q1 @ torch.diag(torch.tensor([4.0, 2.0, 0.5], dtype=torch.float64)) @ q2[:3]
    assert init.condition_number(wide) == pytest.approx(8.0, rel=1e-10)
    assert init.condition_number(wide.T) == pytest.approx(8.0, rel=1e-10)
    assert init.spectral_norm(wide) == pytest.approx(4.0, rel=1e-10)
    assert init.condition_number(torch.tensor([[1.0, 2.0], [2.0, 4.0]])) > 1e7
    conv = torch.randn(8, 3, 3, 3)
    assert init.spectral_norm(conv) == pytest.approx(torch.linalg.matrix_norm(conv.reshape(8, -1), ord=2).item(), rel=1e-5)


def test_weight_metrics_of_a_model():
    model = init.apply(nn.Sequential(nn.Linear(20, 10), nn.ReLU(), nn.Linear(10, 10)), "orthogonal")
    metrics = init.weight_metrics(model)
    assert [m.name for m in metrics] == ["0", "2"]
    for m in metrics:
        assert m.condition_number == pytest.approx(1.0, abs=1e-5)
        assert m.spectral_norm == pytest.approx(1.0, abs=1e-5)
        assert m.effective_rank_ratio == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------------ residual schemes


class _Block(nn.Module):
    """Minimal residual block following the protocol: ``x + branch(x)``."""

    def __init__(self, width: int, layers: int = 2, norm: type[nn.Module] | None = None) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for index in range(layers):
            modules.append(nn.Linear(width, width))
            if norm is not None:
                modules.append(norm(width))
            if index < layers - 1:
                modules.append(nn.ReLU())
        self.branch = nn.Sequential(*modules)

    @property
    def residual_branch_last(self) -> nn.Module:
        return [m for m in self.branch if isinstance(m, nn.Linear)][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def _residual_net(width: int = 64, blocks: int = 4, layers: int = 2, norm=None) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(10, width), nn.ReLU(), *[_Block(width, layers, norm) for _ in range(blocks)], nn.Linear(width, 3)
    )


@pytest.mark.parametrize("norm", [None, BatchNorm1d, nn.BatchNorm1d, nn.LayerNorm])
def test_zero_residual_makes_every_block_the_identity(norm):
    model = init.apply(_residual_net(norm=norm), "zero_residual")
    x = torch.randn(16, 64)
    for block in model[2:6]:
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)
        last = block.residual_branch_last
        if norm is None:
            assert torch.count_nonzero(last.weight) == 0
        else:
            assert torch.count_nonzero(last.weight) > 0  # zero-gamma: the norm's gain is zeroed instead
            assert torch.count_nonzero(block.branch[-1].weight) == 0
    # Gradients still reach the zeroed parameters, so the branches can start learning.
    model(torch.randn(16, 10)).pow(2).sum().backward()
    zeroed = model[2].branch[-1] if norm is not None else model[2].residual_branch_last
    assert zeroed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("norm", [None, "batch"])
def test_zero_residual_on_the_books_models(norm):
    mlp = init.apply(ResidualMLP(in_features=20, width=32, depth=3, norm=norm), "zero_residual")
    cnn = init.apply(ResidualCNN(in_channels=1, width=8, blocks=2, norm=norm), "zero_residual")
    for model, x in ((mlp, torch.randn(8, 32)), (cnn, torch.randn(2, 8, 6, 6))):
        for block in init.residual_blocks(model):
            torch.testing.assert_close(block(x), block.activation(x), rtol=0, atol=0)


@pytest.mark.parametrize("blocks, layers", [(4, 2), (8, 3)])
def test_fixup_scales_branches_and_zeroes_their_ends(blocks, layers):
    width = 256
    torch.manual_seed(0)
    model = init.apply(_residual_net(width, blocks, layers), "fixup")
    scale = blocks ** (-1 / (2 * layers - 2))
    for block in model[2 : 2 + blocks]:
        branch = [m for m in block.branch if isinstance(m, nn.Linear)]
        for layer in branch[:-1]:
            _assert_std(layer.weight, scale * math.sqrt(2 / width), NORMAL)
        assert torch.count_nonzero(branch[-1].weight) == 0
    _assert_std(model[0].weight, math.sqrt(2 / 10), NORMAL)
    assert torch.count_nonzero(model[-1].weight) == 0


# ------------------------------------------------------------------------------ bias rules


def test_log_prior_bias_makes_the_untrained_softmax_predict_the_class_frequencies() -> None:
    counts = torch.tensor([900.0, 50.0, 30.0, 20.0])
    layer = nn.Linear(8, 4)
    nn.init.zeros_(layer.weight)
    init.log_prior_bias_(layer.bias, counts)
    probabilities = torch.softmax(layer(torch.randn(3, 8)).double(), dim=1)
    assert torch.allclose(probabilities, (counts / counts.sum()).double().expand(3, 4), atol=1e-6)
    labels = torch.repeat_interleave(torch.arange(4), counts.long())
    entropy = -(counts / counts.sum() * (counts / counts.sum()).log()).sum().item()
    loss = nn.functional.cross_entropy(layer(torch.zeros(len(labels), 8)), labels).item()
    assert loss == pytest.approx(entropy, rel=1e-5) and loss < math.log(4)
    with pytest.raises(ValueError, match="one count per class"):
        init.log_prior_bias_(layer.bias, [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        init.log_prior_bias_(layer.bias, [1.0, 0.0, 2.0, 3.0])


def test_relu_bias_sets_only_the_layers_a_relu_follows() -> None:
    model = init.apply(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)), "kaiming_normal")
    init.relu_bias_(model, 0.1)
    assert torch.equal(model[0].bias, torch.full((4,), 0.1))
    assert torch.equal(model[2].bias, torch.zeros(4)) and torch.equal(model[4].bias, torch.zeros(2))
    with pytest.raises(ValueError, match="no layer"):
        init.relu_bias_(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), 0.1)


def test_lstm_forget_bias_sets_the_forget_gate_of_every_layer() -> None:
    torch.manual_seed(0)
    lstm = init.lstm_forget_bias_(nn.LSTM(3, 5, num_layers=2, bidirectional=True), 1.0)
    for name, parameter in lstm.named_parameters():
        if name.startswith("bias_ih"):
            other = getattr(lstm, name.replace("bias_ih", "bias_hh"))
            assert torch.equal(parameter[5:10] + other[5:10], torch.ones(5))
            assert not torch.equal(parameter[:5], torch.zeros(5))  # the other gates keep torch's initialisation
    # the forget gate of a cell with zero weights, input and state is sigmoid(1)
    cell = init.lstm_forget_bias_(nn.LSTM(1, 1), 1.0)
    with torch.no_grad():
        for parameter in (cell.weight_ih_l0, cell.weight_hh_l0):
            parameter.zero_()
        gate = torch.sigmoid(cell.bias_ih_l0[1] + cell.bias_hh_l0[1])
    assert gate.item() == pytest.approx(1 / (1 + math.exp(-1)))
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        init.lstm_forget_bias_(nn.GRU(3, 5))
