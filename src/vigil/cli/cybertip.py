"""`vigil cybertip`: NCMEC CyberTipline tools. `status` checks that the configured CyberTipline
(`VIGIL_CYBERTIPLINE_URL`, NCMEC's test base by default) is reachable and accepts the configured
credentials; `submit` files a console case (the same service as the console's flow,
`vigil.server.services.cybertip_filing`, on the server's database); `reports` lists the filings; `holds`
lists preservation holds; `stand-in` runs a local stand-in of NCMEC's reporting API (`vigil.ncmec_standin`)
for tests, the demo and operators rehearsing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from vigil.server.services.cybertip_filing import FilingPreview
    from vigil.server.settings import Settings

__all__ = ["cybertip_app"]

cybertip_app = typer.Typer(help="NCMEC CyberTipline reporting tools.", no_args_is_help=True)


@cybertip_app.command("status")
def status(
    timeout: float = typer.Option(30.0, help="Seconds to wait for each attempt."),
    attempts: int = typer.Option(3, min=1, help="Attempts before giving up on an unreachable server."),
) -> None:
    """Check the CyberTipline: reachable and credentials accepted (exit 1 with one line otherwise)."""
    import asyncio

    import pydantic

    from vigil.cli.errors import CliError
    from vigil.server.cybertipline import CyberTiplineClient, RetryPolicy
    from vigil.server.settings import Settings

    try:
        settings = Settings()
    except pydantic.ValidationError as invalid:
        raise CliError("; ".join(str(error["msg"]) for error in invalid.errors())) from None

    async def check() -> str | None:
        async with CyberTiplineClient.from_settings(
            settings, timeout=timeout, retry=RetryPolicy(attempts=attempts, base_delay=0.5)
        ) as client:
            return (await client.status()).request_id

    request_id = asyncio.run(check())
    typer.echo(
        f"CyberTipline {_shown(settings.cybertipline_url)}: reachable, credentials accepted "
        f"(user {settings.cybertipline_username!r}, Request-ID {request_id or 'none'})"
    )


def _settings(data_dir: str | None) -> Settings:
    import pydantic

    from vigil.cli.errors import CliError
    from vigil.server.settings import Settings

    try:
        return Settings() if data_dir is None else Settings(data_dir=data_dir)  # type: ignore[arg-type]
    except pydantic.ValidationError as invalid:
        raise CliError("; ".join(str(error["msg"]) for error in invalid.errors())) from None


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:80]
    except (KeyError, OSError):
        return "cli:unknown"


def _when(ms: int | None) -> str:
    from datetime import UTC, datetime

    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@cybertip_app.command("submit")
def submit(
    case: int = typer.Argument(..., help="The console's case number."),
    incident_type: str = typer.Option(
        ...,
        "--incident-type",
        help="NCMEC incident type: its name (e.g. child-pornography, online-enticement) or verbatim value.",
    ),
    classification: str | None = typer.Option(
        None, "--classification", help="Industry classification for every file: A1, A2, B1 or B2."
    ),
    yes: bool = typer.Option(False, "--yes", help="File without showing the report and asking."),
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
) -> None:
    """File a case to the CyberTipline: show what will be sent, ask, then submit, upload and finish."""
    import asyncio

    from vigil.cli.errors import CliError
    from vigil.safety.ncmec import CyberTiplineDocumentError, IndustryClassification
    from vigil.server.offline import offline_context
    from vigil.server.services import cybertip_filing as filing

    settings = _settings(data_dir)
    chosen = None
    if classification is not None:
        try:
            chosen = filing.FileClassification(IndustryClassification(classification.strip().upper()))
        except ValueError:
            raise CyberTiplineDocumentError("--classification", "must be A1, A2, B1 or B2") from None
    actor = _actor()

    async def work() -> filing.FilingRecord | None:
        async with offline_context(settings) as ctx:
            preview = await filing.prepare_filing(
                ctx, case, incident_type=incident_type, classifications={}, actor=actor
            )
            classes = {} if chosen is None else {f.key: chosen for f in preview.files}
            if chosen is not None:
                preview = await filing.prepare_filing(
                    ctx, case, incident_type=incident_type, classifications=classes, actor=actor
                )
            if not yes:
                _show(preview)
                if not typer.confirm(
                    f"File this report with the CyberTipline at {_shown(preview.base_url)}?"
                ):
                    return None
            return await filing.file_report(
                ctx, case, incident_type=incident_type, classifications=classes, actor=actor
            )

    record = asyncio.run(work())
    if record is None:
        raise CliError(f"case {case}: not filed")
    if record.state != filing.FilingState.FINISHED:
        raise CliError(f"case {case}: CyberTipline filing {record.id} is {record.state}")
    typer.echo(
        f"case {case}: CyberTipline report {record.ncmec_report_id} finished "
        f"(filing {record.id}, {len(record.files)} file(s), {_shown(record.base_url)})"
    )


def _show(preview: FilingPreview) -> None:
    typer.echo(f"Case {preview.case_id} about {preview.subject}: {preview.incident_type}")
    typer.echo(f"To: {_shown(preview.base_url)} ({'test' if preview.is_test else 'PRODUCTION'})")
    typer.echo(preview.report_xml.rstrip())
    for file in preview.files:
        viewed = (
            f"viewed by {', '.join(file.revealed_by)}" if file.viewed_by_esp else "not viewed by a person"
        )
        typer.echo(
            f"- {file.key}: {file.mime}, {file.size} bytes, sha256 {file.sha256}, "
            f"classification {file.classification or 'none'}, {viewed}"
        )
        if file.match:
            typer.echo(f"  {file.match}")


@cybertip_app.command("reports")
def reports(
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
) -> None:
    """List CyberTipline filings: state, NCMEC report id, NCMEC's code, retries, case."""
    import asyncio

    from vigil.server.offline import offline_context
    from vigil.server.services import cybertip_filing as filing

    settings = _settings(data_dir)

    async def work() -> list[filing.FilingRecord]:
        async with offline_context(settings) as ctx:
            return await filing.list_filings(ctx)

    records = asyncio.run(work())
    if not records:
        typer.echo("no CyberTipline filings")
        return
    typer.echo(
        "filing  case  state            ncmec-report  code  attempts  retries  files  filed-by  updated"
    )
    for r in records:
        typer.echo(
            f"{r.id:<7} {r.case_id:<5} {r.state:<16} {r.ncmec_report_id or '-'!s:<13} "
            f"{r.ncmec_code if r.ncmec_code is not None else '-'!s:<5} {r.attempts:<9} {r.retries:<8} "
            f"{len(r.files):<6} {r.filed_by}  {_when(r.updated_at_ms)}{'  (test)' if r.is_test else ''}"
        )


