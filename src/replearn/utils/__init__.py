"""Small shared helpers: atomic file writes, seeding and device choice."""

from replearn.utils.atomic import atomic_path, save_json, write_bytes, write_text
from replearn.utils.runtime import resolve_device, seed_everything

__all__ = [
    "atomic_path",
    "save_json",
    "write_bytes",
    "write_text",
    "resolve_device",
    "seed_everything",
]
