"""Compatibility shims for third-party packages that cannot be installed as they declare themselves."""
