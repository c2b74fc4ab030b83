"""Where a training run went: weights saved during :func:`dldna.train.fit`, then projected to two dimensions.

:class:`WeightTrajectory` keeps a flattened copy of the weights every ``every`` steps on the training device
(one ``torch.cat``, no copy to the host, no files). The saved rows are then seen in the plane of their first
two principal components (Li et al., 2018: the directions in which the run moved most, with the share of the
movement each explains), in any plane of two given directions, or embedded with PCA / t-SNE; the principal
components also serve as the directions of a loss plane (:func:`pca_directions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dldna.callbacks import Callback, TrainState
from dldna.landscape.params import Direction, flatten, trainable_parameters, unflatten


class WeightTrajectory(Callback):
    """A ``fit`` callback that saves the flattened trainable weights at the start and every ``every`` steps.

    ``weights`` stacks the saved vectors into a ``(snapshots, parameters)`` tensor; ``steps`` says after which
    optimizer step each was taken (0 = initial weights) and ``epoch_ends`` which rows close an epoch.
    Memory is ``snapshots * parameters`` numbers on the training device: choose ``every`` accordingly.
    """

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self._rows: list[Tensor] = []
        self.steps: list[int] = []
        self.epoch_ends: list[int] = []

    def _save(self, state: TrainState) -> None:
        if self.steps and self.steps[-1] == state.step:
            return
        self._rows.append(flatten([p.detach() for p in trainable_parameters(state.model)]))
        self.steps.append(state.step)

    def on_train_begin(self, state: TrainState) -> None:
        self._rows, self.steps, self.epoch_ends = [], [], []
        self._save(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._save(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._save(state)
        self.epoch_ends.append(len(self.steps) - 1)

    def on_train_end(self, state: TrainState) -> None:
        self._save(state)

    @property
    def weights(self) -> Tensor:
        if not self._rows:
            raise ValueError("no weights saved yet: pass this callback to fit(..., callbacks=[...]) first")
        return torch.stack(self._rows)


@dataclass(frozen=True)
class TrajectoryPCA:
    """Principal directions of a trajectory (unit rows of ``components``), their explained variance ratios,
    and every snapshot's coordinates relative to the last snapshot (which sits at the origin)."""

    components: np.ndarray
    explained_variance_ratio: np.ndarray
    coordinates: np.ndarray


def _as_matrix(trajectory: Tensor | np.ndarray) -> np.ndarray:
    matrix = trajectory.detach().cpu().double().numpy() if isinstance(trajectory, Tensor) else np.asarray(trajectory, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) < 2:
        raise ValueError(f"trajectory must be a 2-D array with at least two rows, got shape {matrix.shape}")
    return matrix


def trajectory_pca(trajectory: Tensor | np.ndarray, k: int = 2) -> TrajectoryPCA:
    """PCA (scikit-learn) of the snapshots in ``trajectory`` (one flattened weight vector per row)."""
    from sklearn.decomposition import PCA

    matrix = _as_matrix(trajectory)
    if not 1 <= k <= min(matrix.shape):
        raise ValueError(f"k must be between 1 and {min(matrix.shape)}, got {k}")
    pca = PCA(n_components=k, svd_solver="full" if matrix.shape[1] <= 5000 else "randomized", random_state=0)
    pca.fit(matrix)
    coordinates = (matrix - matrix[-1]) @ pca.components_.T
    return TrajectoryPCA(pca.components_, pca.explained_variance_ratio_, coordinates)


def pca_directions(model: nn.Module, trajectory: Tensor | np.ndarray, k: int = 2) -> tuple[list[Direction], np.ndarray]:
    """The first ``k`` principal components of a weight trajectory as directions, with explained variance ratios.

    ``trajectory`` holds one flattened weight vector per row (as saved by :class:`WeightTrajectory`);
    components have unit norm.
    """
    pca = trajectory_pca(trajectory, k)
    params = trainable_parameters(model)
    device, dtype = params[0].device, params[0].dtype
    directions = [unflatten(torch.as_tensor(c, device=device, dtype=dtype), params) for c in pca.components]
    return directions, pca.explained_variance_ratio


def project_on_plane(trajectory: Tensor | np.ndarray, origin: Sequence[Tensor], directions: Sequence[Sequence[Tensor]]) -> np.ndarray:
    """Coordinates ``(a, b)`` of each snapshot in the plane ``origin + a * d1 + b * d2`` (least squares).

    The directions need not be orthogonal; the part of the movement outside the plane is dropped.
    """
    matrix = _as_matrix(trajectory)
    basis = np.stack([flatten(d).detach().cpu().double().numpy() for d in directions], axis=1)
    centre = flatten(origin).detach().cpu().double().numpy()
    if basis.shape[0] != matrix.shape[1]:
        raise ValueError(f"directions have {basis.shape[0]} entries but snapshots have {matrix.shape[1]}")
    coordinates, *_ = np.linalg.lstsq(basis, (matrix - centre).T, rcond=None)
    return coordinates.T


def embed_snapshots(trajectory: Tensor | np.ndarray, method: Literal["pca", "tsne"] = "tsne", seed: int = 0) -> np.ndarray:
    """A 2-D embedding of the snapshots (rows) with PCA or t-SNE, for a picture of how the run moved.

    t-SNE keeps neighbourhoods, not distances: nearby snapshots stay close, but lengths and angles on the
    plot mean nothing. Its perplexity is capped below the number of snapshots.
    """
    matrix = _as_matrix(trajectory)
    if method == "pca":
        return trajectory_pca(matrix, 2).coordinates
    if method != "tsne":
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=min(len(matrix) - 1, 50), random_state=seed).fit_transform(matrix)
    perplexity = float(min(30, max(2, (len(matrix) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
