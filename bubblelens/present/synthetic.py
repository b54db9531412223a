"""A generated store of any size, every table filled, for benchmarks and app tests.

Rows are drawn with a seeded generator and inserted straight into DuckDB (no ingest, no model): ``n_ads``
ads from 60 sponsors of the six 2024 French camps, each delivered to the 12 age × gender cells and 5
regions of its own profile (so segments differ in what they receive), narrative and camp scores,
the ``cells`` and ``cells:age`` schemes, 2,000 panel audiences in an ``interests`` scheme with their
exposures and a small interest embedding, every scheme's ``exposure_matrix`` (as the measure stage
writes it), and a run manifest. It is not a fixture of real formats: it
exists so that pages can be timed on 100,000 ads and tested without running the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..measure.aggregates import write_exposure_matrix
from ..store import Store, text_hash

__all__ = ["CAMPS", "NARRATIVES", "XSS_TEXTS", "build_synthetic_store"]

NARRATIVES = ("cost_of_living", "pensions", "immigration", "security", "climate", "health", "education",
              "europe", "taxes", "jobs", "agriculture", "democracy", "defence", "housing")
CAMPS = {"nfp": -0.7, "ensemble": 0.1, "liot": 0.0, "lr": 0.5, "rn": 0.85, "reconquete": 0.95}
AGES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("female", "male")
REGIONS = ("Bretagne", "Île-de-France", "Occitanie", "Hauts-de-France", "Provence-Alpes-Côte d'Azur")
CHANNELS = ("facebook", "instagram", "google", "sms")
XSS_TEXTS = (
    "<script>window.__xss = 1; alert('xss')</script> Votez pour la retraite à 60 ans",
    "<img src=x onerror=\"window.__xss=2;alert(2)\"> Baissons les prix de l'énergie",
)
_WORDS = {
    "cost_of_living": "prix salaires inflation énergie facture",
    "pensions": "retraite pension âge départ carrière",
    "immigration": "frontières immigration asile contrôle visas",
    "security": "police sécurité délinquance justice ordre",
    "climate": "climat transition renouvelables carbone planète",
    "health": "hôpital médecins santé soins urgences",
    "education": "école professeurs élèves éducation classes",
    "europe": "Europe Bruxelles union souveraineté traités",
    "taxes": "impôts fiscalité taxes prélèvements dépense",
    "jobs": "emploi chômage travail industrie usines",
    "agriculture": "agriculteurs paysans terres récoltes normes",
    "democracy": "démocratie référendum institutions vote citoyens",
    "defence": "armée défense Ukraine militaire budget",
    "housing": "logement loyers construction HLM propriétaires",
}


def _now() -> datetime:
    return datetime(2024, 7, 1, 12, 0, 0)


def build_synthetic_store(path: str | Path, *, n_ads: int = 100_000, n_audiences: int = 2000,
                          seed: int = 0, xss: bool = True, encoder: Any = None,
                          extra_texts: Sequence[str] = ()) -> None:
    """Write a synthetic store of ``n_ads`` ads at ``path`` (a new file; an existing one is replaced).

    ``xss`` adds the ads of :data:`XSS_TEXTS` (attacker-shaped texts the app must show as text).
    ``encoder`` (an :class:`~bubblelens.embed.Encoder`), when given, embeds every distinct message text
    into ``embeddings`` under its id, for the semantic search.
    """
    p = Path(path)
    for suffix in ("", ".wal"):
        q = Path(str(p) + suffix)
        if q.exists():
            q.unlink()
    rng = np.random.default_rng(seed)
    camps = list(CAMPS)
    n_sponsors = 60
    sponsor_camp = np.array([camps[i % len(camps)] for i in range(n_sponsors)])
    sponsor = rng.integers(0, n_sponsors, n_ads)
    camp = sponsor_camp[sponsor]
    # Each camp favours a few narratives: a camp-specific Dirichlet over narratives.
    camp_pref = rng.dirichlet(np.full(len(NARRATIVES), 0.4), len(camps))
    narr_idx = _vector_choice(rng, camp_pref, sponsor % len(camps))
    narrative = np.array(NARRATIVES)[narr_idx]
    p_narr = rng.uniform(0.35, 0.98, n_ads)
    narrative_label = np.where(p_narr < 0.42, "unassigned", narrative)
    variant = rng.integers(0, 40, n_ads)
    texts = [f"{_WORDS[n]} — message {v} de {sponsor_camp[s]}" for n, v, s in zip(narrative, variant, sponsor, strict=True)]
    texts += list(extra_texts)
    ids = [f"syn{i:07d}" for i in range(len(texts))]
    if xss:
        texts += list(XSS_TEXTS)
        ids += [f"xss{i}" for i in range(len(XSS_TEXTS))]
    n_total = len(texts)

    def pad(a: np.ndarray, fill: Any) -> np.ndarray:
        return np.concatenate([a, np.full(n_total - len(a), fill, dtype=a.dtype)])

    sponsor_all = pad(sponsor, 0)
    camp_all = pad(camp, "nfp")
    narr_all = pad(narrative_label, "pensions")
    p_all = pad(p_narr, 0.9)
    lo_choices = np.array([0, 1000, 5000, 10000, 50000, 100000, 1000000])
    bucket = rng.integers(0, len(lo_choices), n_total)
    imp_lo = lo_choices[bucket]
    imp_hi = np.where(bucket == len(lo_choices) - 1, -1, np.append(lo_choices[1:], -1)[bucket] - 1)
    start = np.datetime64("2024-05-01") + rng.integers(0, 70, n_total).astype("timedelta64[D]")
    messages = pd.DataFrame({
        "message_id": ids,
        "source_format": "synthetic", "source_file": "synthetic", "source_line": np.arange(n_total),
        "source_sha256": "0" * 64,
        "text": texts, "text_hash": [text_hash(t) for t in texts], "has_text": True,
        "sponsor": [f"Page {sponsor_camp[s].upper()} {s:02d}" for s in sponsor_all],
        "sponsor_id": [str(1000 + s) for s in sponsor_all],
        "channel": np.array(CHANNELS)[rng.integers(0, len(CHANNELS), n_total)],
        "date_start": start.astype("datetime64[us]"),
        "date_stop": (start + rng.integers(1, 20, n_total).astype("timedelta64[D]")).astype("datetime64[us]"),
        "impressions_lower": imp_lo, "impressions_upper": pd.array(np.where(imp_hi < 0, 0, imp_hi)).astype("Int64"),
        "spend_lower": imp_lo / 100.0, "spend_upper": np.where(imp_hi < 0, np.nan, (imp_hi + 1) / 100.0),
        "currency": "EUR", "lang": "fr",
    })
    messages.loc[imp_hi < 0, "impressions_upper"] = pd.NA
    # Deliveries: each camp has an age skew and a region profile.
    age_w = {c: rng.dirichlet(np.full(len(AGES), 2.0)) for c in camps}
    reg_w = {c: rng.dirichlet(np.full(len(REGIONS), 2.0)) for c in camps}
    cam_of = pd.Series(camp_all)
    ag = np.array([np.outer(age_w[c], [0.5, 0.5]).ravel() for c in camps])  # (C, 12)
    rg = np.array([reg_w[c] for c in camps])
    ci = cam_of.map({c: i for i, c in enumerate(camps)}).to_numpy()
    noise = rng.dirichlet(np.full(12, 30.0), n_total)
    ag_share = ag[ci] * noise
    ag_share /= ag_share.sum(axis=1, keepdims=True)
    rg_share = rg[ci]
    cells_ag = [(a, g) for a in AGES for g in GENDERS]
    d_ag = pd.DataFrame({
        "message_id": np.repeat(ids, 12), "kind": "demographic",
        "age": np.tile([a for a, _ in cells_ag], n_total), "gender": np.tile([g for _, g in cells_ag], n_total),
        "region": None, "country": None, "share": ag_share.ravel(), "count": pd.array([None] * (12 * n_total), dtype="Int64"),
    })
    d_rg = pd.DataFrame({
        "message_id": np.repeat(ids, len(REGIONS)), "kind": "region", "age": None, "gender": None,
        "region": np.tile(REGIONS, n_total), "country": None, "share": rg_share.ravel(),
        "count": pd.array([None] * (len(REGIONS) * n_total), dtype="Int64"),
    })
    topk = [json.dumps([[n, round(float(pp), 3)]]) for n, pp in zip(narr_all, p_all, strict=True)]
    scores = pd.concat([
        pd.DataFrame({"message_id": ids, "task": "narrative", "label": narr_all, "p": p_all,
                      "source": "zero-shot", "topk": topk, "encoder_id": "synthetic", "run_id": "syn-classify"}),
        pd.DataFrame({"message_id": ids, "task": "camp", "label": camp_all, "p": 1.0, "source": "sponsor",
                      "topk": None, "encoder_id": "synthetic", "run_id": "syn-classify"}),
    ])
    # Segments: finest cells and the age roll-up.
    cell_keys = [f"age={a}|gender={g}" for a, g in cells_ag] + [f"region={r}" for r in REGIONS]
    mem_cells = pd.DataFrame({"scheme": "cells", "member_id": cell_keys, "segment_id": cell_keys,
                              "probability": 1.0, "fitted": True})
    age_keys = [f"age={a}|gender={g}" for a, g in cells_ag]
    mem_age = pd.DataFrame({"scheme": "cells:age", "member_id": age_keys,
                            "segment_id": [k.split("|")[0] for k in age_keys], "probability": 1.0, "fitted": True})
    # Audiences: interest panel, 6 clusters of interests (+ outliers), one tiny cluster suppressed.
    interests_by = ["écologie vélo bio", "chasse pêche ruralité", "entrepreneuriat bourse crypto",
                    "syndicat grève services publics", "patrimoine armée tradition", "jeux vidéo séries musique"]
    aud_cluster = rng.integers(0, len(interests_by), n_audiences)
    aud_ids = [f"p_{i:016x}" for i in range(n_audiences)]
    aud_text = [f"{interests_by[c]} {i % 7}" for i, c in enumerate(aud_cluster)]
    seg_of = np.array([f"interests:{c}" for c in aud_cluster], dtype=object)
    seg_of[: max(1, n_audiences // 50)] = "outlier"
    seg_of[max(1, n_audiences // 50): max(1, n_audiences // 50) + 5] = "interests:tiny"
    mem_int = pd.DataFrame({"scheme": "interests", "member_id": aud_ids, "segment_id": seg_of,
                            "probability": rng.uniform(0.5, 1, n_audiences), "fitted": True})
    centres = rng.normal(size=(len(interests_by), 16))
    vec = centres[aud_cluster] + 0.3 * rng.normal(size=(n_audiences, 16))
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    uniq_text, first = np.unique(aud_text, return_index=True)
    emb_aud = pd.DataFrame({"encoder_id": "synthetic-16", "text_hash": [text_hash(t) for t in uniq_text],
                            "vector": [v.astype(np.float32).tolist() for v in vec[first]]})
    # Exposures: each audience sees ads of camps near its cluster's lean.
    lean_of_cluster = np.array([-0.7, 0.5, 0.1, -0.7, 0.9, 0.0])
    positions = np.array([CAMPS[c] for c in camp_all])
    n_exp = 30
    exp_aud = np.repeat(np.arange(n_audiences), n_exp)
    cand = rng.integers(0, n_total, (n_audiences, n_exp * 4))
    dist = np.abs(positions[cand] - lean_of_cluster[aud_cluster][:, None]) + rng.uniform(0, 0.6, cand.shape)
    pick = np.take_along_axis(cand, np.argsort(dist, axis=1)[:, :n_exp], axis=1).ravel()
    exposures = pd.DataFrame({"audience_id": np.array(aud_ids)[exp_aud], "message_id": np.array(ids)[pick],
                              "count": rng.integers(1, 6, len(pick)), "source_file": "synthetic",
                              "source_line": np.arange(len(pick)), "source_sha256": "0" * 64})
    exposures = exposures.drop_duplicates(["audience_id", "message_id"])
    audiences = pd.DataFrame({"audience_id": aud_ids, "audience_type": "panel", "interests": aud_text,
                              "source_file": "synthetic", "source_line": np.arange(n_audiences),
                              "source_sha256": "0" * 64})
    with Store.open(p) as store, store.transaction() as con:
        for table, df in (("messages", messages), ("deliveries", pd.concat([d_ag, d_rg])), ("scores", scores),
                          ("segment_members", pd.concat([mem_cells, mem_age, mem_int])),
                          ("audiences", audiences), ("exposures", exposures), ("embeddings", emb_aud)):
            con.register("_df", df)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _df")
            con.unregister("_df")
        _write_segments(con)
        con.execute("""INSERT INTO sources VALUES ('0000', 'synthetic', 'synthetic', 'messages', ?, ?, 0, ?, 'syn-ingest')""",
                    [n_total, n_total, _now()])
        con.execute("INSERT INTO rejects VALUES ('synthetic', '0000', 3, 'spend', 'lower bound above upper bound', '{}')")
        reps = ["Stop à l'élevage intensif", "Les animaux ne sont pas des marchandises"]
        con.execute("""INSERT INTO discovered VALUES ('d01', ?, ?, 42, 'syn-discover')""",
                    [json.dumps(["animaux", "élevage", "bien-être"]),
                     json.dumps([{"message_id": f"rep{i}", "text": t} for i, t in enumerate(reps)])])
        if encoder is not None:
            uniq = sorted(set(texts))
            vecs = encoder.encode(uniq)
            emb = pd.DataFrame({"encoder_id": encoder.id, "text_hash": [text_hash(t) for t in uniq],
                                "vector": [v.astype(np.float32).tolist() for v in vecs]})
            con.register("_df", emb)
            con.execute("INSERT OR REPLACE INTO embeddings BY NAME SELECT * FROM _df")
            con.unregister("_df")
        _write_metrics(con)
        t0 = _now()
        for i, stage in enumerate(("ingest", "classify", "segment", "measure")):
            store.record_run(f"syn-{stage}", stage, status="ok", started_at=t0 + timedelta(minutes=i),
                             finished_at=t0 + timedelta(minutes=i, seconds=30), params={"seed": seed, "n_ads": n_ads},
                             models={"encoder": "synthetic"} if stage == "classify" else {},
                             inputs={"synthetic": n_ads}, timings={"total_s": 0.0})
        # as the measure stage does for the scheme it measures, after the input stages' runs
        for (scheme,) in con.execute("SELECT DISTINCT scheme FROM segments ORDER BY 1").fetchall():
            write_exposure_matrix(con, scheme, run_id="syn-measure")


def _vector_choice(rng: np.random.Generator, probs: np.ndarray, row: np.ndarray) -> np.ndarray:
    """One draw per element from ``probs[row[i]]`` (inverse-CDF, vectorized)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.uniform(size=len(row))
    return np.minimum((u[:, None] > cdf[row]).sum(axis=1), probs.shape[1] - 1)


