"""Camps are data: any codebook's camps, with or without positions, get every metric that can be computed.

Property test (hypothesis): random codebooks of 2–8 camps with ids never seen, positions given for all,
some or none of them, through ``segment`` and ``measure`` on a small delivery table. Cross-cutting
exposure needs only the camps; slant and the echo-chamber correlation need two positioned camps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bubblelens.classify import load_codebook
from bubblelens.errors import CodebookError
from bubblelens.measure.pipeline import measure_store
from bubblelens.segment import segment_store
from bubblelens.store import Store

REGIONS = ["North", "South", "East", "West", "Centre"]
NARRATIVES = ["n_a", "n_b", "n_c"]


def build_store(path: Path, camps: list[str], positions: list[float | None], seed: int) -> Store:
    """60 ads from 12 sponsors, each sponsor of one camp, delivered over five regions."""
    rng = np.random.default_rng(seed)
    store = Store.open(path)
    con = store.con
    con.executemany("INSERT INTO camps VALUES (?, ?, ?, NULL, true, 'random', 'r')",
                    [(c, c.upper(), p, ) for c, p in zip(camps, positions, strict=True)])
    for i in range(60):
        sponsor = i % 12
        camp = camps[sponsor % len(camps)]
        con.execute("INSERT INTO messages (message_id, text, has_text, sponsor, impressions_lower, "
                    "impressions_upper) VALUES (?, ?, true, ?, ?, ?)",
                    [str(i), f"ad {i}", f"Page {sponsor}", 1000, 4999])
        share = rng.dirichlet(np.ones(len(REGIONS)) * (0.5 + sponsor % 3))
        con.executemany("INSERT INTO deliveries (message_id, kind, region, share) VALUES (?, 'region', ?, ?)",
                        [(str(i), r, float(s)) for r, s in zip(REGIONS, share, strict=True)])
        p = float(rng.uniform(0.5, 1.0))
        other = camps[(camps.index(camp) + 1) % len(camps)]
        con.execute("INSERT INTO scores VALUES (?, 'camp', ?, ?, 'text', ?, 'e', 'r')",
                    [str(i), camp, p, json.dumps([[camp, p], [other, round(1 - p, 6)]])])
        narr = NARRATIVES[i % 3]
        con.execute("INSERT INTO scores VALUES (?, 'narrative', ?, 0.9, 'zero-shot', ?, 'e', 'r')",
                    [str(i), narr, json.dumps([[narr, 0.9]])])
    segment_store(store, scheme="cells", by="region", k_min=1, k_impressions=1)
    return store


camp_ids = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(lambda s: s != "unassigned")


@settings(max_examples=12, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(camps=st.lists(camp_ids, min_size=2, max_size=8, unique=True),
       placed=st.sampled_from(["all", "some", "none"]), seed=st.integers(0, 2**16))
def test_random_codebooks_get_every_computable_metric(tmp_path_factory: pytest.TempPathFactory,
                                                      camps: list[str], placed: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    positions: list[float | None] = [float(x) for x in rng.uniform(-1, 1, len(camps))]
    if placed == "none":
        positions = [None] * len(camps)
    elif placed == "some":
        positions = [p if i % 2 == 0 else None for i, p in enumerate(positions)]
    store = build_store(tmp_path_factory.mktemp("camps") / "s.duckdb", camps, positions, seed)
    res = measure_store(store, scheme="cells", by="region", n_boot=30, n_perm=0, k_min=1, impressions_min=1)
    n_placed = sum(p is not None for p in positions)
    assert res["segments"], "five regions with impressions are measured"
    for seg in res["segments"]:
        for m in ("cross_cutting", "effective_narratives", "gini_simpson", "js_divergence"):
            e = seg[m]
            assert e["value"] is not None, (m, camps, positions)
            assert e["ci"][0] <= e["value"] <= e["ci"][1]
        assert 0.0 <= seg["cross_cutting"]["value"] <= 1.0
        assert seg["home_lean"]["camp"] in camps
    g = res["global"]
    assert g["theil_m"]["value"] is not None and g["theil_m"]["value"] >= 0
    assert set(g["camps"]["without_position"]) == {c for c, p in zip(camps, positions, strict=True) if p is None}
    slants = [v for v in g["narrative_slant"].values() if v is not None]
    if n_placed >= 1:
        assert slants, "the home lean has a position, so narratives have a slant"
    else:
        assert not slants and any("without a left–right position" in w for w in res["warnings"])
    if n_placed == 0 and len(camps) == 2 and len({s["home_lean"]["camp"] for s in res["segments"]}) == 2:
        assert g["isolation"]["value"] is not None  # two camps side the segments by their home camp
    store.close()


def test_a_referendum_without_positions_gets_cross_cutting_and_isolation(tmp_path: Path) -> None:
    store = build_store(tmp_path / "s.duckdb", ["yes", "no"], [None, None], seed=3)
    res = measure_store(store, scheme="cells", by="region", n_boot=30, n_perm=0, k_min=1, impressions_min=1)
    assert all(s["cross_cutting"]["value"] is not None for s in res["segments"])
    assert res["global"]["camps"]["isolation_sides"] in ("two camps", "none")
    assert res["global"]["echo_chamber"]["value"] is None  # needs positions: said once, in the warnings
    assert sum("without a left–right position" in w for w in res["warnings"]) == 1


def test_external_lean_names_any_camp(tmp_path: Path) -> None:
    store = build_store(tmp_path / "s.duckdb", ["ja", "nein"], [None, None], seed=5)
    lean = tmp_path / "votes.csv"
    lean.write_text("segment,ja,nein\nNorth,0.7,0.3\nSouth,0.2,0.8\nEast,0.55,0.45\nWest,0.4,0.6\n"
                    "Centre,0.5,0.6\n", encoding="utf-8")
    res = measure_store(store, scheme="cells", by="region", lean=str(lean), n_boot=30, n_perm=0, k_min=1,
                        impressions_min=1)
    homes = {s["segment"]: s["home_lean"]["camp"] for s in res["segments"]}
    assert homes["North"] == "ja" and homes["South"] == "nein" and homes["Centre"] == "nein"
    for s in res["segments"]:
        share_home = s["camp_share"][s["home_lean"]["camp"]]
        assigned = 1.0 - s["camp_share"].get("unassigned", 0.0)
        assert s["home_lean"]["source"] == "external"
        # the census median of the cross-cutting share is close to the point share of other camps
        assert math.isclose(s["cross_cutting"]["value"], (assigned - share_home) / assigned, abs_tol=0.15)


def test_a_sponsor_table_may_name_generic_camps(tmp_path: Path) -> None:
    table = tmp_path / "pages.csv"
    table.write_text("sponsor,sponsor_id,camp\nSome Page,123,left\nOther Page,,reconquete\n", encoding="utf-8")
    cb = load_codebook(sponsors=table)
    from bubblelens.classify import SponsorTable

    t = SponsorTable.from_codebook(cb)
    assert t.lookup(sponsor_id="123") == "left" and t.lookup("other page") == "reconquete"
    bad = tmp_path / "bad.csv"
    bad.write_text("sponsor,sponsor_id,camp\nX,,martians\n", encoding="utf-8")
    with pytest.raises(CodebookError, match=r"unknown camp 'martians'.*left"):
        load_codebook(sponsors=bad)


def test_a_codebook_may_leave_positions_out(tmp_path: Path) -> None:
    p = tmp_path / "cb.yaml"
    p.write_text("narratives:\n  - {id: taxes, labels: {en: Taxes}}\ncamps:\n  - {id: yes_side, labels: {en: Yes}}\n",
                 encoding="utf-8")
    with pytest.raises(CodebookError, match="quote it"):
        load_codebook(p)
    p.write_text("narratives:\n  - {id: taxes, labels: {en: Taxes}}\ncamps:\n  - {id: yes_side, labels: {en: 'Yes'}}\n"
                 "  - {id: no_side, labels: {en: 'No'}, position: 0.5}\ncountries: [IE]\n", encoding="utf-8")
    cb = load_codebook(p)
    assert [c.position for c in cb.camps] == [None, 0.5] and cb.countries == ("IE",)


def test_refusals_name_their_real_cause(tmp_path: Path) -> None:
    from bubblelens.errors import BubbleLensError, MeasureError

    store = Store.open(tmp_path / "s.duckdb")
    store.con.execute("INSERT INTO messages (message_id, text, has_text) VALUES ('m1', 'x', true)")
    store.con.execute("INSERT INTO scores VALUES ('m1', 'narrative', 'n_a', 0.9, 'zero-shot', NULL, 'e', 'r')")
    with pytest.raises(BubbleLensError, match="no deliveries in the store"):
        measure_store(store, scheme="cells", by="region", n_boot=10, n_perm=0)
    for i in range(12):  # a panel segmented by interests, but no exposure log links it to the messages
        store.con.execute("INSERT INTO segment_members VALUES ('interests', ?, 'c0', 1.0, true)", [f"a{i}"])
    store.con.execute("INSERT INTO segments VALUES ('interests', 'c0', 'Cooking', 12, NULL, NULL, false, true, "
                      "'{}', 'r')")
    with pytest.raises(MeasureError, match=r"no exposure links the audiences of 'interests'.*--kind exposures"):
        measure_store(store, scheme="interests", n_boot=10, n_perm=0)
