"""Grid Guardian: anomaly detection for the GB electricity grid, as a Dagster asset graph.

Domain modules (``settlement``, ``datasets``, ``elexon``, ``validation``, ``store``, ``replay``) import no Dagster;
``defs/`` wires them into Dagster definitions and ``definitions.py`` is the code location's entry point.
"""

__version__ = "0.1.0"
