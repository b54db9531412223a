"""Figure helpers shared by pages: a plotly chart with its data as a CSV download."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from bubblelens.present.safe import csv_bytes

__all__ = ["PLOTLY_CONFIG", "chart"]

# PNG from plotly's own modebar ("Download plot as a png").
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def chart(fig: Any, data: pd.DataFrame, *, key: str, filename: str, **kwargs: Any) -> Any:
    """Draw ``fig`` (PNG via its modebar) with a button that downloads ``data`` as CSV; returns the
    chart's selection event when ``on_select`` is passed."""
    event = st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch", **kwargs)
    st.download_button("Download data (CSV)", csv_bytes(data),
                       file_name=f"{filename}.csv", mime="text/csv", key=f"{key}_csv")
    return event
