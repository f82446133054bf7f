"""How a command-line program of spanqa's is put together: each command is its options and its handler, side by
side, registered in a table the `spanqa` program builds its parser from (plugin/doors/cli.py for the product's
commands, plugin/lab/cli.py for training and evaluation)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from spanqa.settings import Settings

__all__ = ["Command", "CommandTable", "env_default"]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, a one-line summary, what adds its options, and what runs it (an exit status)."""

    name: str
    summary: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass
class CommandTable:
    """Commands in the order `spanqa --help` lists them. `@table.command(name, summary, options)` registers a
    handler."""

    commands: dict[str, Command] = field(default_factory=dict)

    def command(self, name: str, summary: str, options: Callable[[argparse.ArgumentParser], None] = lambda p: None):
        def register(run: Callable[[argparse.Namespace], int]):
            self.commands[name] = Command(name, summary, options, run)
            return run

        return register

    def add_to(self, subparsers) -> None:
        for command in self.commands.values():
            parser = subparsers.add_parser(command.name, help=command.summary, description=command.summary,
                                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
            command.options(parser)


def env_default(name: str) -> str:
    """Help text for an option that defaults to a setting: its default and its environment variable."""
    return f"default: {getattr(Settings, name)}, or ${'SPANQA_' + name.upper()}"
