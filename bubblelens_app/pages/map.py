"""Map: a region scheme's measure on the shipped admin-1 shapes, one country at a time; a click opens the
region's ads. Queries in ``bubblelens.present.maps``; drawing in ``bubblelens_app.mapview``."""

from __future__ import annotations

import streamlit as st

from bubblelens_app import data, mapview, state


def render() -> None:
    state.require_store()
    st.title("Map")
    schemes = data.maps("region_schemes")
    if not schemes:
        st.info("No segmentation by region in this store: run `bubblelens segment --scheme cells --by region` "
                "(and `bubblelens measure` for shares and cross-cutting exposure).")
        return
    current = state.scheme()
    scheme = st.selectbox("Region scheme", schemes, index=schemes.index(current) if current in schemes else 0,
                          key="map_scheme")
    measure, label = mapview.pick_measure(scheme, key="mp")
    mapview.draw(scheme, measure, label, key="mp")
    seg = data.maps("region_segments", scheme)
    left = seg[seg["iso_3166_2"].isna()]
    if len(left):
        with st.expander(f"Segments not on the map ({len(left)})"):
            st.caption("Merged segments (under the privacy floor), 'Unknown', and labels that match no shape "
                       "or several: `bubblelens regions --db PATH` says which and why.")
            st.dataframe(left[["segment_id", "region", "impressions", "n_ads"]], hide_index=True)


render()
