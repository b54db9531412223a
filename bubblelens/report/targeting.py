"""The report's targeting section: shown only when the store holds a targeting table.

Per party (the page's party label; a page with none but a Party Facts id under ``partyfacts:ID``): pages,
spend, the personal-data indicator with its interval over pages, and the shares behind customer lists,
detailed targeting and sub-national locations, with the three most distinctive detailed criteria. Read
through :mod:`bubblelens.present.targeting`; these are platform-reported targeting choices, not delivery.
"""

from __future__ import annotations

from typing import Any

from ..present import targeting as P
from ..store import Store

__all__ = ["targeting_section"]


def targeting_section(store: Store, *, top: int = 3, n_boot: int = 500) -> dict[str, Any] | None:
    """Rows of the section (groups by decreasing spend), or None when the store has no targeting table."""
    con = store.con
    if not P.available(con):
        return None
    ov = P.overview(con)
    m = P.methods(con, "party")
    m = m[~m["exclusion"]].set_index(["group", "method"])
    pdi = P.personal_data(con, "party", n_boot=n_boot).set_index(["group", "method"])
    dist = P.distinctive(con, "party", top)
    rows = []
    for g in m.index.get_level_values(0).unique():
        cell = lambda k: (float(m.loc[(g, k), "low"]), float(m.loc[(g, k), "high"]))  # noqa: B023, E731
        p = pdi.loc[(g, "personal_data")]
        rows.append({"group": g, "pages": int(p["pages"]), "spend": float(p["spend"]),
                     "personal": (float(p["low"]), float(p["high"])),
                     "personal_ci": (float(p["ci_low"]), float(p["ci_high"])),
                     "personal_pages": int(p["pages_using"]),
                     "customer_list": cell("customer_list"),
                     "customer_list_pages": int(pdi.loc[(g, "customer_list"), "pages_using"]),
                     "detailed": cell("detailed"), "location": cell("location"),
                     "distinctive": [str(v) for v in dist.loc[dist["group"] == g, "value"]]})
    rows.sort(key=lambda r: -r["spend"])
    return {"rows": rows, "pages": ov["pages"], "criteria": ov["criteria"], "unit": ov["unit"],
            "windows": ", ".join(ov["windows"]) or "—"}
