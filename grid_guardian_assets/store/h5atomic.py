"""Replace an HDF5 group as a whole: write it beside the old one, then swap names.

Callers hold the file's writer lock. A writer that dies mid-write leaves only a ``*.incoming`` group, which readers
ignore and the next writer of that group removes; the old group stays intact until the new one is complete.
"""

from collections.abc import Callable

import h5py

TMP_SUFFIX = ".incoming"


def replace_group(parent: h5py.Group, name: str, fill: Callable[[h5py.Group], None]) -> bool:
    """Write ``parent/name`` anew through ``fill``; returns whether an old group was replaced."""
    tmp_name = name + TMP_SUFFIX
    if tmp_name in parent:
        del parent[tmp_name]
    fill(parent.create_group(tmp_name))
    replaced = name in parent
    if replaced:
        del parent[name]
    parent.move(tmp_name, name)
    return replaced


def committed(names: list[str]) -> list[str]:
    """Group names without the leftovers of interrupted writes."""
    return [n for n in names if not n.endswith(TMP_SUFFIX)]
