"""How the command line reports a failure: one readable line on stderr and exit status 1, whatever
went wrong (a server that is down, a database that cannot be reached, a bad argument, a damaged device
store). The traceback is shown only under the global `--debug` flag."""

from __future__ import annotations

from typer._click.globals import get_current_context  # Typer 0.2x vendors click

from vigil.errors import VigilError

__all__ = ["CliError", "debugging", "one_line", "root_cause"]


class CliError(Exception):
    """A failure the command explains itself (e.g. an impossible birth date): its text is the line."""


def debugging() -> bool:
    """Whether `vigil --debug` was given (False outside a command, e.g. in a library call)."""
    context = get_current_context(silent=True)
    return context is not None and bool(context.find_root().params.get("debug"))


def one_line(error: BaseException) -> str:
    """What went wrong, in one line, without secrets (URLs lose their credentials)."""
    import httpx  # here, not at import: `vigil serve` keeps its imports small

    if isinstance(error, VigilError):
        text = f"{error.code}: {error.detail}"
    elif isinstance(error, httpx.TransportError):
        where = _without_credentials(str(error.request.url)) if _has_request(error) else "the server"
        reason = str(error) or type(error).__name__
        text = f"cannot reach {where}: {reason} (is the server running, and is the URL right?)"
    elif _is_database_error(error):
        text = f"cannot reach the database: {root_cause(error)}"
    elif isinstance(error, CliError):
        text = str(error)
    else:  # not foreseen: name the exception, and say how to see where it came from
        text = f"{type(error).__name__}: {error} (run with vigil --debug ... for the traceback)"
    first = " ".join(text.split())
    return first if len(first) <= 400 else first[:397] + "..."


def _has_request(error: BaseException) -> bool:
    try:
        return getattr(error, "request", None) is not None
    except RuntimeError:  # httpx raises when an error was built without a request
        return False


def _is_database_error(error: BaseException) -> bool:
    import sqlalchemy.exc

    return isinstance(error, sqlalchemy.exc.DBAPIError | sqlalchemy.exc.InterfaceError)


def root_cause(error: BaseException) -> str:
    seen = error
    while getattr(seen, "orig", None) is not None:
        seen = seen.orig  # type: ignore[attr-defined]
    while seen.__cause__ is not None:
        seen = seen.__cause__
    return str(seen).splitlines()[0] if str(seen) else type(seen).__name__


def _without_credentials(url: str) -> str:
    import httpx

    return str(httpx.URL(url).copy_with(userinfo=b"", query=None))
