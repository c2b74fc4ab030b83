"""Normalisation layers against torch.nn in float64: outputs, gradients, running statistics, train and eval."""

import math

import pytest
import torch
from torch import nn

from dldna import norm

TOL = dict(rtol=0, atol=1e-10)
STEPS = 5


def _same_parameters(ours: nn.Module, reference: nn.Module, generator: torch.Generator) -> None:
    """Random affine parameters, identical in both layers, so the test does not rest on gamma = 1, beta = 0."""
    with torch.no_grad():
        for (name, p), (ref_name, q) in zip(ours.named_parameters(), reference.named_parameters()):
            assert name == ref_name
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
            q.copy_(p)


def _compare_steps(ours: nn.Module, reference: nn.Module, shape: tuple[int, ...], train: bool, seed: int = 0) -> None:
    """Several passes on fresh inputs: outputs, gradients w.r.t. input and parameters, and buffers must agree."""
    generator = torch.Generator().manual_seed(seed)
    _same_parameters(ours, reference, generator)
    ours.train(train)
    reference.train(train)
    for _ in range(STEPS):
        x = (3 * torch.randn(shape, generator=generator, dtype=torch.float64) + 1.5).requires_grad_(True)
        x_ref = x.detach().clone().requires_grad_(True)
        upstream = torch.randn(shape, generator=generator, dtype=torch.float64)
        out, out_ref = ours(x), reference(x_ref)
        torch.testing.assert_close(out, out_ref, **TOL)
        params, params_ref = list(ours.parameters()), list(reference.parameters())
        grads = torch.autograd.grad(out, [x, *params], upstream)
        grads_ref = torch.autograd.grad(out_ref, [x_ref, *params_ref], upstream)
        for g, g_ref in zip(grads, grads_ref):
            torch.testing.assert_close(g, g_ref, **TOL)
        for (name, b), (_, b_ref) in zip(ours.named_buffers(), reference.named_buffers()):
            torch.testing.assert_close(b, b_ref, **TOL, msg=f"buffer {name}")


BATCH_CASES = [
    (norm.BatchNorm1d, nn.BatchNorm1d, (16, 6)),
    (norm.BatchNorm1d, nn.BatchNorm1d, (8, 6, 5)),
    (norm.BatchNorm2d, nn.BatchNorm2d, (4, 6, 5, 3)),
]


@pytest.mark.parametrize("ours_cls, ref_cls, shape", BATCH_CASES)
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_batchnorm_matches_torch_train_then_eval(ours_cls, ref_cls, shape, momentum, affine, track):
    kwargs = dict(momentum=momentum, affine=affine, track_running_stats=track, dtype=torch.float64)
    ours, reference = ours_cls(shape[1], **kwargs), ref_cls(shape[1], **kwargs)
    assert list(ours.state_dict()) == list(reference.state_dict())
    _compare_steps(ours, reference, shape, train=True)
    _compare_steps(ours, reference, shape, train=False, seed=1)


def test_batchnorm_running_variance_is_unbiased():
    layer = norm.BatchNorm1d(3, momentum=1.0, dtype=torch.float64)
    x = torch.randn(10, 3, dtype=torch.float64)
    layer(x)
    torch.testing.assert_close(layer.running_var, x.var(dim=0, correction=1), **TOL)
    torch.testing.assert_close(layer.running_mean, x.mean(dim=0), **TOL)
    assert layer.num_batches_tracked.item() == 1


def test_batchnorm_cumulative_average_when_momentum_is_none():
    layer = norm.BatchNorm1d(2, momentum=None, dtype=torch.float64)
    batches = [torch.randn(8, 2, dtype=torch.float64) for _ in range(4)]
    for batch in batches:
        layer(batch)
    torch.testing.assert_close(layer.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0), **TOL)


