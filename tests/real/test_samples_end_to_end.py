"""Every real sample of ``../shared/data`` through the whole flow as a user would: ``run`` (with the default
codebook, and for the German pull a codebook of its own parties with a page → party table), ``report``, and
every app page (AppTest), with the invariants that make numbers printable:

- no value outside its possible range, every value inside its interval;
- no finding on a segment below the evidence thresholds;
- the app shows the report's numbers (the same stored measurement, the same findings);
- every camp of the codebook has a number in every segment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from apptest_helpers import goto, open_app

from bubblelens.classify import load_codebook
from bubblelens.pipeline import run_pipeline
from bubblelens.present import exposure as E
from bubblelens.present import queries as Q
from bubblelens.report.findings import EVIDENCE, has_evidence
from bubblelens.report.pipeline import load_measure
from bubblelens.report.render import build_report
from bubblelens.store import Store

ROOT = Path(__file__).resolve().parents[2]
DE_CODEBOOK = ROOT / "docs" / "examples" / "de-parties-2024.yaml"
PARTY_CAMP = {"B90/GRÜNE": "gruene", "SPD": "spd", "FDP": "fdp", "CDU": "cdu_csu", "CSU": "cdu_csu",
              "BSW": "bsw", "LINKE": "linke", "AfD": "afd"}
APP_PAGES = ["overview", "narratives", "segments", "exposure", "map", "ads", "targeting", "spend", "methods"]


def _sample(name: str, shared: Path, d: Path) -> tuple[list[tuple[Path, dict[str, Any]]], dict[str, Any]]:
    """(inputs, run options) of one sample, cut to a size CI runs in seconds."""
    if name == "de_pull":
        part = d / "de_500.jsonl"
        with (shared / "meta_api_de_2024" / "ads_archive_de_2024_part01.jsonl").open(encoding="utf-8") as f:
            part.write_text("".join(next(f) for _ in range(500)), encoding="utf-8")
        labels = pd.read_csv(shared / "meta_api_de_2024" / "ad_party_labels_de_2024.csv", dtype=str)
        pages = labels[labels["partei"].isin(list(PARTY_CAMP))].drop_duplicates("page_id")
        pd.DataFrame({"sponsor": pages["page_name"], "sponsor_id": pages["page_id"],
                      "camp": pages["partei"].map(PARTY_CAMP)}).to_csv(d / "pages.csv", index=False)
        return [(part, {})], {"codebook": DE_CODEBOOK, "sponsors": d / "pages.csv"}
    if name == "de_pull_default_codebook":
        part = d / "de_300.jsonl"
        with (shared / "meta_api_de_2024" / "ads_archive_de_2024_part00.jsonl").open(encoding="utf-8") as f:
            part.write_text("".join(next(f) for _ in range(300)), encoding="utf-8")
        return [(part, {})], {}
    if name == "api_samples":
        return [(p, {}) for p in sorted((shared / "meta_ad_library_api").glob("*.json*"))], {}
    if name == "ira_ads":
        src = pd.read_csv(shared / "ira_ads" / "ira_ads.csv", dtype=str, keep_default_na=False).head(400)
        src.to_csv(d / "ira_ads.csv", index=False)
        return [(d / "ira_ads.csv", {"mapping": str(ROOT / "mappings" / "ira_ads.messages.yaml")})], {}
    if name == "reports":
        files = sorted((shared / "meta_ad_library_report").glob("*.csv"))
        files += sorted((shared / "google_political_ads_bundle").glob("*.csv"))
        part = d / "de_200.jsonl"  # reports list no ads: a few ads beside them, as a desk would have
        with (shared / "meta_api_de_2024" / "ads_archive_de_2024_part00.jsonl").open(encoding="utf-8") as f:
            part.write_text("".join(next(f) for _ in range(200)), encoding="utf-8")
        return [(p, {}) for p in files] + [(part, {})], {}
    raise AssertionError(name)


SAMPLES = ["de_pull", "de_pull_default_codebook", "api_samples", "ira_ads", "reports"]


@pytest.fixture(scope="module", params=SAMPLES)
def sample(request: pytest.FixtureRequest, shared_data: Path,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Any]:
    d = tmp_path_factory.mktemp(request.param)
    inputs, options = _sample(request.param, shared_data, d)
    db = d / "store.duckdb"
    with Store.open(db) as store:
        res = run_pipeline(store, inputs, n_boot=60, discover=False, **options)
    return request.param, db, (res, options)


def _check_values(measure: dict[str, Any], camps: list[str]) -> None:
    segs = measure["segments"]
    total = sum(float(s.get("impressions") or 0) for s in segs)
    for s in segs:
        for m in ("cross_cutting", "gini_simpson", "js_divergence"):
            e = s.get(m) or {}
            if e.get("value") is None:
                continue
            lo, hi = e["ci"]
            assert lo is not None and 0.0 <= lo <= e["value"] <= hi <= 1.0 + 1e-9, (s["segment"], m, e)
        eff = (s.get("effective_narratives") or {}).get("value")
        assert eff is None or eff >= 1.0 - 1e-9
        assert set(camps) <= set(s["camp_share"]), "every camp of the codebook has a number"
        assert all(0.0 <= v <= 1.0 + 1e-9 for v in s["camp_share"].values())
        assert math.isclose(sum(s["camp_share"].values()), 1.0, abs_tol=1e-4) or not s["impressions"]
    assert total > 0


def test_run_report_and_app_agree_on_real_samples(sample: tuple[str, Path, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _name, db, (res, options) = sample
    failed = {k: v for k, v in res.stages.items() if k.startswith("measure") and not str(v).startswith(("ok", "skipped"))}
    assert not failed, failed
    camps = load_codebook(options.get("codebook")).camp_ids
    with Store.open(db) as store:
        report = build_report(store, tmp_path / "r.html", export=True)
        html = report.path.read_text(encoding="utf-8")
        assert "Traceback" not in html
        measure = report.numbers["measure"]
        if not measure.get("messages_only"):
            _check_values(measure, camps)
        total = sum(float(s.get("impressions") or 0) for s in measure["segments"])
        by_label = {s["segment"]: s for s in measure["segments"]}
        for f in report.numbers["findings"]["isolated"]:
            s = by_label[f["segment"]]
            assert has_evidence(s, total) and f["n_ads"] >= EVIDENCE["min_ads"], f
        scheme = measure["scheme"]
        if not measure.get("messages_only"):
            # the app's Exposure table is the stored measurement the report printed
            app = E.measured_segments(Q.metrics_table(store.con, "metrics_segments", scheme=scheme))
            stored = load_measure(store, scheme)
            assert stored is not None
            rep = {s["segment_id"]: s["cross_cutting"]["value"] for s in stored["segments"]}
            shown = app["cross_cutting"] if "cross_cutting" in app else pd.Series([None] * len(app))
            for sid, v in zip(app["segment_id"], shown, strict=True):
                assert (pd.isna(v) and rep[sid] is None) or math.isclose(float(v), float(rep[sid]), abs_tol=1e-9)
    for page in APP_PAGES:
        at = open_app(str(db), monkeypatch, timeout=120)
        goto(at, page)
        assert not [e for e in at.error if "Traceback" in str(e.value)]
