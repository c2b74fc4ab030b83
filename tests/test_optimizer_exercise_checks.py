"""The checks of the optimizer chapters' exercises (start, optim, modern, scale) reject the wrong and lazy answers
a student might try: an "implement" answer that calls the package's own implementation, a look-alike algorithm,
a wrong choice. (That every worked solution passes is tested by running the exercise notebooks.)"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dldna.exercises import grade


def test_implement_answers_that_call_the_package_fail() -> None:
    from dldna.optim import Adam, Lion, adam_update, lion_update
    from dldna.optim.lars import lars_trust_ratio
    from dldna.toy import momentum
    from dldna.train import fit, lr_curve

    def adam_step(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        w, m, v = w.clone(), m.clone(), v.clone()
        adam_update(w, g, {"step": torch.tensor(t - 1.0), "exp_avg": m, "exp_avg_sq": v}, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        return w, m, v

    def lion(param, grad, exp_avg, *, lr, beta1, beta2, weight_decay):
        return Lion, lion_update

    def trust_ratio(weight, update):
        return float(lars_trust_ratio(weight, update, weight_decay=0.0, trust_coefficient=1.0))

    def warmup_cosine(step, total, warmup, lr):
        return float(lr_curve("warmup_cosine", total, lr=lr, warmup=warmup)[step])

    def train_step(model, optimizer, x, y):
        return fit, Adam

    def nesterov_lookahead(grad, w0, lr, beta, steps):
        return momentum.lookahead_nesterov(grad, w0, lr, beta, steps)[1]

    for exercise, answer, called in (
        ("optim.adam-update", adam_step, "adam_update"),
        ("modern.lion-update", lion, "Lion"),
        ("modern.trust-ratio", trust_ratio, "lars_trust_ratio"),
        ("scale.warmup-cosine", warmup_cosine, "lr_curve"),
        ("start.train-step", train_step, "fit"),
        ("optim.nesterov-lookahead", nesterov_lookahead, "lookahead_nesterov"),
    ):
        passed, message = grade(exercise, answer)
        assert not passed and called in message, (exercise, message)


def test_heavy_ball_is_not_nesterov() -> None:
    def heavy_ball_points(grad, w0, lr, beta, steps):
        previous, current, points = w0.clone(), w0.clone(), []
        for _ in range(steps):
            previous, current = current, current - lr * grad(current) + beta * (current - previous)
            points.append(current)
        return torch.stack(points)

    def lookahead_points(grad, w0, lr, beta, steps):
        w, v, points = w0.clone(), torch.zeros_like(w0), []
        for _ in range(steps):
            v = beta * v - lr * grad(w + beta * v)
            w = w + v
            points.append(w + beta * v)
        return torch.stack(points)

    assert grade("optim.heavy-ball", heavy_ball_points)[0]
    assert not grade("optim.nesterov-lookahead", heavy_ball_points)[0]
    assert grade("optim.nesterov-lookahead", lookahead_points)[0]
    assert not grade("optim.heavy-ball", lookahead_points)[0]


def test_a_schedule_that_starts_its_warm_up_at_zero_fails_and_the_right_one_passes() -> None:
    def right(step, total, warmup, lr):
        if step < warmup:
            return lr * (0.01 + 0.99 * step / warmup)
        return lr * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2

    def no_warmup_start(step, total, warmup, lr):
        if step < warmup:
            return lr * step / warmup
        return right(step, total, warmup, lr)

    assert grade("scale.warmup-cosine", right)[0]
    assert not grade("scale.warmup-cosine", no_warmup_start)[0]


def test_choices_and_numbers_are_graded_without_giving_the_answer_away() -> None:
    assert grade("start.why-divergence", "b")[0] and grade("start.why-divergence", " B ")[0]
    for wrong in ("a", "c", "d"):
        passed, message = grade("start.why-divergence", wrong)
        assert not passed and "'b'" not in message and "(b)" not in message
    assert not grade("start.why-divergence", "e")[0]
    assert grade("scale.bfloat16-update", (7, 23))[0]
    assert not grade("scale.bfloat16-update", (8, 23))[0] and not grade("scale.bfloat16-update", (7, 24))[0]
    assert grade("scale.decay-per-step", [1 - 5e-5, 1 - 5e-5])[0]
    assert not grade("scale.decay-per-step", [1 - 5e-5, 1 - 5e-4])[0]
    assert grade("scale.state-gigabytes", [4, 8, 4])[0] and not grade("scale.state-gigabytes", [4, 4, 4])[0]
    assert grade("scale.activation-bytes", 32 * (784 + 256) * 4)[0]
    assert not grade("scale.activation-bytes", 32 * (784 + 256 + 256) * 4)[0]


def test_the_honest_scale_is_asked_for_every_decay() -> None:
    scale_of_one = float(torch.logspace(-4, 1, 11, dtype=torch.float64)[8])
    assert grade("modern.l2-honest-scale", [scale_of_one] * 3)[0]
    assert not grade("modern.l2-honest-scale", scale_of_one)[0]
    assert not grade("modern.l2-honest-scale", [scale_of_one, scale_of_one])[0]
    assert not grade("modern.l2-honest-scale", [scale_of_one, scale_of_one, 1e-4])[0]


def test_train_step_that_forgets_to_zero_the_gradients_fails() -> None:
    def accumulating(model, optimizer, x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert not grade("start.train-step", accumulating)[0]
