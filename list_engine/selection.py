"""Which unlabelled examples to label next: pure functions over a model's probabilities and
the examples' embeddings (no model, no database). Used by the app's "most uncertain" and
"uncertain + diverse" strategies and by bench/active.py.

- uncertainty: margin (1 - (p_top1 - p_top2)) or normalised entropy; higher = less sure.
- diverse: k-means over the embeddings, the example nearest each centroid.
- uncertain_diverse: the most uncertain examples, spread out: k-means over the
  `pool_factor * n` most uncertain, the most uncertain example of each cluster (so a batch
  is not n near-copies of the same confusing document).
- uncertain_regions: coverage first, then uncertainty: k-means over the whole pool, and in
  each cluster the example whose neighbourhood the model is least sure about (its
  uncertainty averaged with its nearest neighbours'). With ~30 labels a lone ambiguous text
  teaches little; a typical text from a region the model confuses teaches the region (the
  idea of uncertainty propagation in PATRON, Yu et al. 2022, arXiv 2209.06995).
"""

from __future__ import annotations

import numpy as np

UNCERTAINTY_KINDS = ("margin", "entropy")


def uncertainty(probs: np.ndarray, kind: str = "margin") -> np.ndarray:
    """(N,) in [0, 1] from (N, C) class probabilities; 1 = the model cannot decide."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be (N, C) with C >= 2, got shape {p.shape}")
    if kind == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]  # (N, 2): second best, best
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if kind == "entropy":
        q = np.clip(p, 1e-12, 1.0)
        return -(q * np.log(q)).sum(1) / np.log(p.shape[1])
    raise ValueError(f"kind must be one of {UNCERTAINTY_KINDS}, got {kind!r}")


def _kmeans(vectors: np.ndarray, k: int, seed: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, random_state=seed, n_init=3).fit(vectors)


def diverse(embeddings: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of n examples that cover the embedding space: the one nearest each of n
    k-means centroids."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = min(n, len(x))
    if n <= 0:
        return np.zeros(0, dtype=int)
    km = _kmeans(x, n, seed)
    dist = np.linalg.norm(x - km.cluster_centers_[km.labels_], axis=1)
    picks = [int(np.flatnonzero(km.labels_ == c)[np.argmin(dist[km.labels_ == c])])
             for c in range(n) if np.any(km.labels_ == c)]
    return np.array(picks, dtype=int)


def uncertain_diverse(scores: np.ndarray, embeddings: np.ndarray, n: int,
                      pool_factor: int = 5, seed: int = 0) -> np.ndarray:
    """Indices of n examples: the most uncertain of each of n clusters of the
    `pool_factor * n` most uncertain examples (`scores` from `uncertainty`)."""
    s = np.asarray(scores, dtype=np.float64)
    n = min(n, len(s))
    if n <= 0:
        return np.zeros(0, dtype=int)
    pool = np.argsort(-s, kind="stable")[: max(n, pool_factor * n)]  # most uncertain first
    km = _kmeans(np.asarray(embeddings, dtype=np.float64)[pool], n, seed)
    picks = []
    for c in range(n):
        members = pool[km.labels_ == c]
        if len(members):
            picks.append(int(members[np.argmax(s[members])]))
    return np.array(picks, dtype=int)


def neighbourhood_uncertainty(scores: np.ndarray, embeddings: np.ndarray, k: int = 10,
                              chunk: int = 2048) -> np.ndarray:
    """(N,) mean of `scores` over each example and its k nearest neighbours by cosine
    similarity (computed in row chunks, so a large corpus needs no N x N matrix)."""
    s = np.asarray(scores, dtype=np.float64)
    x = np.asarray(embeddings, dtype=np.float64)
    if len(s) != len(x):
        raise ValueError(f"{len(s)} scores but {len(x)} embeddings")
    if not len(s):
        return s
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    kk = min(k, len(s) - 1)  # neighbours besides the example itself
    out = np.empty(len(s))
    for start in range(0, len(s), chunk):
        sims = x[start : start + chunk] @ x.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = np.inf  # self first
        nearest = np.argpartition(-sims, kk, axis=1)[:, : kk + 1]
        out[start : start + len(sims)] = s[nearest].mean(1)
    return out


def uncertain_regions(scores: np.ndarray, embeddings: np.ndarray, n: int, k: int = 10,
                      seed: int = 0) -> np.ndarray:
    """Indices of n examples: k-means over all examples into n clusters, and from each the
    example with the highest `neighbourhood_uncertainty`."""
    s = np.asarray(scores, dtype=np.float64)
    n = min(n, len(s))
    if n <= 0:
        return np.zeros(0, dtype=int)
    x = np.asarray(embeddings, dtype=np.float64)
    region = neighbourhood_uncertainty(s, x, k)
    km = _kmeans(x, n, seed)
    picks = []
    for c in range(n):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            picks.append(int(members[np.argmax(region[members])]))
    return np.array(picks, dtype=int)
