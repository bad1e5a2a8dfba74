"""Retention runs by itself from start-up, independent of other settings: with risk scoring switched
off (interval 0), every sweep still runs on its own interval and reports itself at `GET /v1/retention`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from in_process import in_process_server

from vigil.server.services.retention import SWEEPS
from vigil.server.settings import Settings


async def test_every_sweep_runs_with_risk_scoring_switched_off(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, risk_scoring_interval_seconds=0, retention_sweep_interval_seconds=0.05
    )
    async with in_process_server(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        runs: dict[str, int] = {}
        deadline = asyncio.get_running_loop().time() + 60  # a condition, not a count: robust under load
        while asyncio.get_running_loop().time() < deadline:
            report = (await http.get("/v1/retention")).json()["sweeps"]
            runs = {name: stats["runs"] for name, stats in report.items()}
            if len(runs) == len(SWEEPS) and min(runs.values()) >= 2:
                break
            await asyncio.sleep(0.05)
        assert set(runs) == {sweep.name for sweep in SWEEPS}
        assert min(runs.values()) >= 2  # each ran at start-up and again on its own interval
        assert all(stats["failures"] == 0 and stats["last_run_ms"] for stats in report.values())
