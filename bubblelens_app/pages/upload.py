"""Upload: a file of this session only, ingested and run through the pipeline."""

from __future__ import annotations

from bubblelens_app.upload import render

render()
