"""NCMEC's free-text descriptions can quote the document sent (the schema validator echoes values:
`Value 'x' is not facet-valid`); what Vigil keeps of them names the rule and the position, never a value."""

from __future__ import annotations

from vigil.server.services.cybertip_steps import content_free_description

CANARY = "CANARY-mallory_9f3e"


def test_quoted_values_are_dropped_and_the_rule_and_position_kept() -> None:
    said = (
        f"Validation failed [1,638] - cvc-enumeration-valid: Value '{CANARY}' is not facet-valid with "
        "respect to enumeration '[A1, A2, B1, B2]'. It must be a value from the enumeration."
    )
    kept = content_free_description(said)
    assert CANARY not in kept
    assert kept.startswith("Validation failed [1,638] - cvc-enumeration-valid: Value '…'")


def test_double_quoted_and_element_text_is_dropped() -> None:
    kept = content_free_description(
        f'cvc-datatype-valid.1.2.1: "{CANARY}" is not a valid value; <x>{CANARY}</x>'
    )
    assert CANARY not in kept and kept.startswith("cvc-datatype-valid.1.2.1:")


def test_a_plain_description_is_kept_and_clipped() -> None:
    assert content_free_description("Success") == "Success"
    assert content_free_description("Report does not exist") == "Report does not exist"
    assert len(content_free_description("x" * 5000)) <= 200
