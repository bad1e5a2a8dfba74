"""The age-aware contact rules: every branch of `decide_send` and `decide_group_add`."""

from __future__ import annotations

import pytest

from vigil.safety.policy import (
    NEUTRAL_REFUSAL,
    NOT_CONNECTED_REFUSAL,
    Refusal,
    Standing,
    decide_group_add,
    decide_group_join,
    decide_group_send,
    decide_invite_link,
    decide_send,
    public_refusal,
    restricted_meets_minor,
    unconnected_minor_adult,
)


def _send(
    standing: Standing = Standing.ACTIVE,
    *,
    blocked: bool = False,
    minor: bool = False,
    existing: bool = True,
    connected: bool = True,
) -> str | None:
    return decide_send(
        standing,
        blocked_by_recipient=blocked,
        recipient_is_minor=minor,
        existing_conversation=existing,
        connected=connected,
    )


def test_an_active_account_may_message_an_adult_and_a_connected_minor() -> None:
    assert _send() is None
    assert _send(existing=False) is None
    assert _send(minor=True, connected=True, existing=False) is None


def test_connected_defaults_to_true() -> None:
    assert (
        decide_send(
            Standing.ACTIVE, blocked_by_recipient=False, recipient_is_minor=True, existing_conversation=False
        )
        is None
    )


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("minor", [False, True])
def test_a_suspended_account_sends_nothing(blocked: bool, minor: bool) -> None:
    assert _send(Standing.SUSPENDED, blocked=blocked, minor=minor) == "this account is suspended"


def test_a_restricted_account_cannot_contact_minors_even_in_a_connected_existing_chat() -> None:
    refusal = _send(Standing.RESTRICTED, minor=True, existing=True, connected=True)
    assert refusal == "this account is restricted and cannot contact minors"


def test_a_restricted_account_cannot_start_a_new_conversation() -> None:
    refusal = _send(Standing.RESTRICTED, existing=False)
    assert refusal == "this account is restricted and cannot start new conversations"


def test_a_restricted_account_may_continue_an_existing_adult_conversation() -> None:
    assert _send(Standing.RESTRICTED, existing=True) is None


def test_a_restricted_account_blocked_by_the_recipient_is_refused_for_the_block() -> None:
    assert _send(Standing.RESTRICTED, existing=True, blocked=True) == "the recipient has blocked this account"


def test_a_block_refuses_an_active_sender() -> None:
    assert _send(blocked=True) == "the recipient has blocked this account"
    assert _send(blocked=True, minor=True, connected=False) == "the recipient has blocked this account"


def test_a_minor_receives_direct_messages_only_from_connections() -> None:
    assert _send(minor=True, connected=False) == NOT_CONNECTED_REFUSAL
    assert _send(minor=False, connected=False) is None


def _add(
    standing: Standing = Standing.ACTIVE,
    *,
    adder_minor: bool = False,
    member_minor: bool = False,
    connected: bool = False,
    blocked: bool = False,
    unconnected: bool = False,
) -> str | None:
    return decide_group_add(
        standing,
        adder_is_minor=adder_minor,
        member_is_minor=member_minor,
        connected=connected,
        blocked=blocked,
        unconnected_minor_adult=unconnected,
    )


@pytest.mark.parametrize("standing", list(Standing))
@pytest.mark.parametrize("member_minor", [False, True])
def test_nobody_adds_someone_who_blocked_them(standing: Standing, member_minor: bool) -> None:
    assert _add(standing, member_minor=member_minor, blocked=True) == "that account has blocked you"


@pytest.mark.parametrize("standing", list(Standing))
def test_adding_an_adult_is_allowed_whatever_the_standing(standing: Standing) -> None:
    assert _add(standing, member_minor=False, connected=False) is None


@pytest.mark.parametrize("standing", [Standing.RESTRICTED, Standing.SUSPENDED])
@pytest.mark.parametrize("adder_minor", [False, True])
def test_a_restricted_or_suspended_account_cannot_add_a_minor(standing: Standing, adder_minor: bool) -> None:
    refusal = _add(standing, adder_minor=adder_minor, member_minor=True, connected=True)
    assert refusal == "this account is restricted and cannot contact minors"


def test_an_adult_adds_a_minor_only_when_connected() -> None:
    refusal = _add(adder_minor=False, member_minor=True, connected=False)
    assert refusal == "an adult can add a minor to a group only when the two are connected"
    assert _add(adder_minor=False, member_minor=True, connected=True) is None


def test_a_minor_may_add_another_minor_without_a_connection() -> None:
    assert _add(adder_minor=True, member_minor=True, connected=False) is None


def test_a_minor_is_never_left_in_a_group_with_an_unconnected_adult() -> None:
    refusal = _add(member_minor=False, connected=False, unconnected=True)
    assert refusal is Refusal.MINOR_WITH_UNCONNECTED_ADULT
    assert _add(adder_minor=True, member_minor=True, unconnected=True) is Refusal.MINOR_WITH_UNCONNECTED_ADULT
    assert _add(member_minor=True, connected=True, unconnected=False) is None


