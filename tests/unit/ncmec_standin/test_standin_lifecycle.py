"""The stand-in's wire protocol and lifecycle: auth, submit → upload → fileinfo → finish, retract, expiry."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from standin_calls import fileinfo, finish, parse, retract, submit, upload

from conftest import MINIMAL_REPORT, PASSWORD, PDQ, SHA, USER, FakeClock, file_details


@pytest.mark.parametrize("auth", [None, (USER, "wrong"), ("someone-else", PASSWORD)])
async def test_calls_without_or_with_wrong_credentials_are_refused(
    standin: httpx.AsyncClient, auth: tuple[str, str] | None
) -> None:
    for method, path in (("GET", "/status"), ("POST", "/submit"), ("POST", "/finish")):
        sent = await standin.request(method, path, content=MINIMAL_REPORT.encode(), auth=auth)
        assert ("Authorization" in sent.request.headers) == (auth is not None)
        answer = parse(sent)
        assert (answer.http_status, answer.code) == (401, 2000)
    view = (await standin.get("/_standin/reports")).json()
    assert view["reports"] == []


async def test_status_echoes_the_remote_user(standin: httpx.AsyncClient) -> None:
    answer = parse(await standin.get("/status"))
    assert (answer.http_status, answer.root, answer.code) == (200, "reportResponse", 0)
    assert f"Remote User : {USER}" in answer.fields["responseDescription"]


async def test_minimal_report_upload_fileinfo_finish(standin: httpx.AsyncClient) -> None:
    submitted = await submit(standin, MINIMAL_REPORT)
    assert (submitted.http_status, submitted.code) == (200, 0), submitted.fields
    report_id = int(submitted.fields["reportId"])
    content = b"\xff\xd8 not really a jpeg"
    uploaded = await upload(standin, report_id, content)
    assert uploaded.code == 0
    file_id = uploaded.fields["fileId"]
    assert len(file_id) == 32 and int(file_id, 16) >= 0
    assert uploaded.fields["hash"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
    described = await fileinfo(standin, file_details(report_id, file_id))
    assert described.code == 0, described.fields
    done = await finish(standin, report_id)
    assert (done.root, done.code, done.fields["reportId"], done.file_ids) == (
        "reportDoneResponse",
        0,
        str(report_id),
        [file_id],
    )

    view = (await standin.get("/_standin/reports")).json()
    [report] = view["reports"]
    assert report["state"] == "finished"
    assert report["files"] == [
        {
            "file_id": file_id,
            "filename": "a.jpg",
            "size": len(content),
            "md5": uploaded.fields["hash"],
            "sha256": hashlib.sha256(content).hexdigest(),
            "details": True,
            "viewed_by_esp": "true",
            "classification": "B2",
            "relevance": "Reported",
            "hashes": {"SHA256": SHA, "PDQ": PDQ},
        }
    ]
    request_ids = [submitted.request_id, uploaded.request_id, described.request_id, done.request_id]
    assert report["request_ids"] == request_ids
    assert len(set(request_ids)) == 4
    assert "not really" not in str(view)

    again = await finish(standin, report_id)
    assert again.code == 5102
    late_upload = await upload(standin, report_id, b"late")
    assert late_upload.code == 5102
    assert (await retract(standin, report_id)).code == 5102


async def test_retract_then_finish_upload_or_retract_again_is_refused(standin: httpx.AsyncClient) -> None:
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    assert (await retract(standin, report_id)).code == 0
    assert (await finish(standin, report_id)).code == 5101
    assert (await upload(standin, report_id, b"x")).code == 5101
    assert (await retract(standin, report_id)).code == 5101
    view = (await standin.get("/_standin/reports")).json()
    assert view["reports"][0]["state"] == "retracted"


async def test_unknown_report_and_unknown_file(standin: httpx.AsyncClient) -> None:
    assert (await finish(standin, 999)).code == 5001
    assert (await retract(standin, 999)).code == 5001
    assert (await upload(standin, 999, b"x")).code == 5001
    assert (await fileinfo(standin, file_details(999, "0" * 32))).code == 5001
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    assert (await fileinfo(standin, file_details(report_id, "0" * 32))).code == 5002


async def test_finish_without_id_is_an_invalid_request(standin: httpx.AsyncClient) -> None:
    answer = parse(await standin.post("/finish", files={"other": (None, "1")}))
    assert (answer.http_status, answer.code) == (400, 4000)


async def test_unfinished_report_expires_after_24_hours(standin: httpx.AsyncClient, clock: FakeClock) -> None:
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    clock.advance(hours=23, minutes=59)
    assert (await upload(standin, report_id, b"x")).code == 0  # last modified now: 1 h more
    clock.advance(minutes=59)
    assert (await upload(standin, report_id, b"y")).code == 0  # 24 h 58 min after opening
    clock.advance(minutes=61)
    assert (await finish(standin, report_id)).code == 5001
    view = (await standin.get("/_standin/reports")).json()
    assert view["reports"][0]["state"] == "expired"


async def test_report_left_alone_expires_at_24_hours_exactly(
    standin: httpx.AsyncClient, clock: FakeClock
) -> None:
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    clock.advance(hours=23, minutes=59, seconds=59)
    assert (await standin.get("/_standin/reports")).json()["reports"][0]["state"] == "open"
    clock.advance(seconds=1)
    assert (await retract(standin, report_id)).code == 5001


async def test_finished_report_does_not_expire(standin: httpx.AsyncClient, clock: FakeClock) -> None:
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    assert (await finish(standin, report_id)).code == 0
    clock.advance(hours=48)
    assert (await finish(standin, report_id)).code == 5102
