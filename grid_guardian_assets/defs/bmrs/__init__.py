"""BMRS ingestion: per dataset ``{name}_raw`` -> ``{name}_frames`` (blocking check) -> ``{name}_store``."""