def test_unconnected_minor_adult_names_the_first_pair_without_a_connection() -> None:
    connections = {frozenset(("kid", "mum")), frozenset(("kid2", "mum"))}
    assert unconnected_minor_adult(["kid", "kid2"], ["mum"], connections) is None
    assert unconnected_minor_adult(["kid"], ["mum", "coach"], connections) == ("kid", "coach")
    assert unconnected_minor_adult([], ["coach"], connections) is None
    assert unconnected_minor_adult(["kid"], [], connections) is None


@pytest.mark.parametrize("refusal", list(Refusal))
def test_only_suspension_is_told_as_itself(refusal: Refusal) -> None:
    told = public_refusal(refusal)
    if refusal is Refusal.SUSPENDED:
        assert told == "this account is suspended"
    else:
        assert told == NEUTRAL_REFUSAL
        assert "minor" not in told and "block" not in told and "restrict" not in told


def _join(
    standing: Standing = Standing.ACTIVE,
    *,
    minors: bool = False,
    blocked: bool = False,
    unconnected: bool = False,
) -> Refusal | None:
    return decide_group_join(
        standing, group_has_minors=minors, blocked_by_member=blocked, unconnected_minor_adult=unconnected
    )


def test_an_active_account_joins_by_link_where_every_minor_knows_every_adult() -> None:
    assert _join() is None
    assert _join(minors=True) is None


def test_a_link_join_that_would_put_a_minor_with_an_unknown_adult_is_refused() -> None:
    assert _join(minors=True, unconnected=True) is Refusal.MINOR_WITH_UNCONNECTED_ADULT


def test_nobody_joins_by_link_where_a_member_blocked_them() -> None:
    assert _join(blocked=True) is Refusal.BLOCKED_BY_MEMBER


@pytest.mark.parametrize("minors", [False, True])
def test_a_restricted_account_joins_nothing_by_link(minors: bool) -> None:
    expected = Refusal.RESTRICTED_FROM_MINORS if minors else Refusal.RESTRICTED_NEW_CONVERSATION
    assert _join(Standing.RESTRICTED, minors=minors) is expected
    assert _join(Standing.SUSPENDED, minors=minors) is Refusal.SUSPENDED


def test_only_an_active_admin_issues_invite_links() -> None:
    assert decide_invite_link(Standing.ACTIVE) is None
    assert decide_invite_link(Standing.RESTRICTED) is Refusal.RESTRICTED_NEW_CONVERSATION
    assert decide_invite_link(Standing.SUSPENDED) is Refusal.SUSPENDED


@pytest.mark.parametrize("standing", list(Standing))
@pytest.mark.parametrize("newcomer_is_minor", [False, True])
@pytest.mark.parametrize("group_has_minors", [False, True])
@pytest.mark.parametrize("group_has_restricted", [False, True])
def test_a_newcomer_never_brings_a_restricted_account_and_a_minor_together(
    standing: Standing, newcomer_is_minor: bool, group_has_minors: bool, group_has_restricted: bool
) -> None:
    meets = restricted_meets_minor(
        newcomer_is_minor=newcomer_is_minor,
        newcomer_standing=standing,
        group_has_minors=group_has_minors,
        group_has_restricted=group_has_restricted,
    )
    restricted_newcomer = standing is not Standing.ACTIVE
    assert meets == (
        (restricted_newcomer and group_has_minors) or (newcomer_is_minor and group_has_restricted)
    )


def test_the_restricted_minor_rule_refuses_an_add_and_a_join_alike() -> None:
    add = decide_group_add(
        Standing.ACTIVE,
        adder_is_minor=False,
        member_is_minor=False,
        connected=True,
        blocked=False,
        restricted_with_minor=True,
    )
    join = decide_group_join(
        Standing.ACTIVE,
        group_has_minors=False,
        blocked_by_member=False,
        unconnected_minor_adult=False,
        restricted_with_minor=True,
    )
    assert add is join is Refusal.RESTRICTED_FROM_MINORS
    assert public_refusal(add) == NEUTRAL_REFUSAL


def test_a_group_send_follows_the_sender_standing_and_the_group_minors() -> None:
    for minors in (False, True):
        assert decide_group_send(Standing.ACTIVE, group_has_minors=minors) is None
        assert decide_group_send(Standing.SUSPENDED, group_has_minors=minors) is Refusal.SUSPENDED
    # Membership is the existing conversation: a restricted member keeps posting among adults only.
    assert decide_group_send(Standing.RESTRICTED, group_has_minors=False) is None
    assert decide_group_send(Standing.RESTRICTED, group_has_minors=True) is Refusal.RESTRICTED_FROM_MINORS
