"""spanqa as it was at a git revision, importable beside today's benchmark code: `spanqa bench --before REV`.

A change to decoding, boundaries or ranking is code, not only weights, so "before" must run the earlier code with
its models. `checkout(rev)` makes a detached git worktree of `rev` in a temporary folder and a package root
holding only `spanqa` (today's editable install maps `spanqa`, `spanqa.plugin`, `spanqa.retriever` and `spanqa.ui`
onto the checkout's top-level folders; the worktree gets the same layout through links). `importing_from(root)`
puts that root first on `sys.path` while a spawned process starts, so the process imports the earlier spanqa and
today's `bench`: both systems are measured by the same benchmark code, in one run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["checkout", "importing_from"]

REPOSITORY = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("plugin", "retriever", "ui")  # top-level folders the install maps to spanqa.<name>


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A package root whose `spanqa` is the repository at `rev`; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="spanqa-before-") as tmp:
        source, root = Path(tmp) / "source", Path(tmp) / "root"
        try:
            subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "add", "--detach", "--quiet", str(source),
                            rev], check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as exc:
            raise SystemExit(f"--before {rev}: git could not check it out: {exc.stderr.strip()}") from exc
        try:
            for name in SUBPACKAGES:
                (source / "spanqa" / name).symlink_to(source / name, target_is_directory=True)
            root.mkdir()
            (root / "spanqa").symlink_to(source / "spanqa", target_is_directory=True)
            yield root
        finally:
            subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(source)],
                           check=False, capture_output=True)


@contextmanager
def importing_from(root: Path | None) -> Iterator[None]:
    """While inside, processes spawned from here import `spanqa` from `root` (a spawned process starts with its
    parent's sys.path); nothing changes when `root` is None."""
    if root is None:
        yield
        return
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
