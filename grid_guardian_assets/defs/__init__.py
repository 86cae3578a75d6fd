"""Dagster definitions, one folder per stage; each registers its own ``defs``. No domain logic lives here."""
