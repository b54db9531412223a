"""The 2-D map of audiences: stored coordinates when the segment stage wrote them, else a PCA.

UMAP to 2-D would honour the clusters' shapes better, but its first fit in a process costs ~35 s of
numba compilation, too slow for a page; PCA of the L2-normalized embeddings is deterministic and takes
milliseconds on the ≤ 5,000 members a map shows. Segments are still coloured by the stage's labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

__all__ = ["project_2d"]


def project_2d(points: pd.DataFrame, *, random_state: int = 0) -> pd.DataFrame:
    """Add ``x, y`` to ``points`` (columns of :func:`~bubblelens.present.queries.audience_points`).

    Rows with stored ``x, y`` keep them; otherwise rows with a ``vector`` get their first two principal
    components; rows with neither are dropped. ``method`` says which was used.
    """
    df = points.copy()
    if {"x", "y"} <= set(df.columns) and df[["x", "y"]].notna().all().all():
        return df.assign(method="stored")
    # a member without an embedding comes back as None or pandas' NA (no len): dropped, not a crash
    df = df[df["vector"].map(lambda v: v is not None and v is not pd.NA and hasattr(v, "__len__") and len(v) > 0)]
    if len(df) < 3:
        return df.assign(x=np.nan, y=np.nan, method="none")
    X = np.asarray([np.asarray(v, dtype=np.float64) for v in df["vector"]])
    xy = PCA(n_components=2, random_state=random_state).fit_transform(X)
    return df.drop(columns=["vector"]).assign(x=xy[:, 0], y=xy[:, 1], method="pca")
