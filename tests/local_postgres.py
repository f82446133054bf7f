"""A throwaway PostgreSQL with pgvector on loopback, for the tests and the scale benchmark.

The server binaries come from the `pgserver` wheel (PostgreSQL 16 with pgvector, installed by the `dev` extra), so
nothing is downloaded at run time and no server has to be left running by hand. It listens on 127.0.0.1 at a free
port, trusts local connections, and `close()` (or leaving the `with` block) stops it and deletes everything it made.

Everything lives under one folder the helper creates itself (`root`, in the system's temporary folder): the data
directory and, under root, a copy of the binaries. PostgreSQL refuses to run as root, so under root it runs as the
system user `pgserver` (created if absent), and that user must reach the binaries and the data: the helper opens
only the folders it created to it and never changes a folder it did not create (the site-packages install, a home,
the temporary folder itself).

    with LocalPostgres() as server:
        collection = PostgresCollection(server.url("spanqa") + "?collection=manuals")
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LocalPostgres", "pginstall_dir", "running_postgres"]

_SYSTEM_USER = "pgserver"


def pginstall_dir() -> Path:
    """The PostgreSQL install inside the pgserver wheel, found without importing pgserver (whose import creates
    runtime directories we do not use)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("PostgreSQL for the tests comes from the pgserver wheel: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _others_can_enter(folder: Path) -> bool:
    return bool(folder.stat().st_mode & stat.S_IXOTH)


class LocalPostgres:
    """initdb + pg_ctl in a folder of its own; `url(database)` connects as the superuser `postgres`.

    `stop()` keeps the data (a test can start the same server again); `close()` stops it and removes the folder.
    """

    def __init__(self, port: int | None = None, settings: dict[str, str] | None = None,
                 parent: str | Path | None = None) -> None:
        self.port = port or _free_port()
        self.settings = {"max_connections": "100", "shared_buffers": "256MB", "fsync": "on", **(settings or {})}
        self._as_root = os.geteuid() == 0
        parent = Path(parent or tempfile.gettempdir()).resolve()
        if self._as_root:
            self._check_reachable(parent)
        self.root = Path(tempfile.mkdtemp(prefix="spanqa-pg-", dir=parent))
        self.data_dir = self.root / "data"
        self.install_dir = self._install()

    @staticmethod
    def _check_reachable(parent: Path) -> None:
        # The server user must pass through every folder above ours; we say so rather than loosen them.
        for folder in (parent, *parent.parents):
            if not _others_can_enter(folder):
                raise RuntimeError(f"{folder} is closed to other users (mode {stat.filemode(folder.stat().st_mode)}),"
                                   f" so PostgreSQL, which runs as the user {_SYSTEM_USER!r} under root, cannot reach"
                                   " a server folder below it; give LocalPostgres(parent=...) or TMPDIR a folder "
                                   "other users can enter")

    def _install(self) -> Path:
        """Under root, a copy of the binaries inside our own folder (readable by the server user); else the wheel's."""
        if not self._as_root:
            return pginstall_dir()
        import pwd

        try:
            entry = pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "-s", "/usr/sbin/nologin", _SYSTEM_USER], check=True)
            entry = pwd.getpwnam(_SYSTEM_USER)
        self.root.chmod(0o755)
        # The wheel's layout is kept: its binaries find their libraries at $ORIGIN/../../../<distribution>.libs.
        wheel = pginstall_dir().parent
        copy = self.root / "site" / wheel.name
        shutil.copytree(wheel / "pginstall", copy / "pginstall", symlinks=True)
        for libs in wheel.parent.glob(f"{wheel.name}*.libs"):
            shutil.copytree(libs, self.root / "site" / libs.name, symlinks=True)
        for folder in (self.root / "site", *(p for p in (self.root / "site").rglob("*") if p.is_dir())):
            folder.chmod(0o755)
        self.data_dir.mkdir()
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return copy / "pginstall"

    def _run(self, program: str, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        command = [str(self.install_dir / "bin" / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=stdin,
                                user=_SYSTEM_USER if self._as_root else None)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}")
        return result.stdout

    def log_tail(self, chars: int = 2000) -> str:
        log = self.data_dir / "server.log"
        return log.read_text(errors="replace")[-chars:] if log.is_file() else ""

    def start(self) -> LocalPostgres:
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

    def close(self) -> None:
        """Stop the server whatever state it is in (a fast stop, else the postmaster killed) and delete the folder."""
        try:
            self.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # its backends exit when they see the postmaster gone

    def running(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` (read from standard input, so it may be long) and return what psql printed, unaligned."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-qAt",
                         "-v", "ON_ERROR_STOP=1", "-f", "-", stdin=sql)

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.running():
                return
            time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL on port {self.port} did not start")

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def running_postgres(**options) -> Iterator[LocalPostgres]:
    """A started LocalPostgres, closed (stopped, its folder removed) however the block ends: a failing test
    leaves no server behind."""
    server = LocalPostgres(**options)
    try:
        yield server.start()
    finally:
        server.close()