def _write_segments(con: Any) -> None:
    """``segments`` from the members just written: size = members (audiences) or ads (cells), the
    floor of 10 applied (``interests:tiny`` is suppressed)."""
    con.execute(
        """INSERT INTO segments
           WITH cell_imp AS (
             SELECT sm.scheme, sm.segment_id, count(DISTINCT d.message_id) AS size,
                    sum(d.share * CASE WHEN m.impressions_upper IS NULL THEN m.impressions_lower
                                       ELSE (m.impressions_lower + m.impressions_upper) / 2.0 END) AS impressions
             FROM deliveries d JOIN messages m USING (message_id)
             JOIN segment_members sm ON sm.scheme LIKE 'cells%' AND sm.member_id =
               concat_ws('|', 'age=' || nullif(d.age, ''), 'gender=' || nullif(d.gender, ''),
                         'region=' || nullif(d.region, ''), 'country=' || nullif(d.country, ''))
             GROUP BY ALL),
           aud AS (SELECT scheme, segment_id, count(*) AS size, NULL::DOUBLE AS impressions
                   FROM segment_members WHERE scheme NOT LIKE 'cells%' GROUP BY ALL)
           SELECT scheme, segment_id, segment_id AS label, size, impressions, NULL, size < 10, true,
                  NULL, 'syn-segment'
           FROM (SELECT * FROM cell_imp UNION ALL SELECT * FROM aud)"""
    )


