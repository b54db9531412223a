"""Region labels of the real samples match shapes: the German pull's Länder (delivery_by_region) and its
Dutch-language DSA target_locations of type "regions", the Belgian Ad Library report's locations, and the
French fixtures' régions. Whatever is left unmatched has a reason (ambiguous, a country, unknown)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from bubblelens.geo import region_matcher

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def de_labels(shared_data: Path) -> tuple[Counter, Counter]:
    delivery: Counter = Counter()
    targeted: Counter = Counter()
    for f in sorted((shared_data / "meta_api_de_2024").glob("ads_archive_de_2024_part*.jsonl")):
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                ad = json.loads(line)
                delivery.update(r["region"] for r in ad.get("delivery_by_region") or [])
                targeted.update(t["name"] for t in ad.get("target_locations") or [] if t.get("type") == "regions")
    assert delivery and targeted
    return delivery, targeted


def test_german_pull_every_land_and_every_targeted_region_matches(de_labels: tuple[Counter, Counter]) -> None:
    delivery, targeted = de_labels
    m = region_matcher()
    de_codes = {m.match(lab) for lab in delivery if (m.match(lab) or "").startswith("DE-")}
    assert len(de_codes) == 16                                   # all 16 Länder seen and matched
    unmatched_t = [lab for lab in targeted if m.match(lab) is None]
    assert unmatched_t == [], unmatched_t                        # "Sachsen, Duitsland", ...
    assert all(m.explain(lab).country == "DE" for lab in targeted)
    # Delivery abroad (spill-over) is in English: most labels match; the rest is explained.
    n_all = sum(n for lab, n in delivery.items() if lab != "Unknown")
    n_ok = sum(n for lab, n in delivery.items() if m.match(lab) is not None)
    assert n_ok / n_all > 0.99
    for lab in delivery:
        e = m.explain(lab)
        assert e.iso_3166_2 is not None or e.kind in ("ambiguous", "unknown", "country")
        if e.kind == "ambiguous":
            assert len(e.candidates) > 1


def test_belgian_report_locations_match_the_three_regions(shared_data: Path) -> None:
    f = next((shared_data / "meta_ad_library_report").glob("*_BE_*_locations.csv"))
    with f.open(encoding="utf-8-sig", newline="") as fh:
        labels = [r["Location name"] for r in csv.DictReader(fh)]
    m = region_matcher()
    got = {lab: m.match(lab, country="BE") for lab in labels}
    assert {v for v in got.values() if v} == {"BE-BRU", "BE-VLG", "BE-WAL"}
    assert [lab for lab, v in got.items() if v is None] == ["Unknown"]


def test_french_fixture_regions_all_match_the_13_metropolitan_regions() -> None:
    m = region_matcher()
    labels: set[str] = set()
    with (ROOT / "data" / "fixtures" / "meta_ads.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            ad = json.loads(line)
            labels.update(r["region"] for r in ad.get("delivery_by_region") or [])
            labels.update(t["name"] for t in ad.get("target_locations") or [] if t.get("type") == "region")
    with (ROOT / "data" / "fixtures" / "panel.csv").open(encoding="utf-8", newline="") as fh:
        labels.update(r["region"] for r in csv.DictReader(fh))
    codes = {lab: m.match(lab) for lab in labels}
    assert all(codes.values()), [k for k, v in codes.items() if not v]
    assert len(set(codes.values())) == 13 and all(c.startswith("FR-") for c in codes.values())


def test_german_pull_map_draws_the_16_laender(shared_data: Path, tmp_path: Path) -> None:
    """400 real ads, segmented by delivery region: every Land with ads is on the German map."""
    import duckdb

    from bubblelens.ingest import ingest_paths
    from bubblelens.present.maps import country_totals, map_values, region_schemes
    from bubblelens.segment import segment_store
    from bubblelens.store import Store

    src = shared_data / "meta_api_de_2024" / "ads_archive_de_2024_part01.jsonl"
    part = tmp_path / "de_400.jsonl"
    with src.open(encoding="utf-8") as f:
        part.write_text("".join(next(f) for _ in range(400)), encoding="utf-8")
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        ingest_paths(store, [part])
        segment_store(store, scheme="cells", by="region")
    with duckdb.connect(str(db), read_only=True) as con:
        assert "cells:region" in region_schemes(con)
        v = map_values(con, "cells:region", "impressions")
        laender = {r for (r,) in con.execute(
            "SELECT DISTINCT region FROM deliveries WHERE region IS NOT NULL").fetchall()
            if (region_matcher().match(r) or "").startswith("DE-")}
    assert country_totals(v)["country"].iloc[0] == "DE"
    de = v[v["country"] == "DE"]
    assert len(de) >= 0.8 * len(laender)   # the rest: Länder with too few ads, merged under the privacy floor
    assert (de["value"] > 0).all() and de["n_ads"].notna().all()
