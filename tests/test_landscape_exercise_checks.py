"""The landscape exercises reject wrong and lazy answers: a loop where one vmapped pass is asked for, an
"implement" answer that calls the package's own implementation, a guessed rescaling answer, a wrong "why"."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dldna import landscape as L
from dldna.exercises import landscape as checks


def _moved(model, direction, alpha):
    return {name: p.detach() + alpha * d for (name, p), d in zip(model.named_parameters(), direction)}


def vmapped(model, x, y, direction, alphas):
    stacked = {name: p.detach() + alphas.reshape(-1, *[1] * p.dim()).to(p) * d
               for (name, p), d in zip(model.named_parameters(), direction)}
    with torch.no_grad():
        return torch.func.vmap(lambda weights: F.cross_entropy(torch.func.functional_call(model, weights, (x,)), y))(stacked)


def looped(model, x, y, direction, alphas):
    return torch.stack([F.cross_entropy(torch.func.functional_call(model, _moved(model, direction, a), (x,)), y) for a in alphas])


def delegated(model, x, y, direction, alphas):
    return torch.as_tensor(L.loss_line(model, x, y, direction, alphas.numpy(), method="vmap").loss)


def test_vmap_line_passes_one_vmapped_pass_and_rejects_a_loop_or_the_package() -> None:
    assert checks.vmap_line(vmapped)[0]
    ok, message = checks.vmap_line(looped)
    assert not ok and "9 times" in message
    ok, message = checks.vmap_line(delegated)
    assert not ok and "loss_line" in message


def test_filter_normalize_rejects_an_answer_that_calls_the_package() -> None:
    def by_hand(direction, weights):
        result = []
        for d, w in zip(direction, weights):
            if d.dim() <= 1:
                result.append(torch.zeros_like(d))
                continue
            rows_d, rows_w = d.reshape(len(d), -1), w.detach().reshape(len(w), -1)
            result.append((rows_d * rows_w.norm(dim=1, keepdim=True) / rows_d.norm(dim=1, keepdim=True)).reshape(d.shape))
        return result

    assert checks.filter_normalize_check(by_hand)[0]
    ok, message = checks.filter_normalize_check(lambda direction, weights: L.filter_normalize(direction, weights))
    assert not ok and "filter_normalize" in message


def test_rescale_invariance_wants_the_computed_changes_not_a_guess() -> None:
    changes = checks._rescaled_changes()
    assert changes["raw"] > 1e-3 and changes["filter"] < 1e-12
    assert checks.rescale_invariance(changes)[0]
    assert not checks.rescale_invariance({"raw": True, "filter": False})[0]
    assert not checks.rescale_invariance({"raw": 1.0, "filter": 0.0})[0]
    assert not checks.rescale_invariance({"raw": changes["raw"], "filter": 0.5})[0]


def test_basins_and_the_why_question_never_say_which_way_to_move() -> None:
    expected = L.sublevel_persistence(checks.egg_crate()).basins(0.5)
    assert checks.basins(expected)[0]
    for wrong in (expected - 1, expected + 1):
        ok, message = checks.basins(wrong)
        assert not ok and "too" not in message
    assert checks.why_one_basin("b")[0] and checks.why_one_basin(" B ")[0]
    assert not any(checks.why_one_basin(letter)[0] for letter in "acd")
    assert not checks.why_one_basin("e")[0]
