"""Scenario files: the YAML that sets a simulated population and its behaviour (format: docs/scenarios.md).

Every field has a default, so a scenario names only what it changes. Unknown fields are errors (a typo must
not silently fall back to a default), and every error names the field it is about.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Self

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.errors import StorageError, ValidationError

__all__ = [
    "AdultBehaviour",
    "CoachBehaviour",
    "DetectionSettings",
    "FamilyBehaviour",
    "GroomerBehaviour",
    "GroupSettings",
    "InsiderBehaviour",
    "MentorBehaviour",
    "MinorBehaviour",
    "Population",
    "RingBehaviour",
    "Scenario",
    "SextortionBehaviour",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
]

Probability = float  # validated by Field(default=ge=0, le=1) at each use


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _range_ok(lo: float, hi: float, name: str) -> None:
    if lo > hi:
        raise ValueError(f"{name}: low end {lo} is above high end {hi}")


class Population(_Section):
    minors: int = Field(default=4000, ge=0)
    adults: int = Field(default=5000, ge=0, description="benign adults, parents included")
    coaches: int = Field(default=80, ge=0)
    groomers: int = Field(default=40, ge=0)
    sextortion: int = Field(default=40, ge=0)
    ring_members: int = Field(default=30, ge=0)
    mentor_share: float = Field(
        default=0.012,
        ge=0,
        le=1,
        description="mentors per benign adult: tutors, youth workers, new-club coaches (benign, extra)",
    )
    insider_share: float = Field(
        default=0.002,
        ge=0,
        le=1,
        description="insiders per benign adult: relatives or coaches who abuse an existing tie (harmful)",
    )
    school_size: int = Field(default=400, ge=10)
    class_size: int = Field(default=25, ge=2)
    share_16_17: Probability = Field(default=0.45, ge=0, le=1)
    prevalence: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="harmful share of adults: if set, groomers and sextortion are derived from it",
    )


class MinorBehaviour(_Section):
    messages_per_day: float = Field(default=10.0, ge=0)
    class_friends: int = Field(default=8, ge=0)
    school_friends: int = Field(default=4, ge=0)
    night_share: Probability = Field(default=0.12, ge=0, le=1)
    media_share: Probability = Field(default=0.15, ge=0, le=1)
    requests_per_week: float = Field(default=0.5, ge=0, description="to minors at other schools")
    accept_known_prob: Probability = Field(default=0.8, ge=0, le=1)
    class_group_messages_per_day: float = Field(default=6.0, ge=0)


class AdultBehaviour(_Section):
    messages_per_day: float = Field(default=6.0, ge=0)
    friends: int = Field(default=12, ge=0)
    night_share: Probability = Field(default=0.05, ge=0, le=1)
    media_share: Probability = Field(default=0.1, ge=0, le=1)
    stranger_requests_per_week: float = Field(default=0.3, ge=0)
    stranger_accept_prob: Probability = Field(default=0.5, ge=0, le=1)
    stranger_decline_prob: Probability = Field(default=0.2, ge=0, le=1)
    relatives_share: Probability = Field(default=0.15, ge=0, le=1, description="adults with minor relatives")
    block_prob_per_week: Probability = Field(default=0.01, ge=0, le=1)
    new_account_share: Probability = Field(
        default=0.03, ge=0, le=1, description="benign adults who join during the run"
    )
    new_minor_contacts_per_week: float = Field(
        default=0.02, ge=0, description="per adult: requests to a friend's child (a neighbour, a godparent)"
    )
    night_owl_share: Probability = Field(default=0.08, ge=0, le=1)
    night_owl_night_share: Probability = Field(default=0.35, ge=0, le=1)
    heavy_media_share: Probability = Field(default=0.08, ge=0, le=1)
    heavy_media_media_share: Probability = Field(default=0.35, ge=0, le=1)


class FamilyBehaviour(_Section):
    share_of_minors_with_parents: Probability = Field(default=0.8, ge=0, le=1)
    two_parent_share: Probability = Field(default=0.6, ge=0, le=1)
    messages_to_child_per_day: float = Field(default=2.0, ge=0)
    parents_know_each_other_prob: Probability = Field(default=0.15, ge=0, le=1)
    children_per_family: tuple[int, int] = (1, 4)
    relatives_per_child: tuple[int, int] = (1, 3)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.children_per_family, "children_per_family")
        _range_ok(*self.relatives_per_child, "relatives_per_child")
        return self


class CoachBehaviour(_Section):
    team_size: tuple[int, int] = (12, 25)
    cross_school_share: Probability = Field(
        default=0.2, ge=0, le=1, description="tutors: pupils from other schools"
    )
    new_members_per_week: float = Field(default=1.0, ge=0)
    parent_first_prob: Probability = Field(default=0.6, ge=0, le=1)
    accept_prob: Probability = Field(default=0.85, ge=0, le=1)
    messages_per_member_per_day: float = Field(default=0.3, ge=0)
    group_messages_per_day: float = Field(default=3.0, ge=0)
    night_share: Probability = Field(default=0.04, ge=0, le=1)
    media_share: Probability = Field(default=0.12, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.team_size, "team_size")
        return self


class MentorBehaviour(_Section):
    """Benign adults whose work or hobby is to meet minors they share no contact with: a private tutor,
    a youth worker, a coach at a new club, an older peer in an online study or gaming group."""

    new_minors_per_week: float = Field(default=1.5, ge=0, description="new pupils or members a week")
    parent_first_prob: Probability = Field(
        default=0.3, ge=0, le=1, description="connects with a parent first (then they share a contact)"
    )
    via_group_share: Probability = Field(
        default=0.3, ge=0, le=1, description="joins an interest group by link and meets the minor there"
    )
    accept_prob: Probability = Field(default=0.8, ge=0, le=1)
    messages_per_pupil_per_day: float = Field(default=1.5, ge=0)
    pupil_reply_ratio: float = Field(default=0.8, ge=0)
    night_share: Probability = Field(default=0.06, ge=0, le=1)
    media_share: Probability = Field(default=0.2, ge=0, le=1, description="worksheets, photos of notes")
    pupils_at_start: tuple[int, int] = Field(
        default=(2, 10), description="pupils from before the run (history ties)"
    )
    parent_in_loop_share: Probability = Field(
        default=0.5,
        ge=0,
        le=1,
        description="mentors who follow safeguarding practice: always connect with a parent before the child",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.pupils_at_start, "pupils_at_start")
        return self


class InsiderBehaviour(_Section):
    """Harmful adults who abuse a tie they already have (a relative, a coach, a family friend): no new
    contact, no request, nothing a stranger-contact feature can see."""

    coach_share: Probability = Field(default=0.3, ge=0, le=1, description="insiders who are coaches")
    victims: tuple[int, int] = (1, 2)
    messages_per_victim_per_day: float = Field(default=3.0, ge=0)
    victim_reply_ratio: float = Field(default=0.7, ge=0)
    night_share: Probability = Field(default=0.2, ge=0, le=1)
    media_share: Probability = Field(default=0.15, ge=0, le=1)
    escalation_days: tuple[int, int] = (2, 10)
    victim_media_prob_per_day: Probability = Field(default=0.04, ge=0, le=1)
    block_prob_per_day: Probability = Field(default=0.01, ge=0, le=1)
    report_prob: Probability = Field(
        default=0.2, ge=0, le=1, description="a block comes with a report (less often: a known adult)"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.victims, "victims")
        _range_ok(*self.escalation_days, "escalation_days")
        return self


class GroomerBehaviour(_Section):
    new_targets_per_week: float = Field(default=4.0, ge=0)
    snowball_share: Probability = Field(
        default=0.3, ge=0, le=1, description="targets chosen among victims' friends"
    )
    accept_prob: Probability = Field(default=0.35, ge=0, le=1)
    decline_prob: Probability = Field(default=0.25, ge=0, le=1)
    messages_per_victim_per_day: float = Field(default=5.0, ge=0)
    victim_reply_ratio: float = Field(default=0.8, ge=0)
    night_share: Probability = Field(default=0.35, ge=0, le=1)
    media_share: Probability = Field(default=0.2, ge=0, le=1)
    victim_media_prob_per_day: Probability = Field(default=0.04, ge=0, le=1)
    block_prob_per_day: Probability = Field(default=0.02, ge=0, le=1)
    block_on_request_prob: Probability = Field(default=0.05, ge=0, le=1)
    report_prob: Probability = Field(
        default=0.3, ge=0, le=1, description="chance a block comes with a report"
    )
    adult_friends: int = Field(default=8, ge=0)
    account_age_days: tuple[int, int] = (5, 700)
    group_share: Probability = Field(default=0.5, ge=0, le=1, description="also post in adult groups")
    group_first_share: Probability = Field(
        default=0.25, ge=0, le=1, description="join a group with minors and pick targets there"
    )
    group_first_accept_prob: Probability = Field(default=0.6, ge=0, le=1)
    patient_share: Probability = Field(
        default=0.25, ge=0, le=1, description="few targets, few daytime messages, slow escalation"
    )
    escalating_share: Probability = Field(
        default=0.2, ge=0, le=1, description="start slowly, then reach more minors every week"
    )
    escalation_days: tuple[int, int] = (1, 7)
    patient_escalation_days: tuple[int, int] = (5, 20)
    known_image_prob_per_day: Probability = Field(
        default=0.02, ge=0, le=1, description="after escalation: sends a victim a known abuse image"
    )
    replacement_prob: Probability = Field(
        default=0.4, ge=0, le=1, description="opens a new account after being restricted"
    )
    withdraw_prob: Probability = Field(
        default=0.35,
        ge=0,
        le=1,
        description="a victim who stops answering once the conversation turns sexual (without blocking)",
    )
    pursuit_days: tuple[int, int] = Field(
        default=(2, 6), description="days the groomer goes on writing to a victim who stopped answering"
    )
    social_proof_prob: Probability = Field(
        default=0.3, ge=0, le=1, description="befriends some of the target's friends before the target"
    )
    social_proof_peers: tuple[int, int] = Field(
        default=(1, 3), description="how many of the target's friends it requests first"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.account_age_days, "account_age_days")
        _range_ok(*self.escalation_days, "escalation_days")
        _range_ok(*self.patient_escalation_days, "patient_escalation_days")
        _range_ok(*self.pursuit_days, "pursuit_days")
        _range_ok(*self.social_proof_peers, "social_proof_peers")
        if self.group_first_share + self.patient_share > 1:
            raise ValueError("group_first_share + patient_share must be <= 1")
        if self.accept_prob + self.decline_prob > 1:
            raise ValueError("accept_prob + decline_prob must be <= 1")
        return self


class SextortionBehaviour(_Section):
    targets_per_day: float = Field(default=15.0, ge=0)
    active_days: tuple[int, int] = (2, 6)
    accept_prob: Probability = Field(default=0.2, ge=0, le=1)
    decline_prob: Probability = Field(default=0.3, ge=0, le=1)
    messages_per_victim: float = Field(default=12.0, ge=0)
    media_share: Probability = Field(default=0.35, ge=0, le=1)
    victim_media_prob: Probability = Field(default=0.3, ge=0, le=1)
    block_prob: Probability = Field(default=0.35, ge=0, le=1, description="per accepted victim")
    block_on_request_prob: Probability = Field(default=0.08, ge=0, le=1)
    report_prob: Probability = Field(
        default=0.35, ge=0, le=1, description="chance a block comes with a report"
    )
    account_age_days: tuple[int, int] = (0, 3)
    aged_account_share: Probability = Field(
        default=0.3, ge=0, le=1, description="bought or taken-over accounts with an ordinary social life"
    )
    aged_account_age_days: tuple[int, int] = (60, 900)
    threat_delay_hours: tuple[int, int] = (1, 24)
    replacement_prob: Probability = Field(default=0.5, ge=0, le=1)
    social_proof_prob: Probability = Field(
        default=0.3, ge=0, le=1, description="befriends some of the target's friends before the target"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.active_days, "active_days")
        _range_ok(*self.account_age_days, "account_age_days")
        _range_ok(*self.aged_account_age_days, "aged_account_age_days")
        _range_ok(*self.threat_delay_hours, "threat_delay_hours")
        if self.accept_prob + self.decline_prob > 1:
            raise ValueError("accept_prob + decline_prob must be <= 1")
        return self


class RingBehaviour(_Section):
    ring_size: tuple[int, int] = (4, 10)
    images_per_member_per_day: float = Field(default=1.5, ge=0)
    modified_client_share: Probability = Field(default=0.3, ge=0, le=1)
    known_image_share: Probability = Field(
        default=0.7, ge=0, le=1, description="ring images already on a hash list"
    )
    reach_minors_share: Probability = Field(
        default=0.2, ge=0, le=1, description="members who also approach minors (as groomers do)"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.ring_size, "ring_size")
        if self.ring_size[0] < 2:
            raise ValueError("ring_size: a ring needs at least 2 members")
        return self


class GroupSettings(_Section):
    """Groups joined by link: interest groups with adults and minors, and adults-only hobby groups."""

    interest_groups: int = Field(default=60, ge=0)
    interest_group_size: tuple[int, int] = (15, 60)
    interest_minor_share: Probability = Field(default=0.5, ge=0, le=1)
    interest_messages_per_day: float = Field(default=8.0, ge=0)
    adult_groups_per_100_adults: float = Field(default=3.0, ge=0)
    adult_group_size: tuple[int, int] = (5, 25)
    adult_group_messages_per_day: float = Field(default=4.0, ge=0)
    joins_per_week: float = Field(
        default=0.02, ge=0, description="per adult: joins an interest group during the run"
    )
    member_minor_requests_per_week: float = Field(
        default=0.1,
        ge=0,
        description="per adult member of an interest group: a request to a minor in it (a club leader)",
    )
    member_minor_accept_prob: Probability = Field(default=0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _range_ok(*self.interest_group_size, "interest_group_size")
        _range_ok(*self.adult_group_size, "adult_group_size")
        if self.interest_group_size[0] < 2 or self.adult_group_size[0] < 2:
            raise ValueError("a group needs at least 2 members")
        return self


class DetectionSettings(_Section):
    """Assumptions of the retention comparison (docs/evaluation.md): what each channel would catch."""

    hash_recall: Probability = Field(
        default=0.95, ge=0, le=1, description="known images a hash-list match catches (server or device)"
    )
    image_classifier_recall: Probability = Field(default=0.6, ge=0, le=1)
    image_classifier_delay_hours: float = Field(default=2.0, ge=0)
    text_classifier_recall: Probability = Field(default=0.4, ge=0, le=1)
    text_classifier_delay_hours: float = Field(default=6.0, ge=0)
    report_context_days: float = Field(
        default=7.0, ge=0, description="a report carries the conversation this far back"
    )
    offender_modified_client_share: Probability = Field(
        default=0.1, ge=0, le=1, description="groomers and sextortion accounts on clients that skip matching"
    )
    receiver_side_matching: bool = Field(
        default=False, description="count a match on an unmodified recipient's device too"
    )
    minor_report_review_hours: float = Field(
        default=24.0, ge=0, description="a minor's grooming or sextortion report is reviewed within this"
    )
    review_accuracy: Probability = Field(
        default=0.9, ge=0, le=1, description="a reviewer restricts a harmful reported account"
    )


class Scoring(_Section):
    interval_hours: int = Field(default=6, ge=1, le=24 * 7)
    window_days: int = Field(default=28, ge=1)


class Scenario(_Section):
    name: str = "unnamed"
    seed: int = 0
    days: int = Field(default=14, ge=1, le=365)
    start_ms: int = Field(default=1_740_960_000_000, ge=0, description="UTC ms of day 0 (a Monday)")
    history_days: int = Field(
        default=90, ge=1, description="pre-existing ties are dated within this many days"
    )
    population: Population = Field(default_factory=Population)
    minors: MinorBehaviour = Field(default_factory=MinorBehaviour)
    adults: AdultBehaviour = Field(default_factory=AdultBehaviour)
    families: FamilyBehaviour = Field(default_factory=FamilyBehaviour)
    coaches: CoachBehaviour = Field(default_factory=CoachBehaviour)
    mentors: MentorBehaviour = Field(default_factory=MentorBehaviour)
    insiders: InsiderBehaviour = Field(default_factory=InsiderBehaviour)
    groomers: GroomerBehaviour = Field(default_factory=GroomerBehaviour)
    sextortion: SextortionBehaviour = Field(default_factory=SextortionBehaviour)
    rings: RingBehaviour = Field(default_factory=RingBehaviour)
    groups: GroupSettings = Field(default_factory=GroupSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    scoring: Scoring = Field(default_factory=Scoring)
    write_events: bool = True

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with top-level sections replaced or patched (`population={"minors": 100}`).

        Raises ValidationError naming the field if the result is invalid.
        """
        data = self.model_dump()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return parse_scenario(data)


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(scenario)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_scenario(data: Any) -> Scenario:
    """Validate a parsed YAML document. Raises ValidationError whose message names each bad field."""
    if not isinstance(data, dict):
        raise ValidationError("scenario must be a mapping of fields (see docs/scenarios.md)")
    try:
        return Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid scenario: {_describe(exc)}") from exc


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file. Raises StorageError if unreadable, ValidationError if invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot read scenario {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"scenario {path} is not valid YAML: {exc}") from exc
    return parse_scenario(data)


def default_scenario() -> Scenario:
    """The bundled `vigil/sim/scenarios/default.yaml`."""
    text = resources.files("vigil.sim").joinpath("scenarios", "default.yaml").read_text(encoding="utf-8")
    return parse_scenario(yaml.safe_load(text))


def tiny_scenario() -> Scenario:
    """The bundled `vigil/sim/scenarios/tiny.yaml` (~60 accounts, 3 days): server mode's default."""
    text = resources.files("vigil.sim").joinpath("scenarios", "tiny.yaml").read_text(encoding="utf-8")
    return parse_scenario(yaml.safe_load(text))
