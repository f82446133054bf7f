"""A PostgreSQL collection's location: `postgresql://user:password@host:5432/database?collection=manuals`, split
into the server's connection string and the collection's name (its schema is `spanqa_<name>`), and shown without
its password."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from spanqa.errors import InputError

__all__ = ["PostgresLocation", "is_postgres_location"]

_SCHEMES = ("postgresql://", "postgres://")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def is_postgres_location(location: object) -> bool:
    return isinstance(location, str) and location.startswith(_SCHEMES)


class PostgresLocation:
    """A collection URL split into the server's connection string and the collection's name."""

    def __init__(self, url: str) -> None:
        if not is_postgres_location(url):
            raise InputError(f"{url!r} is not a PostgreSQL URL (postgresql://user@host/database?collection=name)")
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        names = [value for key, value in query if key == "collection"]
        self.name = names[-1] if names else "default"
        if not self.name or len(self.name) > 48 or not set(self.name) <= _NAME_CHARS:
            raise InputError(f"Collection name {self.name!r} in {self.display(parts)}: use 1-48 lowercase letters, "
                             "digits and underscores (?collection=manuals)")
        rest = urlencode([(k, v) for k, v in query if k != "collection"])
        self.conninfo = urlunsplit(parts._replace(query=rest))
        self.schema = f"spanqa_{self.name}"
        self.url = url
        self.shown = self.display(parts)

    def with_name(self, name: str) -> str:
        """The URL of another collection on the same server and database."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "collection"]
        return urlunsplit(parts._replace(query=urlencode([*query, ("collection", name)])))

    @staticmethod
    def display(parts) -> str:
        """The URL without its password, fit for messages and logs."""
        netloc = parts.netloc
        if "@" in netloc and ":" in netloc.split("@", 1)[0]:
            user = netloc.split("@", 1)[0].split(":", 1)[0]
            netloc = f"{user}:***@{netloc.split('@', 1)[1]}"
        return urlunsplit(parts._replace(netloc=netloc))