def test_batchnorm_state_dict_moves_between_ours_and_torch():
    reference = nn.BatchNorm2d(4)
    reference(torch.randn(3, 4, 2, 2))
    ours = norm.BatchNorm2d(4)
    ours.load_state_dict(reference.state_dict())
    ours.eval(), reference.eval()
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("normalized_shape, shape", [(7, (5, 7)), ((3, 4), (2, 5, 3, 4)), ([6, 2, 2], (4, 6, 2, 2))])
@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, True)])
def test_layernorm_matches_torch(normalized_shape, shape, affine, bias):
    kwargs = dict(elementwise_affine=affine, bias=bias, dtype=torch.float64)
    ours, reference = norm.LayerNorm(normalized_shape, **kwargs), nn.LayerNorm(normalized_shape, **kwargs)
    assert list(ours.state_dict()) == list(reference.state_dict())
    _compare_steps(ours, reference, shape, train=True)
    _compare_steps(ours, reference, shape, train=False)


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 5), (3, 6, 4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_groupnorm_matches_torch(groups, shape, affine):
    ours = norm.GroupNorm(groups, 6, affine=affine, dtype=torch.float64)
    reference = nn.GroupNorm(groups, 6, affine=affine, dtype=torch.float64)
    assert list(ours.state_dict()) == list(reference.state_dict())
    _compare_steps(ours, reference, shape, train=True)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_instancenorm_matches_torch(affine, track):
    kwargs = dict(momentum=0.2, affine=affine, track_running_stats=track, dtype=torch.float64)
    ours, reference = norm.InstanceNorm2d(5, **kwargs), nn.InstanceNorm2d(5, **kwargs)
    shape = (4, 5, 6, 3)
    _compare_steps(ours, reference, shape, train=True)
    if track:
        torch.testing.assert_close(ours.running_var, reference.running_var, **TOL)
    _compare_steps(ours, reference, shape, train=False, seed=1)


def test_group_norm_extremes_are_layer_and_instance_norm():
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    one_group = norm.GroupNorm(1, 4, dtype=torch.float64)
    layer = norm.LayerNorm((4, 5, 5), dtype=torch.float64)
    torch.testing.assert_close(one_group(x), layer(x), **TOL)
    per_channel = norm.GroupNorm(4, 4, dtype=torch.float64)
    torch.testing.assert_close(per_channel(x), norm.InstanceNorm2d(4, dtype=torch.float64)(x), **TOL)


@pytest.mark.parametrize("batchnorm_cls", [norm.BatchNorm1d, nn.BatchNorm1d])
@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_linear(batchnorm_cls, bias):
    torch.manual_seed(0)
    linear = nn.Linear(5, 4, bias=bias).double()
    bn = batchnorm_cls(4, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0), bn.bias.normal_()
    for _ in range(STEPS):
        bn(linear(torch.randn(32, 5, dtype=torch.float64) * 2 + 1))
    bn.eval()
    weight_before = linear.weight.clone()
    folded = norm.fold_batchnorm(linear, bn)
    x = torch.randn(16, 5, dtype=torch.float64)
    torch.testing.assert_close(folded(x), bn(linear(x)), **TOL)
    assert torch.equal(linear.weight, weight_before) and (linear.bias is None) == (not bias)


@pytest.mark.parametrize("batchnorm_cls", [norm.BatchNorm2d, nn.BatchNorm2d])
def test_fold_batchnorm_into_conv(batchnorm_cls):
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 6, 3, padding=1, bias=False).double()
    bn = batchnorm_cls(6, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0), bn.bias.normal_()
    for _ in range(STEPS):
        bn(conv(torch.randn(8, 3, 7, 7, dtype=torch.float64) + 0.5))
    bn.eval()
    folded = norm.fold_batchnorm(conv, bn)
    x = torch.randn(4, 3, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(folded(x), bn(conv(x)), **TOL)


def test_fold_batchnorm_needs_running_statistics():
    with pytest.raises(ValueError, match="track_running_stats"):
        norm.fold_batchnorm(nn.Linear(3, 2), norm.BatchNorm1d(2, track_running_stats=False))
    with pytest.raises(ValueError, match="features"):
        norm.fold_batchnorm(nn.Linear(3, 2), norm.BatchNorm1d(3))


def test_batch_of_one_cannot_train_but_evaluates():
    layer = norm.BatchNorm1d(4)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(torch.randn(1, 4))
    layer.eval()
    assert layer(torch.randn(1, 4)).shape == (1, 4)
    # A single image still has many values per channel: BatchNorm2d trains on it, like torch.
    assert norm.BatchNorm2d(4)(torch.randn(1, 4, 3, 3)).shape == (1, 4, 3, 3)


def test_batch_of_two_normalises_to_plus_minus_one():
    x = torch.randn(2, 50, dtype=torch.float64) * 5
    out = norm.BatchNorm1d(50, eps=0.0, dtype=torch.float64)(x)
    torch.testing.assert_close(out.abs(), torch.ones_like(out), **TOL)
    torch.testing.assert_close(torch.sign(out[0]), torch.sign(x[0] - x[1]), **TOL)


def test_invalid_hyperparameters_name_the_argument():
    with pytest.raises(ValueError, match="momentum=1.5"):
        norm.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps=-1"):
        norm.LayerNorm(3, eps=-1)
    with pytest.raises(ValueError, match="num_groups=4"):
        norm.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="num_features=0"):
        norm.BatchNorm2d(0)
    with pytest.raises(ValueError, match="4-d"):
        norm.BatchNorm2d(3)(torch.randn(2, 3))


