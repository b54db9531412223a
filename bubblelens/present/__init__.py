"""Read-only views of a store for the app and other presenters: SQL aggregates, no Streamlit here.

- :mod:`.queries`    every query the app runs (DuckDB GROUP BYs; one connection in, DataFrames out)
- :mod:`.exposure`   exposure metrics of a segment × category matrix, when the measure stage has not run
- :mod:`.projection` the 2-D map of audiences (stored coordinates, else PCA of their embeddings)
- :mod:`.rows`       which segment rows a figure shows when there are too many (at most 25, by country)
- :mod:`.synthetic`  a generated store of any size (benchmarks, tests)
"""

from __future__ import annotations

__all__ = ["exposure", "projection", "queries", "rows", "synthetic"]
