"""The checks of the initialization, normalization and training-dynamics exercises reject wrong and lazy answers:
an "implement" answer that calls the package's (or torch's) implementation, a set of learning rates taken from
theory instead of from what ``fit`` reported, a wrong number for a "why" question. (That every worked solution
passes is tested by running the exercise notebooks.)"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dldna.exercises import grade


def test_implement_answers_that_call_an_implementation_fail() -> None:
    from dldna import init, norm

    def clip_by_global_norm(grads, max_norm):
        copies = [g.clone().requires_grad_(True) for g in grads]
        for tensor, grad in zip(copies, grads):
            tensor.grad = grad.clone()
        torch.nn.utils.clip_grad_norm_(copies, max_norm)
        return [t.grad for t in copies]

    def layer_norm(x, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], eps=eps)

    def layer_norm_module(x, eps=1e-5):
        return norm.LayerNorm(x.shape[-1], eps=eps, elementwise_affine=False).to(x.dtype)(x)

    def kaiming_normal(weight):
        return init.kaiming_normal_(weight)

    def kaiming_normal_torch(weight):
        return torch.nn.init.kaiming_normal_(weight, nonlinearity="relu")

    def effective_rank(matrix):
        return init.effective_rank(matrix)

    def fold(linear, batchnorm):
        return norm.fold_batchnorm(linear, batchnorm)

    def fold_torch(linear, batchnorm):
        return torch.nn.utils.fuse_linear_bn_eval(linear, batchnorm)

    def noise_scale(per_sample):
        from dldna.dynamics import noise_from_batch_gradients

        return noise_from_batch_gradients(per_sample, batch_size=1).b_simple

    for exercise, answer in (
        ("dynamics.clip-norm", clip_by_global_norm),
        ("norm.layer-norm", layer_norm),
        ("norm.layer-norm", layer_norm_module),
        ("init.kaiming-normal", kaiming_normal),
        ("init.kaiming-normal", kaiming_normal_torch),
        ("init.effective-rank", effective_rank),
        ("norm.fold", fold),
        ("norm.fold", fold_torch),
        ("dynamics.noise-scale", noise_scale),
    ):
        passed, message = grade(exercise, answer)
        assert not passed and "calls" in message, (exercise, message)


def test_honest_implementations_pass() -> None:
    def clip_by_global_norm(grads, max_norm):
        total = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        return [g * min(1.0, max_norm / total.item()) for g in grads]

    def layer_norm(x, eps=1e-5):
        mean = x.mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(((x - mean) ** 2).mean(dim=-1, keepdim=True) + eps)

    def kaiming_normal(weight):
        with torch.no_grad():
            return weight.normal_(0.0, math.sqrt(2.0 / weight[0].numel()))

    for exercise, answer in (("dynamics.clip-norm", clip_by_global_norm), ("norm.layer-norm", layer_norm), ("init.kaiming-normal", kaiming_normal)):
        passed, message = grade(exercise, answer)
        assert passed, (exercise, message)


def test_divergence_rates_are_those_fit_reported() -> None:
    from dldna.exercises.dynamics import DIVERGENCE_LRS, diverging_lrs

    reported = diverging_lrs()
    assert reported and set(reported) < set(DIVERGENCE_LRS)
    assert grade("dynamics.divergence-lrs", list(reported))[0]
    assert not grade("dynamics.divergence-lrs", list(reported)[1:])[0]
    assert not grade("dynamics.divergence-lrs", list(DIVERGENCE_LRS))[0]
    assert not grade("dynamics.divergence-lrs", "0.3")[0]


def test_why_questions_check_their_numbers() -> None:
    from dldna.exercises.dynamics import divergence_problem

    x, _ = divergence_problem()
    boundary = 2 / torch.linalg.eigvalsh(x.double().T @ x.double() / len(x)).max().item()
    assert grade("dynamics.divergence-boundary", boundary)[0]
    assert not grade("dynamics.divergence-boundary", 1 / boundary)[0]
    assert grade("init.critical-growth", math.sqrt(128 * 0.17**2 / 2) ** 29)[0]
    assert not grade("init.critical-growth", math.sqrt(128 * 0.17**2 / 2) ** 30)[0]
    assert not grade("init.critical-growth", 0.17 / 0.125)[0]
    assert grade("norm.small-batch-predict", math.sqrt(1.5 / 32))[0]
    assert not grade("norm.small-batch-predict", 1 / math.sqrt(32))[0]


def test_choice_hints_do_not_say_which_way_to_move() -> None:
    for exercise, wrong in (("norm.small-batch", 32), ("norm.small-batch", 128), ("init.critical-std", 0.08), ("init.critical-std", 0.17)):
        passed, message = grade(exercise, wrong)
        assert not passed
        assert not any(word in message.lower() for word in ("too small", "too large", "smaller", "larger")), message
