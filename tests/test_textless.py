"""Ads without text (image and video ads) everywhere: the 2-D map, the report's cards, the Ads page."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bubblelens.present.projection import project_2d
from bubblelens.report.i18n import strings
from bubblelens.report.render import environment


def test_members_without_an_embedding_are_left_off_the_map() -> None:
    rng = np.random.default_rng(0)
    vecs = [rng.normal(size=8) for _ in range(6)]
    df = pd.DataFrame({"member_id": [f"m{i}" for i in range(9)], "segment_id": ["s"] * 9,
                       "vector": [*vecs, pd.NA, None, []]})
    out = project_2d(df)
    assert len(out) == 6 and out[["x", "y"]].notna().all().all()


def test_report_cards_show_a_dash_for_ads_without_text() -> None:
    src = environment().loader.get_source(environment(), "report.html.j2")[0]
    start = src.index('<section id="cards">')
    block = src[start:src.index("</section>", start) + len("</section>")]
    ads = [{"text": float("nan"), "sponsor": None, "narrative_label": "—", "camp": None, "impressions": 10,
            "message_id": "img1"},
           {"text": None, "sponsor": "A", "narrative_label": "x", "camp": "c", "impressions": None,
            "message_id": "vid2"},
           {"text": "Hallo " * 200, "sponsor": "B", "narrative_label": "x", "camp": "c", "impressions": 5,
            "message_id": "t3"}]
    html = environment().from_string(block).render(
        cards=[{"kind": "segment", "title": "s", "ads": ads}], S=strings("en"),
        num=lambda x: "—" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x))
    assert html.count('<div class="ad">—') == 2 and "img1" in html and "vid2" in html and " …" in html
