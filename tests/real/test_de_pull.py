"""The German 2024 Meta API pull (real ads with DSA fields), measured as a user would: the numbers hold up.

Run twice, as a user would: with the default codebook (French parties: it does not fit, so camps stay
unassigned with a warning instead of French parties on German ads) and with a codebook of the German
parties (``docs/examples/de-parties-2024.yaml``) plus a sponsor table page → party written from the data's
own label file. Invariants on the real output: every value inside its possible range, the point inside its
interval, the interval described as a census one, findings only on segments with enough evidence (never a
spill-over region abroad), every camp of the codebook with a number, and the funnel in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from bubblelens.classify import classify_store, load_codebook
from bubblelens.ingest import ingest_paths
from bubblelens.measure.pipeline import measure_store
from bubblelens.report.findings import EVIDENCE, has_evidence, isolated_segments
from bubblelens.segment import segment_store
from bubblelens.store import Store

N_ADS = 600


CODEBOOK = Path(__file__).resolve().parents[2] / "docs" / "examples" / "de-parties-2024.yaml"
PARTY_CAMP = {"B90/GRÜNE": "gruene", "SPD": "spd", "FDP": "fdp", "CDU": "cdu_csu", "CSU": "cdu_csu",
              "BSW": "bsw", "LINKE": "linke", "AfD": "afd"}


def sponsor_table(shared_data: Path, out: Path) -> Path:
    """Page → camp from the pull's own label file (what a newsroom that knows the pages writes)."""
    labels = pd.read_csv(shared_data / "meta_api_de_2024" / "ad_party_labels_de_2024.csv", dtype=str)
    pages = labels[labels["partei"].isin(list(PARTY_CAMP))].drop_duplicates("page_id")
    pd.DataFrame({"sponsor": pages["page_name"], "sponsor_id": pages["page_id"],
                  "camp": pages["partei"].map(PARTY_CAMP)}).to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def de_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    src = shared_data / "meta_api_de_2024" / "ads_archive_de_2024_part00.jsonl"
    d = tmp_path_factory.mktemp("de")
    part = d / "de_600.jsonl"
    with src.open(encoding="utf-8") as f:
        part.write_text("".join(next(f) for _ in range(N_ADS)), encoding="utf-8")
    store = Store.open(d / "store.duckdb")
    rep = ingest_paths(store, [part])
    assert rep.kept == N_ADS and rep.rejected == 0
    run = classify_store(store)  # the default codebook first: French parties do not fit German ads
    inputs = store.run_inputs(run)
    assert any("DE" in w and "unassigned" in w for w in inputs["warnings"]), inputs["warnings"]
    camps = dict(store.con.execute("SELECT source, count(*) FROM scores WHERE task = 'camp' GROUP BY 1").fetchall())
    assert camps.get("text", 0) == 0 and camps.get("codebook_mismatch", 0) > N_ADS / 2, camps
    cb = load_codebook(CODEBOOK, sponsors=sponsor_table(shared_data, d / "pages.csv"))
    classify_store(store, codebook=cb)
    segment_store(store, scheme="cells", by="region")
    return store


@pytest.fixture(scope="module")
def measured(de_store: Store) -> dict:
    return measure_store(de_store, scheme="cells", by="region", n_boot=200, n_perm=50)


def test_every_value_is_possible_and_inside_its_census_interval(measured: dict) -> None:
    assert measured["global"]["uncertainty"] == "census"
    for seg in measured["segments"]:
        for name in ("cross_cutting", "gini_simpson", "js_divergence"):
            e = seg[name]
            if e["value"] is None:
                continue
            lo, hi = e["ci"]
            assert 0.0 <= lo <= e["value"] <= hi <= 1.0, (seg["segment"], name, e)
        eff = seg["effective_narratives"]
        assert eff["value"] is None or 1.0 - 1e-9 <= eff["value"] <= len(seg["narrative_share"]) + 1e-9
        assert math.isclose(sum(seg["camp_share"].values()), 1.0, abs_tol=1e-5)  # shares rounded to 6 places
    camps = load_codebook(CODEBOOK).camp_ids
    big = max(measured["segments"], key=lambda s: s["impressions"])
    assert set(camps) <= set(big["camp_share"]), "every camp of the codebook has a number"
    assert big["cross_cutting"]["value"] is not None


def test_findings_only_on_segments_with_evidence(measured: dict) -> None:
    segs = measured["segments"]
    total = sum(s["impressions"] for s in segs)
    iso = isolated_segments(measured, n=5)
    assert iso, "a pull of 600 ads over the German Länder has segments worth a finding"
    by_label = {s["segment"]: s for s in segs}
    for f in iso:
        s = by_label[f["segment"]]
        assert has_evidence(s, total)
        assert f["n_ads"] >= EVIDENCE["min_ads"] and f["n_sponsors"] >= EVIDENCE["min_sponsors"]
    # spill-over regions abroad (delivered a few impressions) exist in the data and are never headlines
    spill = [s for s in segs if s["impressions"] / total < EVIDENCE["min_impression_share"]]
    assert spill and not {s["segment"] for s in spill} & {f["segment"] for f in iso}


def test_funnel_is_computed_in_seconds(measured: dict) -> None:
    assert measured["funnel"] is not None
    assert measured["timings"]["funnel_s"] < 30  # was minutes: one pandas filter per ad and region
    for row in measured["funnel"]:
        assert row["supply"]["value"] >= row["targeted"]["value"] >= 0


def test_funnel_reads_dsa_locations_in_any_language(measured: dict) -> None:
    """``target_locations`` are written in Dutch ("Bayern, Duitsland"): an ad aimed at Germany or at one
    Land is not "targeted" at Alaska, and a Land's targeted ads exclude those aimed at other Länder."""
    from bubblelens.geo import region_matcher

    m = region_matcher()
    rows = {r["segment"]: r for r in measured["funnel"]}
    abroad = {s: r for s, r in rows.items() if (code := m.match(s)) and not code.startswith("DE-")}
    laender = {s: r for s, r in rows.items() if (code := m.match(s)) and code.startswith("DE-")}
    assert abroad and len(laender) == 16
    supply = next(iter(rows.values()))["supply"]["value"]
    for s, r in abroad.items():
        assert r["targeted"]["value"] <= 0.05 * supply, (s, r)
    assert any(r["targeted"]["value"] < supply for r in laender.values()), "regional ads target some Länder only"
    assert measured["global"]["funnel_unresolved_locations"] >= 0
