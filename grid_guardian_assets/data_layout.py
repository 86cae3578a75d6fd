"""Where each kind of file lives under the data root: the one place that says so.

Every stage, command and tool builds its paths from a ``DataLayout``; none joins folder names onto the root itself.
The root is ``$GRID_GUARDIAN_DATA_DIR`` (else ``~/.grid_guardian``), read when a layout is made, not at import.
"""

from dataclasses import dataclass
from pathlib import Path

from grid_guardian_assets.settings import DATA_DIR
from grid_guardian_assets.verifier.benchmark_config import HELD_OUT


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @classmethod
    def at(cls, root: str | Path | None = None) -> "DataLayout":
        """The layout under ``root`` when one is given (a resource's config, a command-line option), else under the
        environment's data root."""
        return cls(Path(DATA_DIR.get(str(root) if root else "")).expanduser())

    @property
    def raw(self) -> Path:
        """The raw response archive: every fetch's body as the API sent it (``RawArchive``)."""
        return self.root / "raw"

    @property
    def frames(self) -> Path:
        """Validated frames, one Parquet file per asset and settlement day (``FrameStore``)."""
        return self.root / "frames"

    @property
    def hdf5(self) -> Path:
        """The HDF5 stores: one file per dataset (``HDF5Store``) and per network's snapshots (``SnapshotStore``)."""
        return self.root / "hdf5"

    def topology(self, network: str) -> Path:
        """The network's graph topology as PyG tensors (asset ``grid_topology``)."""
        return self.root / "grid" / f"topology_{network}.pt"

    def bm_units(self, network: str) -> Path:
        """Every BM unit with its station, coordinates and bus on the network (asset ``bm_units``; parquet)."""
        return self.root / "grid" / f"bm_units_{network}.parquet"

    def branch_limits(self, network: str) -> Path:
        """The network's line-overload limits, measured on the stored snapshots (asset ``branch_limits``; JSON)."""
        return self.root / "grid" / f"branch_limits_{network}.json"

    @property
    def detector_calibration(self) -> Path:
        """The redundancy checks' relations and thresholds and the per-fuel data-quality limits, fitted on the
        training days (asset ``detector_calibration``; JSON)."""
        return self.root / "detect" / "detector_calibration.json"

    @property
    def benchmarks(self) -> Path:
        """Frozen anomaly benchmarks (asset ``anomaly_benchmark``)."""
        return self.root / "benchmarks"

    def benchmark_pointer(self, network: str, split: str = HELD_OUT) -> Path:
        """Which frozen benchmark of ``network`` and ``split`` is current: the held-out one is the final table (the
        verifier's gate, self-play's reported F1); the validation one is for tuning (self-play's promotion)."""
        suffix = "" if split == HELD_OUT else f"_{split}"
        return self.benchmarks / f"anomaly_benchmark_{network}{suffix}.json"

    @property
    def models(self) -> Path:
        """Checkpoints and the promoted pointer (``ModelStore``)."""
        return self.root / "models"

    @property
    def selfplay(self) -> Path:
        """Self-play rounds and the scenario buffer."""
        return self.root / "selfplay"

    @property
    def neso_rate_limit_db(self) -> Path:
        """NESO's Data Portal request budget, shared by every run on this machine."""
        return self.root / "neso_rate_limit.sqlite"

    @property
    def elexon_rate_limit_db(self) -> Path:
        """The rate-limit bucket every process on this machine shares (SQLite)."""
        return self.root / "elexon_rate_limit.sqlite"

    @property
    def live_poller_keys_db(self) -> Path:
        """The keys the live poller has published (SQLite), so a restart publishes nothing twice."""
        return self.root / "live_poller_keys.sqlite"

    @property
    def mlflow_db(self) -> Path:
        """The MLflow store when no Dagster home or tracking URI says otherwise (SQLite)."""
        return self.root / "mlflow.db"
