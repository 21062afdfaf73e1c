"""Synthetic people, faces, files and embeddings (placeholder: being written)."""

__all__: list[str] = []
