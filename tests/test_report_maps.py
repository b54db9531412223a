"""The report's maps: one per measured region scheme, drawn from the shipped shapes, with a legend and a
source line; deterministic SVG (same numbers, same bytes); every region segment on its shape."""

from __future__ import annotations

import duckdb
import pytest

from bubblelens.present.maps import map_values, region_schemes
from bubblelens.present.synthetic import REGIONS, build_synthetic_store
from bubblelens.report.maps import map_figure, report_maps
from bubblelens.store import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("rmap") / "synthetic.duckdb"
    build_synthetic_store(path, n_ads=800, n_audiences=300, seed=5)
    return str(path)


def test_one_map_per_measured_region_scheme_with_legend_and_source(store: str) -> None:
    with Store.open(store, read_only=True) as st:
        maps = report_maps(st)
        again = report_maps(st)
        measured = {r[0] for r in st.con.execute("SELECT DISTINCT scheme FROM metrics_segments").fetchall()}
        expected = [s for s in region_schemes(st.con) if s in measured]
    assert [m["scheme"] for m in maps] == expected and maps
    m = maps[0]
    assert m["country"] == "FR" and m["svg"].startswith(b"<?xml") and m["png"][:4] == b"\x89PNG"
    assert f"{len(REGIONS)} regions drawn" in m["caption"]
    assert [x["svg"] for x in again] == [x["svg"] for x in maps]       # deterministic
    assert b"<script" not in m["svg"]
    with Store.open(store, read_only=True) as st:
        lean = {r[0] for r in st.con.execute("SELECT DISTINCT home_lean_source FROM metrics_segments WHERE "
                                             "scheme = ? AND metric = 'cross_cutting'", [m["scheme"]]).fetchall()}
    # a circular lean (what a region receives most) is said where the cross-cutting share is drawn
    assert lean == {"circular"} and "circular lean" in m["caption"]


def test_map_values_put_each_region_segment_on_its_shape(store: str) -> None:
    with duckdb.connect(store, read_only=True) as con:
        v = map_values(con, "cells", "impressions")
        cc = map_values(con, "cells", "cross_cutting")
        total = con.execute("SELECT sum(impressions) FROM segments WHERE scheme = 'cells' AND segment_id LIKE "
                            "'region=%'").fetchone()[0]
    assert sorted(v["region"]) == sorted(REGIONS)
    assert set(v["iso_3166_2"]) == {"FR-BRE", "FR-IDF", "FR-OCC", "FR-HDF", "FR-PAC"}
    assert v["impressions"].sum() == pytest.approx(total)
    assert ((v["ci_low"] <= v["value"]) & (v["value"] <= v["ci_high"])).all()    # range interval
    ok = cc["value"].notna()
    assert ok.any() and ((cc.loc[ok, "value"] >= 0) & (cc.loc[ok, "value"] <= 1)).all()
    fig = map_figure(v, "FR", cc=cc, title="t", source="s")
    assert len(fig.axes) == 4                                             # two panels, two colour bars


def test_map_caption_counts_add_up_to_the_measured_segments(store: str, tmp_path) -> None:
    """Segments the measurement left out (under its floor: still rows of ``segments``, as 30 spill-over
    regions of the 2024 German smoke pull) are neither drawn nor counted: drawn + abroad + on no map is
    the number of measured segments (the caption once said 217 regions abroad for 213 measured segments)."""
    import re
    import shutil

    path = tmp_path / "floor.duckdb"
    shutil.copy(store, path)
    with duckdb.connect(str(path)) as con:
        for region, imp in (("Bayern", 90.0), ("Tennessee", 95.0)):  # regions abroad under the floor
            con.execute("INSERT INTO segments VALUES ('cells', ?, ?, 12, ?, NULL, false, true, NULL, 'r')",
                        [f"region={region}", f"region={region}", imp])
            con.execute("INSERT INTO segment_members VALUES ('cells', ?, ?, 1.0, true)",
                        [f"region={region}", f"region={region}"])
        measured = con.execute("SELECT count(DISTINCT segment_id) FROM metrics_segments WHERE scheme = 'cells'"
                               ).fetchone()[0]
    with Store.open(path, read_only=True) as st:
        (m,) = [x for x in report_maps(st) if x["scheme"] == "cells"]
    got = re.search(r"\((\d+) regions drawn\)\. Of the (\d+) measured segments, (\d+) are drawn on them, (\d+) "
                    r"are regions of other countries and (\d+) are on no map", m["caption"])
    assert got, m["caption"]
    n, total, here, abroad, left = map(int, got.groups())
    assert (n, total, here, abroad) == (len(REGIONS), measured, len(REGIONS), 0)
    assert here + abroad + left == total == len(REGIONS) + 12             # 5 régions, 12 age × gender cells
    with duckdb.connect(str(path), read_only=True) as con:                 # the app's map: the same rule
        drawn = map_values(con, "cells", "impressions")
        every = map_values(con, "cells", "impressions", segments=[f"region={r}" for r in ("Bayern", "Tennessee")])
    assert sorted(drawn["region"]) == sorted(REGIONS)
    assert len(every) == 2  # they match shapes: only the measurement's rule keeps them off the map


def test_a_flat_share_map_has_a_colour_bar_that_tells_the_value() -> None:
    """Cross-cutting share 0 in every region (no camp known): the colour bar runs 0 % → 10 %, it does not
    invent a symmetric range around a degenerate one."""
    import pandas as pd

    v = pd.DataFrame({"iso_3166_2": ["FR-BRE", "FR-IDF"], "country": ["FR", "FR"], "region": ["Bretagne", "IdF"],
                      "segment_id": ["a", "b"], "value": [1000.0, 2000.0], "ci_low": [900.0, 1800.0],
                      "ci_high": [1100.0, 2200.0], "impressions": [1000.0, 2000.0], "n_ads": [3, 4],
                      "n_sponsors": [1, 2], "n_segments": [1, 1]})
    cc = v.assign(value=[0.0, 0.0])
    fig = map_figure(v, "FR", cc=cc, title="t", source="s")
    bars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert len(bars) == 2
    assert bars[1].get_xlim() == pytest.approx((0.0, 0.1))
