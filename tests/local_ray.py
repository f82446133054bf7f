"""A real two-node Ray cluster on this machine, for the tests and the ingest benchmark: a head and a second node of
`cpus` CPUs each (`ray start`, from the `ray` extra), stopped afterwards whether the tests pass or fail.

    with two_node_ray() as address:
        collection.ingest(paths, ray=address)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["two_node_ray", "ray_processes"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _ray(*args: str, env: dict) -> None:
    subprocess.run([_ray_cli(), *args], check=True, env=env, capture_output=True, timeout=180)


@contextlib.contextmanager
def two_node_ray(cpus: int = 1, nodes: int = 2) -> Iterator[str]:
    """Yield the head's address (host:port) of a `nodes`-node cluster; `ray stop` ends every node afterwards.

    The cluster uses Ray's token authentication (its default for `ray start`), with a token made for the run and
    set in this process's environment while the cluster lives, as a real cluster's drivers carry theirs."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="spanqa-ray-"))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"127.0.0.1:{port}"
    try:
        _ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(cpus),
             "--num-gpus", "0", "--include-dashboard", "false", "--temp-dir", str(temp), "--disable-usage-stats",
             env=env)
        for _ in range(nodes - 1):
            _ray("start", "--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                 "--num-gpus", "0", env=env)
        _wait_for_nodes(address, nodes)
        yield address
    finally:
        subprocess.run([_ray_cli(), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_for_nodes(address: str, nodes: int, timeout_s: float = 60) -> None:
    """Until the head counts `nodes` live nodes (a second node registers a moment after its `ray start`)."""
    code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, timeout=120)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(nodes)]:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {nodes} nodes in {timeout_s} s")


def ray_processes(title: str) -> list[int]:
    """The pids of Ray worker processes whose title holds `title` (Ray names an actor's process after it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title in cmdline and "ray::" in cmdline:
                pids.append(int(entry.name))
    return pids
