"""Retrieval from a FAISS index of training features: pull the input's content features towards the voice.

As RVC's ``Pipeline.vc``: for each input frame, the 8 nearest training vectors (squared L2, as
``IndexIVFFlat`` reports), weighted by the inverse square of their distance and normalised,
replace the frame in proportion ``index_rate``:
``features = retrieved * rate + features * (1 - rate)``. The vectors are read back from the index
(``reconstruct_n``), as current RVC and Applio do, so no ``total_fea.npy`` is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rvc.errors import UserError
from rvc.experiment.names import INDEX_SUFFIX
from rvc.fileio import why_not_a_file

NEIGHBOURS = 8  # RVC's k
_BLOCK_FRAMES = 512
_MIN_DISTANCE = 1e-12  # an exact match (distance 0) would divide by zero: it then takes all the weight


@dataclass(frozen=True)
class FeatureIndex:
    """A loaded retrieval index and its vectors."""

    index: Any  # faiss.Index
    vectors: np.ndarray  # float32 [ntotal x dim], row i is the vector of id i
    path: Path

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def retrieve(self, features: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
        """Return the inverse-square-distance weighted mean of each frame's k nearest vectors.

        features : float32 [T x dim] -> float32 [T x dim]. Frames with no neighbour found (an
        index with fewer than k vectors in the probed lists) use the neighbours there are; a frame
        with none keeps its own value.
        """
        query = np.ascontiguousarray(features, dtype=np.float32)
        if query.ndim != 2 or query.shape[1] != self.dim:
            raise ValueError(f"features of shape {query.shape} do not fit a {self.dim}-d index")
        if len(query) == 0:
            return query.copy()
        distances, ids = self.index.search(query, min(k, len(self.vectors)))
        found = ids >= 0
        weights = np.where(found, 1.0 / np.square(np.maximum(distances.astype(np.float64), _MIN_DISTANCE)), 0.0)
        totals = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0).astype(np.float32)
        ids = np.where(found, ids, 0)
        retrieved = np.empty_like(query)
        # In blocks: the gathered neighbours (T x k x dim) of a long window would take hundreds of MB.
        for first in range(0, len(query), _BLOCK_FRAMES):
            rows = slice(first, first + _BLOCK_FRAMES)
            retrieved[rows] = np.einsum("tk,tkd->td", weights[rows], self.vectors[ids[rows]])
        lonely = totals[:, 0] == 0
        retrieved[lonely] = query[lonely]
        return retrieved


def load_index(path: str | Path) -> FeatureIndex:
    """Read a FAISS index file (ours, RVC's ``added_*.index``, Applio's) and its vectors.

    Raises UserError naming the file when it is missing, unreadable or empty.
    """
    path = Path(path)
    index = _read_index(path)
    try:
        vectors = index.reconstruct_n(0, index.ntotal)
    except RuntimeError as exc:
        raise UserError(f"{path}: cannot read the vectors back from this index ({exc}); build it again") from exc
    return FeatureIndex(index=index, vectors=np.ascontiguousarray(vectors, dtype=np.float32), path=path)


def check_index_file(path: Path, feature_dim: int, model: Path) -> None:
    """Refuse an index file that is unreadable, empty or not as wide as ``model``'s features (by name)."""
    index = _read_index(path)
    if index.d != feature_dim:
        raise UserError(_dim_mismatch(path, index.d, feature_dim, model))


def _read_index(path: Path) -> Any:
    """The FAISS index in ``path``, holding vectors; UserError naming the file otherwise."""
    import faiss

    if not path.is_file():
        raise UserError(  # a folder is the careless case: the experiment's, which holds NAME.index
            f"{path} {why_not_a_file(path)}: give the index file ({INDEX_SUFFIX}) built for the model, or build one "
            "with `python -m rvc index --experiment NAME`"
        )
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable FAISS index ({first}); build it again") from exc
    if index.ntotal == 0:
        raise UserError(f"{path}: the index holds no vectors; build it again from the training features")
    return index


def check_index_dim(index: FeatureIndex, feature_dim: int, model: Path) -> None:
    """Refuse an index whose vectors are not as wide as the model's content features."""
    if index.dim != feature_dim:
        raise UserError(_dim_mismatch(index.path, index.dim, feature_dim, model))


def _dim_mismatch(path: Path, index_dim: int, feature_dim: int, model: Path) -> str:
    return (
        f"{path}: the index holds {index_dim}-d vectors but {model} takes {feature_dim}-d features "
        "(a v1 index with a v2 model?); use the index built for this model"
    )


def blend_retrieval(features: np.ndarray, index: FeatureIndex | None, rate: float) -> np.ndarray:
    """Return ``retrieved * rate + features * (1 - rate)``; the features themselves when rate is 0 or no index.

    features : float32 [T x dim] at the encoder's 50 frames/s.
    """
    if index is None or rate <= 0.0:
        return features
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"index rate must be in 0..1, got {rate}")
    retrieved = index.retrieve(features)
    return (retrieved * rate + features * (1.0 - rate)).astype(np.float32)
