"""Embeddings: offline sentence encoders behind one interface, and the store's embedding cache."""

from .cache import EmbeddingCache
from .encoders import Encoder, SentenceTransformerEncoder, USEm3Encoder, encoder_name, get_encoder

__all__ = ["EmbeddingCache", "Encoder", "SentenceTransformerEncoder", "USEm3Encoder", "encoder_name", "get_encoder"]
