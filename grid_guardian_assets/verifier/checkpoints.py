"""Versioned model checkpoints: weights, config, metrics, data range and a sha256, with promotion.

Layout under the store's root::

    {version}/model.pt       torch.save of plain tensors (state dicts, normaliser); loaded with weights_only=True
    {version}/meta.json      version, kind, config, metrics, data range, calibration, sha256 of model.pt
    PROMOTED                 the version the live job and self-play use (written atomically)

Loading recomputes the sha256 first: a truncated or tampered file is refused with an error naming it.
"""

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or does not match its recorded hash."""


@dataclass
class Checkpoint:
    version: str
    meta: dict[str, Any]
    tensors: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    """Checkpoints in a local folder (the default model store)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def save(self, tensors: dict[str, Any], meta: dict[str, Any]) -> Checkpoint:
        """Write a new version; ``tensors`` must hold only tensors and plain containers."""
        import torch  # imported by save and load only: reading PROMOTED (the live sensor, every 30 s) needs no torch

        self.root.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        staging = self.root / f".incoming-{stamp}"
        staging.mkdir()
        torch.save(tensors, staging / "model.pt")
        sha = _sha256(staging / "model.pt")
        version = f"v{stamp}-{sha[:8]}"
        full = {**meta, "version": version, "sha256": sha, "created_at": dt.datetime.now(dt.UTC).isoformat()}
        (staging / "meta.json").write_text(json.dumps(full, indent=2, default=str))
        staging.rename(self.root / version)
        return Checkpoint(version, full, tensors)

    def versions(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("v*") if (p / "meta.json").exists()) if self.root.exists() else []

    def meta(self, version: str) -> dict[str, Any]:
        path = self.root / version / "meta.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint {version!r} in {self.root}") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"checkpoint {version}: {path} is not valid JSON ({exc})") from None

    def load(self, version: str, device: "str | torch.device" = "cpu") -> Checkpoint:
        """Load a version after checking its sha256; never unpickles arbitrary objects."""
        import torch

        meta = self.meta(version)
        path = self.root / version / "model.pt"
        if not path.exists():
            raise CheckpointError(f"checkpoint {version}: {path} is missing")
        actual = _sha256(path)
        if actual != meta.get("sha256"):
            raise CheckpointError(
                f"checkpoint {version}: {path} has sha256 {actual[:12]}…, its meta.json records {str(meta.get('sha256'))[:12]}…; "
                "the file is truncated or was changed: refusing to load it"
            )
        try:
            tensors = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 (torch raises many kinds; all mean "unusable")
            raise CheckpointError(f"checkpoint {version}: {path} cannot be loaded safely: {exc}") from None
        return Checkpoint(version, meta, tensors)

    def promote(self, version: str) -> None:
        """Make ``version`` the promoted checkpoint (after checking it loads)."""
        self.load(version)
        tmp = self.root / "PROMOTED.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / "PROMOTED")

    def promoted(self) -> str | None:
        path = self.root / "PROMOTED"
        return path.read_text().strip() or None if path.exists() else None