def test_reduction_axes():
    assert norm.reduction_axes("batch") == (0, 2, 3)
    assert norm.reduction_axes("layer") == (1, 2, 3)
    assert norm.reduction_axes("instance") == (2, 3)
    assert norm.reduction_axes("batch", ndim=2) == (0,)
    with pytest.raises(ValueError, match="kind="):
        norm.reduction_axes("weight")


@pytest.mark.parametrize("kind", norm.NORM_KINDS)
def test_shared_statistics_mask_matches_the_layers(kind):
    """Perturb feature map (1, 2): exactly the feature maps in the mask change, because they share its statistics."""
    n, c, groups = 4, 6, 3
    layers = {
        "batch": norm.BatchNorm2d(c, dtype=torch.float64),
        "layer": norm.LayerNorm((c, 3, 3), dtype=torch.float64),
        "instance": norm.InstanceNorm2d(c, dtype=torch.float64),
        "group": norm.GroupNorm(groups, c, dtype=torch.float64),
    }
    x = torch.randn(n, c, 3, 3, dtype=torch.float64)
    perturbed = x.clone()
    perturbed[1, 2] += torch.randn(3, 3, dtype=torch.float64)
    changed = (layers[kind](perturbed) - layers[kind](x)).abs().amax(dim=(2, 3)) > 1e-12
    mask = norm.shared_statistics(kind, n, c, num_groups=groups, sample=1, channel=2)
    assert torch.equal(changed, torch.from_numpy(mask))


def test_batch_statistics_noise_shrinks_like_one_over_sqrt_batch():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(20000, 8, generator=generator, dtype=torch.float64)
    sizes = [1, 2, 8, 32, 128]
    noise = norm.batch_statistics_noise(features, sizes, trials=400, generator=generator)
    # The batch mean of B standard normals has standard error 1/sqrt(B); 400 trials x 8 features estimate it
    # to about 1/sqrt(2 * 3200) = 1.3 % relative, so 6 % is a safe bound.
    for size, error in zip(sizes, noise.mean_error):
        assert error == pytest.approx(1 / math.sqrt(size), rel=0.06)
    assert all(a > b for a, b in zip(noise.normalization_error, noise.normalization_error[1:]))
    # Batch of one: every normalised value is 0, so the error is the RMS of the population-normalised data.
    assert noise.normalization_error[0] == pytest.approx(1.0, rel=0.03)
    with pytest.raises(ValueError, match="batch_sizes"):
        norm.batch_statistics_noise(features, [0])
