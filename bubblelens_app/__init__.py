"""The Streamlit app of BubbleLens (run ``streamlit run app.py``): pages, session state, cached queries.

Nothing here computes: queries live in :mod:`bubblelens.present`, stages in :mod:`bubblelens`.
"""
