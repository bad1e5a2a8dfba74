"""Property-based API test: schemathesis generates requests (valid and invalid) from the published
OpenAPI schema and sends them, with a registered device's credential, to a real server. No request may
get a 5xx. Bounded in examples per operation so that it stays well under a minute."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import register
from live_server import ServerProcess, running_server

from vigil.server.app import create_app
from vigil.server.settings import Settings

schemathesis = pytest.importorskip("schemathesis", reason="in the dev extra: pip install -e '.[dev]'")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

schema = schemathesis.openapi.from_dict(create_app(Settings(data_dir=Path("unused"))).openapi())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    # Rate limits would turn most generated requests into 429s: off, to reach the handlers.
    with running_server("sqlite", tmp, {"VIGIL_RATE_LIMITS_ENABLED": "false"}) as server:

        async def credential() -> str:
            client = await register(server.url, tmp, "fuzzer")
            secret = client.store.get_secret("credential") or ""
            await client.close()
            return secret

        yield server, {"Authorization": f"Bearer {asyncio.run(credential())}"}
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(
    case: schemathesis.Case, fuzzed: tuple[ServerProcess, dict[str, str]]
) -> None:
    server, auth = fuzzed
    response = case.call(base_url=server.url, headers=auth, timeout=10)
    case.validate_response(response, checks=[not_a_server_error])
