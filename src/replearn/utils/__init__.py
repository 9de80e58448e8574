"""Small shared helpers: atomic file writes, seeding, device choice and the machine's description."""

from replearn.utils.atomic import atomic_path, save_json, write_bytes, write_text
from replearn.utils.runtime import machine_info, machine_summary, resolve_device, seed_everything

__all__ = [
    "atomic_path",
    "save_json",
    "write_bytes",
    "write_text",
    "machine_info",
    "machine_summary",
    "resolve_device",
    "seed_everything",
]