@cybertip_app.command("holds")
def holds(
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
) -> None:
    """List preservation holds placed by finished reports (release them in the console, as an admin)."""
    import asyncio

    from vigil.server.offline import offline_context
    from vigil.server.services.preservation import HoldRecord, list_holds

    settings = _settings(data_dir)

    async def work() -> list[HoldRecord]:
        async with offline_context(settings) as ctx:
            return await list_holds(ctx)

    found = asyncio.run(work())
    if not found:
        typer.echo("no preservation holds")
    for hold in found:
        state = (
            "in force" if hold.in_force else f"released by {hold.released_by} {_when(hold.released_at_ms)}"
        )
        typer.echo(
            f"hold {hold.id}: case {hold.case_id} ({hold.subject}), filing {hold.filing_id}, "
            f"until {_when(hold.hold_until_ms)}, {state}"
        )


def _shown(url: str) -> str:
    """The URL without any user:password part."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@cybertip_app.command("stand-in")
def stand_in(
    port: int = typer.Option(..., help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (keep it on loopback)."),
    username: str = typer.Option(
        "standin", envvar="VIGIL_CYBERTIPLINE_USERNAME", help="Basic-auth user the stand-in accepts."
    ),
    password: str = typer.Option(
        "standin", envvar="VIGIL_CYBERTIPLINE_PASSWORD", help="Basic-auth password the stand-in accepts."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run a stand-in CyberTipline server (in memory; reports are lost when it stops)."""
    import uvicorn

    from vigil.ncmec_standin import create_standin_app

    typer.echo(
        f"CyberTipline stand-in on http://{host}:{port} (user {username!r}; state at /_standin/reports)"
    )
    uvicorn.run(create_standin_app(username, password), host=host, port=port, log_level=log_level)