def _write_metrics(con: Any) -> None:
    """``metrics_segments`` / ``metrics_global`` from point estimates (:mod:`.exposure`), with synthetic
    ±10 % intervals: the bench and tests need the tables filled, not a bootstrap."""
    from . import exposure as E
    from . import queries as Q

    if not (Q.has_table(con, "metrics_segments") and Q.has_table(con, "metrics_global")):
        return
    for scheme in ("cells", "interests"):
        nn = E.pivot(Q.exposure_matrix(con, scheme))
        seg = E.segment_metrics(nn, E.pivot(Q.exposure_matrix(con, scheme, task="camp")),
                                positions=CAMPS)
        rows = []
        for r in seg.to_dict("records"):
            for m in ("cross_cutting", "effective_narratives", "gini_simpson"):
                v = float(r[m])
                rows.append(("syn-measure", scheme, r["segment_id"], r["segment_id"], m, v, 0.9 * v, min(1.1 * v, 1e9),
                             float(r["impressions"]), False, "circular"))  # the lean source measure writes
        con.executemany("INSERT INTO metrics_segments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        g = E.global_metrics(nn, seg)
        con.executemany("INSERT INTO metrics_global VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [("syn-measure", scheme, k, v, 0.9 * v, min(1.1 * v, 1.0), 0.002 if k == "theil_m" else None, "{}")
                         for k, v in (("isolation", g["isolation"]), ("theil_m", g["theil_m"]),
                                      ("echo_chamber", g["echo_chamber"])) if v is not None])
