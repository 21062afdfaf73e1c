"""Synthetic retail visit schedule (placeholder: being written)."""

__all__: list[str] = []
