"""`vigil cybertip submit | reports | holds` on the server's database against a real stand-in process, on
SQLite and PostgreSQL; and the crash test: the filing process is killed between /upload and /finish, a
real server started on the same database recovers the filing, and the stand-in ends with exactly one
finished report."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import vigil
from cybertip_helpers import SeededCase, StandIn, cybertip_env, running_stand_in, seed_csam_case
from live_server import ServerProcess, create_postgres_database, drop_postgres_database, require_backend
from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.server.context import ServerContext
from vigil.server.services import cybertip_filing as filing
from vigil.server.settings import Settings


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with running_stand_in() as running:
        yield running


@dataclass
class Deployment:
    data_dir: Path
    database_url: str
    stand_in: StandIn

    @property
    def env(self) -> dict[str, str]:
        return {
            "VIGIL_DATA_DIR": str(self.data_dir),
            "VIGIL_DATABASE_URL": self.database_url,
            "VIGIL_ENVIRONMENT": "dev",
            **cybertip_env(self.stand_in),
        }

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=self.database_url)

    def seed(self, tag: str) -> SeededCase:
        async def work() -> SeededCase:
            async with ServerContext.open(self.settings()) as ctx:
                return await seed_csam_case(ctx, tag)

        return asyncio.run(work())

    def filings(self) -> list[filing.FilingRecord]:
        async def work() -> list[filing.FilingRecord]:
            async with ServerContext.open(self.settings()) as ctx:
                return await filing.list_filings(ctx)

        return asyncio.run(work())


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path, stand_in: StandIn) -> Iterator[Deployment]:
    require_backend(request.param)
    database = None
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'vigil.db'}"
    if request.param == "postgres":
        database, url = create_postgres_database()
    stand_in.fault()
    try:
        yield Deployment(tmp_path / "data", url, stand_in)
    finally:
        if database is not None:
            drop_postgres_database(database)


def test_submit_yes_files_the_case_and_reports_and_holds_list_it(deployment: Deployment) -> None:
    seeded = deployment.seed("cli")
    ran = vigil(
        "cybertip", "submit", str(seeded.case_id), "--incident-type", "child-pornography",
        "--classification", "b1", "--yes", env=deployment.env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (line,) = ran.stdout.splitlines()
    (record,) = deployment.filings()
    assert line == (
        f"case {seeded.case_id}: CyberTipline report {record.ncmec_report_id} finished "
        f"(filing {record.id}, 2 file(s), {deployment.stand_in.url})"
    )
    assert record.filed_by.startswith("cli:") and [f.classification for f in record.files] == ["B1", "B1"]
    at_ncmec = deployment.stand_in.report(record.ncmec_report_id or 0)
    assert at_ncmec["state"] == "finished" and {f["classification"] for f in at_ncmec["files"]} == {"B1"}

    listed = vigil("cybertip", "reports", env=deployment.env)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split()[:4] == ["filing", "case", "state", "ncmec-report"]
    assert row.split()[:6] == [
        str(record.id),
        str(seeded.case_id),
        "finished",
        str(record.ncmec_report_id),
        "-",
        "6",
    ]
    held = vigil("cybertip", "holds", env=deployment.env)
    assert held.returncode == 0 and f"case {seeded.case_id} ({seeded.subject})" in held.stdout
    assert "in force" in held.stdout


def test_submit_without_yes_shows_the_report_and_files_nothing_when_declined(deployment: Deployment) -> None:
    seeded = deployment.seed("ask")
    before = len(deployment.stand_in.view()["reports"])
    result = CliRunner().invoke(
        app,
        ["cybertip", "submit", str(seeded.case_id), "--incident-type", "child-pornography"],
        env={"COLUMNS": "200", **deployment.env},
        input="n\n",
    )
    assert result.exit_code == 1
    assert "<incidentType>Child Pornography (possession, manufacture, and distribution)</incidentType>" in (
        result.stdout
    )
    assert (
        f"- item:{seeded.item_id}: image/png" in result.stdout and "not viewed by a person" in result.stdout
    )
    assert "File this report with the CyberTipline" in result.stdout
    assert result.stderr.strip() == f"error: case {seeded.case_id}: not filed"
    assert len(deployment.stand_in.view()["reports"]) == before
    assert deployment.filings() == []


def test_a_refusal_exits_1_with_one_line_naming_ncmecs_code(deployment: Deployment) -> None:
    seeded = deployment.seed("no")
    deployment.stand_in.fault({"endpoint": "submit", "action": "fail", "http_status": 400, "code": 4100})
    ran = vigil(
        "cybertip", "submit", str(seeded.case_id), "--incident-type", "child-pornography", "--yes",
        env=deployment.env,
    )  # fmt: skip
    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: cybertipline_refused: /submit: NCMEC code 4100 (validation failed); ")
    assert "CyberTipline filing 1 is failed" in line and "Request-ID" in line
    assert seeded.subject not in line
    bad = vigil(
        "cybertip", "submit", str(seeded.case_id), "--incident-type", "sextortion", env=deployment.env
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith(
        "error: ncmec_invalid_document: incident_type: unknown incident type; one of:"
    )
    listed = vigil("cybertip", "reports", env=deployment.env)
    assert listed.stdout.splitlines()[1].split()[2:5] == ["failed", "-", "4100"]


def _wait(condition: object, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_killing_the_filer_between_upload_and_finish_leaves_exactly_one_finished_report(
    deployment: Deployment,
) -> None:
    seeded = deployment.seed("kill")
    stand_in = deployment.stand_in
    before = {r["report_id"] for r in stand_in.view()["reports"]}
    # The stand-in finishes the report at once but holds /finish's answer back far longer than the test
    # waits: the filer is killed while it waits (a lost answer), however loaded the machine is.
    stand_in.fault({"endpoint": "finish", "action": "stall", "seconds": 15.0, "times": 1})
    env = {**os.environ, **deployment.env, "VIGIL_CYBERTIPLINE_LEASE_SECONDS": "2"}
    filer = subprocess.Popen(
        [sys.executable, "-m", "vigil", "cybertip", "submit", str(seeded.case_id),
         "--incident-type", "child-pornography", "--yes"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:

        def finished_at_ncmec() -> bool:
            new = [r for r in stand_in.view()["reports"] if r["report_id"] not in before]
            return bool(new) and len(new[0]["files"]) == 2 and new[0]["state"] == "finished"

        _wait(finished_at_ncmec, "the filer's /finish to reach the stand-in")  # it waits for the answer
        assert filer.poll() is None
    finally:
        os.killpg(filer.pid, signal.SIGKILL)
        filer.wait(timeout=10)
    (stuck,) = deployment.filings()
    assert stuck.state == filing.FilingState.UPLOADING and stuck.ncmec_report_id is not None

    server = ServerProcess(
        data_dir=deployment.data_dir,
        database_url=deployment.database_url,
        env_extra={**deployment.env, "VIGIL_CYBERTIPLINE_LEASE_SECONDS": "2"},
    )
    server.start()
    try:
        _wait(lambda: deployment.filings()[0].state == "finished", "the server to recover the filing")
    finally:
        server.stop()
    (recovered,) = deployment.filings()
    assert (recovered.id, recovered.ncmec_report_id, recovered.recoveries) == (
        stuck.id,
        stuck.ncmec_report_id,
        1,
    )
    new_reports = [r for r in stand_in.view()["reports"] if r["report_id"] not in before]
    assert [(r["report_id"], r["state"]) for r in new_reports] == [(stuck.ncmec_report_id, "finished")]
    submits = [
        c
        for c in stand_in.view()["calls"]
        if c["endpoint"] == "submit" and c["response_code"] == 0 and c["report_id"] not in before
    ]
    assert len(submits) == 1  # never filed twice
    assert seeded.subject not in server.log_path.read_text(errors="replace")
