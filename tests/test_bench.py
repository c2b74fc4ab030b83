"""The benchmark scripts run end to end at toy sizes and print every row they promise (their timings are
measured by running them, never asserted here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_script(name: str, *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / name), "--device", "cpu", *arguments], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_live_prints_every_way_with_both_speed_ups() -> None:
    out = run_script("live.py", "--train-size", "512", "--epochs", "2", "--configs", "1", "2")
    ways = ["usual loop", "per-sample Dataset of ready tensors", "TensorDataset", "dldna fit", "fast path", "sweep, 1 ", "sweep, 2 "]
    table = out[out.index("ms/config-epoch") :]
    rows = {way: next(line for line in table.splitlines() if line.startswith(way)) for way in ways}
    per_config = {way: float(re.search(r"\s([\d.]+)\s+[\d.]+x", row).group(1)) for way, row in rows.items()}
    for way, row in rows.items():
        usual, lean = (float(x) for x in re.findall(r"([\d.]+)x", row))
        # Each ratio is the baseline's ms per configuration-epoch over the way's (both rounded as printed).
        assert usual == pytest.approx(per_config["usual loop"] / per_config[way], abs=0.08), row
        assert lean == pytest.approx(per_config["per-sample Dataset of ready tensors"] / per_config[way], abs=0.08), row
    assert per_config["sweep, 2 "] == pytest.approx(float(rows["sweep, 2 "].split()[3]) / 2, abs=0.3), "two configurations share a pass"


def test_landscape_surfaces_agree() -> None:
    out = run_script("landscape.py", "--grid", "3", "--samples", "64", "--rounds", "1")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["loop"], ["vmap"], ["affine"])}
    assert set(rows) == {"loop", "vmap", "affine"}
    assert all(float(row[3]) < 1e-5 for row in rows.values()), "max |diff| vs loop"
    assert float(rows["affine"][4]) < float(rows["loop"][4]), "the affine first layer does less arithmetic"
    assert "matrix-product peak" in out


def test_hessian_matches_pyhessian_at_a_small_size() -> None:
    pytest.importorskip("pyhessian")
    out = run_script("hessian.py", "--sizes", "64", "--rounds", "1", "--trace-samples", "4", "--density-steps", "8", "--threads", "1")
    rows = {task: next(line for line in out.splitlines() if re.match(rf"\s*64 {task}\b", line)) for task in ("top-1", "top-2", "trace", "density")}
    top = re.match(r"\s*64 top-1\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", rows["top-1"])
    assert float(top.group(6)) < 1e-3 and float(top.group(7)) < 1e-2, "relative errors of the top eigenvalue"
    floor = float(rows["top-1"].split()[11])
    assert 0 < floor < float(top.group(1)), "ours' arithmetic at the machine's peak takes less than ours' run"
    assert "matrix-product peak" in out
    with pytest.raises(AssertionError, match="trace-samples"):
        run_script("hessian.py", "--trace-samples", "1")
