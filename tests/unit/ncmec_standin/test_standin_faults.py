"""The stand-in's test-only fault rules (`/_standin/faults`): a "fail" answers NCMEC's wire format with the
given HTTP status and code and does nothing; a "stall" does the work and answers late; each rule is used
`times` times; malformed rules are refused."""

from __future__ import annotations

import time

import httpx
from standin_calls import finish, submit

from conftest import MINIMAL_REPORT


async def test_a_fail_rule_answers_with_its_code_and_changes_nothing(standin: httpx.AsyncClient) -> None:
    rules = {
        "rules": [{"endpoint": "submit", "action": "fail", "times": 2, "http_status": 503, "code": 1000}]
    }
    assert (await standin.post("/_standin/faults", json=rules)).json() == {"rules": 1}
    for _ in range(2):
        failed = await submit(standin, MINIMAL_REPORT)
        assert (failed.http_status, failed.root, failed.code) == (503, "reportResponse", 1000)
    assert (await standin.get("/_standin/reports")).json()["reports"] == []
    assert (await standin.get("/_standin/faults")).json() == {"rules": []}
    opened = await submit(standin, MINIMAL_REPORT)
    assert opened.code == 0 and len((await standin.get("/_standin/reports")).json()["reports"]) == 1


async def test_a_stall_rule_does_the_work_and_answers_late(standin: httpx.AsyncClient) -> None:
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    rules = {"rules": [{"endpoint": "finish", "action": "stall", "seconds": 0.3}]}
    await standin.post("/_standin/faults", json=rules)
    started = time.monotonic()
    done = await finish(standin, report_id)
    assert done.code == 0 and time.monotonic() - started >= 0.3
    (report,) = (await standin.get("/_standin/reports")).json()["reports"]
    assert report["state"] == "finished"


async def test_malformed_rules_are_refused(standin: httpx.AsyncClient) -> None:
    for body in ({"rules": [{"endpoint": "finish", "action": "explode"}]}, {"rules": [{"nope": 1}]}, [1]):
        answer = await standin.post("/_standin/faults", json=body)
        assert answer.status_code == 400 and "error" in answer.json()
