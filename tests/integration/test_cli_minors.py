"""The minors' protective defaults as a user meets them on the command line: `vigil chat request | requests |
accept | ignore | block-request | contacts | notices` with a 14-year-old's profile and an adult's."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from cli_runner import Ran, vigil
from helpers import unique
from live_server import start_server

from vigil.safety.policy import NEUTRAL_REFUSAL

TODAY = dt.date.today()
TEEN_14 = TODAY.replace(year=TODAY.year - 14, day=min(TODAY.day, 28)).isoformat()


def test_adult_must_request_and_the_minor_sees_a_notice_then_accepts(tmp_path: Path) -> None:
    server, _ = start_server("sqlite", tmp_path)
    env = {"VIGIL_HOME": str(tmp_path / "home"), "VIGIL_PASSPHRASE": "cli minors passphrase"}
    adult, teen, other = unique("adult"), unique("teen"), unique("other")

    def chat(profile: str, *args: str) -> Ran:
        return vigil("chat", "--profile", profile, *args, env=env)

    try:
        for name, born in ((adult, "1985-04-02"), (teen, TEEN_14), (other, "1979-11-30")):
            done = chat(name, "register", name, "--server", server.url, "--birth-date", born)
            assert done.returncode == 0 and f"registered {name}" in done.stdout, done.stdout + done.stderr

        # A stranger adult's DM to the 14-year-old is refused, with a clear message and the way forward.
        refused = chat(adult, "send", teen, "hi there")
        assert refused.returncode == 1, refused.stdout
        assert "policy_violation" in refused.stdout and NEUTRAL_REFUSAL in refused.stdout
        assert "minor" not in refused.stdout  # the refusal does not reveal that the recipient is a child
        assert f"vigil chat --profile {adult} request USER" in refused.stdout

        sent = chat(adult, "request", teen)
        assert sent.returncode == 0 and f"sent to {teen} (pending)" in sent.stdout, sent.stdout + sent.stderr
        again = chat(adult, "request", teen)
        assert again.returncode == 1 and "conflict" in again.stdout
        assert chat(other, "request", teen).returncode == 0
        outgoing = chat(adult, "requests")
        assert re.search(rf"outgoing\s+#\d+ to {teen} \(pending", outgoing.stdout), outgoing.stdout

        # `receive` announces the new requests and safety notices where the minor reads messages, once.
        announced = " ".join(chat(teen, "receive").stdout.split())
        assert "contact request #" in announced
        assert f"from {adult}" in announced and f"from {other}" in announced
        assert f"(verified, unconnected_adult) about {adult}" in announced
        assert f"vigil chat --profile {teen} accept|ignore|block-request ID" in announced
        again_announced = chat(teen, "receive").stdout
        assert "contact request" not in again_announced and "no new messages" in again_announced

        # The minor sees the pending requests and a verified safety notice for each unconnected adult,
        # with the block / report actions as commands.
        listed = chat(teen, "requests")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        ids = {m[1]: int(m[0]) for m in re.findall(r"#(\d+) from (\S+) \(pending", listed.stdout)}
        assert set(ids) == {adult, other} and "outgoing (none)" in listed.stdout
        notices = chat(teen, "notices")
        assert notices.returncode == 0, notices.stdout + notices.stderr
        flat = " ".join(notices.stdout.split())
        assert f"(verified, unconnected_adult) about {adult}" in flat
        assert f"{adult} is an adult you are not connected to" in flat
        assert f"actions: block {adult} | report-account {adult} --reason grooming" in flat
        assert "from the safety team" not in flat  # no warnings were issued; safety notices only

        assert "no contacts yet" in chat(teen, "contacts").stdout
        accepted = chat(teen, "accept", str(ids[adult]))
        assert accepted.returncode == 0 and f"now connected to {adult}" in accepted.stdout, accepted.stdout
        blocked = chat(teen, "block-request", str(ids[other]))
        assert blocked.returncode == 0 and f"blocked {other}" in blocked.stdout, blocked.stdout
        assert chat(teen, "contacts").stdout.split() == [adult]
        assert chat(adult, "contacts").stdout.split() == [teen]
        assert "incoming (none)" in chat(teen, "requests").stdout

        # After acceptance the DM is delivered; the blocked requester still cannot reach the minor.
        delivered = chat(adult, "send", teen, "thanks for accepting")
        assert delivered.returncode == 0 and "sent to 1 device" in delivered.stdout, delivered.stdout
        received = chat(teen, "receive")
        assert f"{adult}: thanks for accepting" in received.stdout, received.stdout + received.stderr
        assert chat(other, "send", teen, "why?").returncode == 1
        assert chat(other, "request", teen).returncode == 1
        assert chat(teen, "ignore", "999999").returncode == 1
    finally:
        server.stop()
