"""The static side of a simulated population: who exists, their roles (ground truth) and pre-existing ties.

Minors sit in schools and classes (a class shares an age band); friendships are mostly within the class,
some across the school. Families link parents to their children; parents of classmates sometimes know each
other; some adults are relatives with a minor or two. Coaches have teams recruited through the team's own
friendships (kids join with friends), plus some pupils from other schools (tutors). Harmful accounts are
ordinary-looking adults (groomers keep an adult social life, some post in groups, some find their targets
in interest groups that include minors) or fresh accounts (most sextortion; some use aged accounts with a
social life). Some benign adults are new accounts that join during the run (their ties form in the run).
Harmful accounts may have a dormant replacement account, used only if the original is restricted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from vigil.safety.behavior.events import AgeBand, GroupId, UserId
from vigil.safety.behavior.features import DAY_MS
from vigil.sim.scenario import Scenario

__all__ = ["GroomerStyle", "Population", "Role", "Team", "build_population", "harmful_counts"]


class Role(enum.StrEnum):
    MINOR = "minor"
    ADULT = "adult"
    PARENT = "parent"
    RELATIVE = "relative"  # adult with minor relatives outside the household
    COACH = "coach"
    GROOMER = "groomer"
    SEXTORTION = "sextortion"
    RING_MEMBER = "ring_member"
    MENTOR = "mentor"  # tutor, youth worker, coach at a new club: new contact with unknown minors, benign
    INSIDER = "insider"  # a relative or coach who abuses an existing tie

    @property
    def harmful_to_minors(self) -> bool:
        """Ground-truth label: ring members share abuse images, so they count as harmful too (before,
        rings were scored as benign)."""
        match self:
            case Role.GROOMER | Role.SEXTORTION | Role.RING_MEMBER | Role.INSIDER:
                return True
            case Role.MINOR | Role.ADULT | Role.PARENT | Role.RELATIVE | Role.COACH | Role.MENTOR:
                return False


class GroomerStyle(enum.StrEnum):
    COLD = "cold"  # approaches strangers directly, several a week
    PATIENT = "patient"  # few targets, few daytime messages, slow escalation
    GROUP_FIRST = "group_first"  # joins an interest group with minors and picks targets there
    ESCALATING = "escalating"  # starts slowly, reaches more minors every week


@dataclass
class Team:
    coach: int
    school: int
    group: GroupId
    members: list[int]  # connected team members
    member_set: set[int] = field(default_factory=set)


@dataclass
class Population:
    ids: list[UserId]
    roles: list[Role]
    bands: list[AgeBand]
    created_ms: np.ndarray  # int64
    school_of: np.ndarray  # minors only; -1 for adults
    class_of: np.ndarray
    n_schools: int
    edges: list[tuple[int, int]]  # pre-existing ties (requester, recipient), all accepted
    parent_child: list[tuple[int, int]]
    parents_of: dict[int, list[int]]
    teams: list[Team]
    class_groups: list[tuple[int, list[int]]]  # (creator, members)
    family_groups: list[tuple[int, list[int]]]
    rings: list[list[int]]
    modified_client: set[int]
    interest_groups: list[list[int]] = field(default_factory=list)  # by link: adults and minors
    adult_groups: list[list[int]] = field(default_factory=list)  # by link: adults only
    new_accounts: set[int] = field(default_factory=set)  # benign adults created during the run
    groomer_style: dict[int, GroomerStyle] = field(default_factory=dict)  # groomers and ring reachers
    group_first_group: dict[int, int] = field(default_factory=dict)  # groomer -> interest group index
    replaces: dict[int, int] = field(default_factory=dict)  # dormant replacement -> original account
    aged_sextortion: set[int] = field(default_factory=set)
    children_of: dict[int, list[int]] = field(default_factory=dict)
    mentor_pupils: dict[int, list[int]] = field(default_factory=dict)  # mentor -> pupils (history ties)
    insider_minors: dict[int, list[int]] = field(default_factory=dict)  # insider -> minors it is tied to

    def index_range(self, role: Role) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r is role]


def _pairs_within(rng: np.random.Generator, members: np.ndarray, per_member: int) -> list[tuple[int, int]]:
    if len(members) < 2 or per_member <= 0:
        return []
    src = np.repeat(members, per_member)
    dst = rng.choice(members, size=len(src))
    return [(int(a), int(b)) for a, b in zip(src, dst, strict=True) if a != b]


def harmful_counts(sc: Scenario) -> tuple[int, int]:
    """(groomers, sextortion accounts): the scenario's counts, or derived from `population.prevalence`
    (harmful share of adults), split in the configured proportion."""
    p = sc.population
    if p.prevalence is None:
        return p.groomers, p.sextortion
    total = round(p.prevalence * (p.adults + p.coaches) / (1 - p.prevalence))
    share = p.groomers / (p.groomers + p.sextortion) if p.groomers + p.sextortion else 0.5
    n_gr = round(total * share)
    return n_gr, total - n_gr


def build_population(sc: Scenario, rng: np.random.Generator) -> Population:
    """Roles, facts and pre-existing ties for `sc`. Pure given `rng`."""
    p = sc.population
    n_min, n_ad, n_co = p.minors, p.adults, p.coaches
    n_gr, n_sx = harmful_counts(sc)
    n_ring = p.ring_members
    # Dormant replacement accounts, drawn up front so the population's size is fixed.
    spare_gr = int(rng.binomial(n_gr, sc.groomers.replacement_prob)) if n_gr else 0
    spare_sx = int(rng.binomial(n_sx, sc.sextortion.replacement_prob)) if n_sx else 0
    roles: list[Role] = (
        [Role.MINOR] * n_min
        + [Role.ADULT] * n_ad
        + [Role.COACH] * n_co
        + [Role.GROOMER] * n_gr
        + [Role.SEXTORTION] * n_sx
        + [Role.RING_MEMBER] * n_ring
        + [Role.GROOMER] * spare_gr
        + [Role.SEXTORTION] * spare_sx
    )
    n = len(roles)
    # Shuffled ids so an id says nothing about its role.
    perm = rng.permutation(n)
    ids = [UserId(f"u{int(k):07d}") for k in perm]
    start = sc.start_ms
    created = start - rng.integers(sc.history_days + 30, 3 * 365, size=n, endpoint=True) * DAY_MS

    # Schools and classes: a class shares a grade, hence an age band.
    idx_min = np.arange(n_min)
    school_of = np.full(n, -1, dtype=np.int64)
    class_of = np.full(n, -1, dtype=np.int64)
    school_of[:n_min] = idx_min // p.school_size
    class_of[:n_min] = idx_min // p.class_size
    n_classes = int(class_of[:n_min].max()) + 1 if n_min else 0
    class_band = np.where(rng.random(n_classes) < p.share_16_17, 1, 0)
    bands = [AgeBand.ADULT] * n
    for i in range(n_min):
        bands[i] = AgeBand.TEEN_16_17 if class_band[class_of[i]] else AgeBand.TEEN_13_15
    n_schools = int(school_of[:n_min].max()) + 1 if n_min else 0

    edges: list[tuple[int, int]] = []
    class_groups: list[tuple[int, list[int]]] = []
    for c in range(n_classes):
        members = idx_min[class_of[:n_min] == c]
        edges += _pairs_within(rng, members, max(1, sc.minors.class_friends // 2))
        if len(members) >= 3:
            class_groups.append((int(rng.choice(members)), [int(m) for m in members]))
    for s in range(n_schools):
        members = idx_min[school_of[:n_min] == s]
        edges += _pairs_within(rng, members, sc.minors.school_friends // 2)
    minor_friends: dict[int, list[int]] = {}
    for a, b in edges:  # only minor-minor ties so far
        minor_friends.setdefault(a, []).append(b)
        minor_friends.setdefault(b, []).append(a)

    # Benign adults in communities of ~50; parents are drawn from them.
    first_adult = n_min
    adults = np.arange(first_adult, first_adult + n_ad)
    for block in np.array_split(adults, max(1, n_ad // 50)):
        edges += _pairs_within(rng, block, max(1, sc.adults.friends // 2))

    fam = sc.families
    parent_child: list[tuple[int, int]] = []
    parents_of: dict[int, list[int]] = {}
    family_groups: list[tuple[int, list[int]]] = []
    with_parents = idx_min[rng.random(n_min) < fam.share_of_minors_with_parents]
    rng.shuffle(with_parents)
    adult_pool = list(rng.permutation(adults))
    k = 0
    while k < len(with_parents) and adult_pool:
        lo_kids, hi_kids = fam.children_per_family
        kids = [int(x) for x in with_parents[k : k + int(rng.integers(lo_kids, hi_kids, endpoint=True))]]
        k += len(kids)
        n_par = 2 if rng.random() < fam.two_parent_share and len(adult_pool) >= 2 else 1
        pars = [int(adult_pool.pop()) for _ in range(n_par)]
        for par in pars:
            roles[par] = Role.PARENT
            for kid in kids:
                parent_child.append((par, kid))
                parents_of.setdefault(kid, []).append(par)
        if n_par == 2:
            edges.append((pars[0], pars[1]))
        if rng.random() < 0.5:
            family_groups.append((pars[0], pars + kids))
    edges += parent_child
    # Parents of classmates sometimes know each other.
    for c in range(n_classes):
        class_parents = [
            par for kid in idx_min[class_of[:n_min] == c] for par in parents_of.get(int(kid), [])
        ]
        for a in class_parents:
            if rng.random() < fam.parents_know_each_other_prob and len(class_parents) > 1:
                b = class_parents[int(rng.integers(len(class_parents)))]
                if a != b:
                    edges.append((a, b))
    # Relatives: adults (not parents) tied to a minor who has parents, and to those parents.
    kids_with_parents = list(parents_of)
    for a in adult_pool:
        if kids_with_parents and rng.random() < sc.adults.relatives_share:
            roles[int(a)] = Role.RELATIVE
            lo_rel, hi_rel = fam.relatives_per_child
            for _ in range(int(rng.integers(lo_rel, hi_rel, endpoint=True))):
                kid = kids_with_parents[int(rng.integers(len(kids_with_parents)))]
                edges.append((int(a), kid))
                edges += [(int(a), par) for par in parents_of[kid]]

    # Everyone else adult-shaped gets some adult friends.
    def adult_friends(who: int, count: int) -> None:
        if n_ad:
            edges.extend((who, int(f)) for f in rng.choice(adults, size=count))

    teams: list[Team] = []
    co = sc.coaches
    off = n_min + n_ad
    for j in range(n_co):
        coach = off + j
        adult_friends(coach, sc.adults.friends)
        if not n_min:
            continue
        school = int(rng.integers(n_schools))
        team = Team(coach, school, GroupId(f"g-team-{j}"), [])
        size = int(rng.integers(co.team_size[0], co.team_size[1], endpoint=True))
        pool = idx_min[school_of[:n_min] == school]
        seed = int(rng.choice(pool))
        frontier = [seed]
        while len(team.members) < size:
            if rng.random() < co.cross_school_share:
                kid = int(rng.integers(n_min))
            elif frontier and rng.random() < 0.7:
                kid = frontier.pop(int(rng.integers(len(frontier))))
            else:
                kid = int(rng.choice(pool))
            if kid in team.member_set:
                continue
            team.members.append(kid)
            team.member_set.add(kid)
            frontier += [f for f in minor_friends.get(kid, []) if school_of[f] == school]
            edges.append((coach, kid))
            for par in parents_of.get(kid, []):
                if rng.random() < co.parent_first_prob:
                    edges.append((par, coach))
        teams.append(team)

    off += n_co
    for j in range(n_gr):
        who = off + j
        adult_friends(who, sc.groomers.adult_friends)
        lo, hi = sc.groomers.account_age_days
        created[who] = start - int(rng.integers(lo, hi, endpoint=True)) * DAY_MS
    groomer_style: dict[int, GroomerStyle] = {}
    gb = sc.groomers
    for j in range(n_gr):
        u = rng.random()
        if u < gb.group_first_share:
            style = GroomerStyle.GROUP_FIRST
        elif u < gb.group_first_share + gb.patient_share:
            style = GroomerStyle.PATIENT
        elif rng.random() < gb.escalating_share:
            style = GroomerStyle.ESCALATING
        else:
            style = GroomerStyle.COLD
        groomer_style[off + j] = style
    off += n_gr
    # Sextortion accounts are created (and start) at random times; the generator picks their start day.
    # Some use aged accounts (bought or taken over) that come with an ordinary adult social life.
    aged_sextortion: set[int] = set()
    for j in range(n_sx):
        if rng.random() < sc.sextortion.aged_account_share:
            aged_sextortion.add(off + j)
            adult_friends(off + j, sc.adults.friends)
    off += n_sx
    rings: list[list[int]] = []
    members = list(range(off, off + n_ring))
    modified: set[int] = set()
    while len(members) >= 2:
        size = min(
            len(members), int(rng.integers(sc.rings.ring_size[0], sc.rings.ring_size[1], endpoint=True))
        )
        ring, members = members[:size], members[size:]
        if len(ring) < 2:
            break
        rings.append(ring)
        for who in ring:
            adult_friends(who, sc.adults.friends)
            if rng.random() < sc.rings.modified_client_share:
                modified.add(who)
        edges += [(ring[0], b) for b in ring[1:]]
    for ring in rings:
        for who in ring:
            if rng.random() < sc.rings.reach_minors_share:
                groomer_style[who] = GroomerStyle.COLD
    off += n_ring

    # Dormant replacements: created at a random time in the run, used only if the original is restricted.
    replaces: dict[int, int] = {}
    originals_gr = rng.permutation(np.arange(n_min + n_ad + n_co, n_min + n_ad + n_co + n_gr))[:spare_gr]
    originals_sx = rng.permutation(np.arange(n_min + n_ad + n_co + n_gr, n_min + n_ad + n_co + n_gr + n_sx))[
        :spare_sx
    ]
    for spare, original in zip(
        range(off, off + spare_gr + spare_sx), [*originals_gr.tolist(), *originals_sx.tolist()], strict=True
    ):
        replaces[spare] = int(original)
        created[spare] = start + int(rng.integers(DAY_MS // 2, max(DAY_MS, sc.days * DAY_MS - DAY_MS)))
        if int(original) in groomer_style:
            groomer_style[spare] = GroomerStyle.COLD

    for who in [*range(n_min + n_ad + n_co, n_min + n_ad + n_co + n_gr + n_sx), *replaces]:
        if rng.random() < sc.detection.offender_modified_client_share:
            modified.add(who)

    # Mentors (tutors, youth workers, new-club coaches) come last so every other index stays put: an
    # ordinary adult life and a few pupils from before the run.
    mentor_pupils: dict[int, list[int]] = {}
    for _ in range(round(sc.population.mentor_share * n_ad)):
        who = len(roles)
        roles.append(Role.MENTOR)
        bands.append(AgeBand.ADULT)
        created = np.append(created, start - int(rng.integers(sc.history_days + 30, 3 * 365)) * DAY_MS)
        school_of = np.append(school_of, -1)
        class_of = np.append(class_of, -1)
        adult_friends(who, sc.adults.friends)
        lo_p, hi_p = sc.mentors.pupils_at_start
        pupils = (
            [int(k) for k in rng.choice(n_min, size=int(rng.integers(lo_p, hi_p, endpoint=True)))]
            if n_min
            else []
        )
        mentor_pupils[who] = sorted(set(pupils))
        edges += [(who, kid) for kid in mentor_pupils[who]]

    # Insiders: relatives or coaches who abuse a tie they already have (ground truth changes, ties stay).
    insider_minors: dict[int, list[int]] = {}
    minor_ties: dict[int, list[int]] = {}
    for a, b in edges:
        if roles[a] is Role.RELATIVE and b < n_min:
            minor_ties.setdefault(a, []).append(b)
    coach_ties = {team.coach: list(team.members) for team in teams if team.members}
    relatives_pool = [int(x) for x in rng.permutation(sorted(minor_ties))]
    coaches_pool = [int(x) for x in rng.permutation(sorted(coach_ties))]
    for _ in range(round(sc.population.insider_share * n_ad)):
        wants_coach = bool(rng.random() < sc.insiders.coach_share)
        pool = coaches_pool if (wants_coach and coaches_pool) or not relatives_pool else relatives_pool
        if not pool:
            break
        who = pool.pop()
        insider_minors[who] = sorted(set((coach_ties if pool is coaches_pool else minor_ties)[who]))
        roles[who] = Role.INSIDER

    # Benign adults who join during the run: their ties (edges) form after they join.
    new_accounts: set[int] = set()
    for a in range(first_adult, first_adult + n_ad):
        if rng.random() < sc.adults.new_account_share:
            new_accounts.add(a)
            created[a] = start + int(rng.integers(0, max(1, sc.days * DAY_MS - DAY_MS)))

    # Groups joined by link. Interest groups mix adults (parents, coaches, others) and minors; hobby groups
    # are adults only. Groomers and aged sextortion accounts join hobby groups like anyone else.
    gs = sc.groups
    interest_groups: list[list[int]] = []
    adult_like = np.concatenate((adults, np.arange(n_min + n_ad, n_min + n_ad + n_co)))
    for _ in range(gs.interest_groups if n_min and len(adult_like) else 0):
        size = int(rng.integers(gs.interest_group_size[0], gs.interest_group_size[1], endpoint=True))
        n_kids = max(1, round(size * gs.interest_minor_share))
        young = rng.choice(n_min, size=min(n_kids, n_min), replace=False)
        grown = rng.choice(adult_like, size=min(max(1, size - n_kids), len(adult_like)), replace=False)
        interest_groups.append([int(x) for x in (*grown, *young)])
    group_first_group: dict[int, int] = {}
    if interest_groups:
        for who, style in groomer_style.items():
            if style is GroomerStyle.GROUP_FIRST:
                group_first_group[who] = int(rng.integers(len(interest_groups)))
    adult_groups: list[list[int]] = []
    social = [
        *adult_like.tolist(),
        *[g for g in range(n_min + n_ad + n_co, n_min + n_ad + n_co + n_gr) if rng.random() < gb.group_share],
        *sorted(aged_sextortion),
    ]
    n_hobby = round(gs.adult_groups_per_100_adults * n_ad / 100)
    for _ in range(n_hobby if len(social) >= 2 else 0):
        size = min(
            len(social), int(rng.integers(gs.adult_group_size[0], gs.adult_group_size[1], endpoint=True))
        )
        adult_groups.append([int(x) for x in rng.choice(social, size=size, replace=False)])
    # Every groomer who posts in groups is in at least one.
    in_hobby = {m for g in adult_groups for m in g}
    for who in social:
        if n_min + n_ad + n_co <= who and who not in in_hobby and adult_groups:
            adult_groups[int(rng.integers(len(adult_groups)))].append(int(who))

    if len(ids) != len(roles):
        # Mentors were appended: shuffle every id again so an id still says nothing about its role.
        ids = [UserId(f"u{int(k):07d}") for k in rng.permutation(len(roles))]

    # Dedupe undirected ties, keep the first requester.
    seen: set[tuple[int, int]] = set()
    uniq: list[tuple[int, int]] = []
    for a, b in edges:
        key = (a, b) if a < b else (b, a)
        if a != b and key not in seen:
            seen.add(key)
            uniq.append((a, b))
    return Population(
        ids=ids,
        roles=roles,
        bands=bands,
        created_ms=created,
        school_of=school_of,
        class_of=class_of,
        n_schools=n_schools,
        edges=uniq,
        parent_child=parent_child,
        parents_of=parents_of,
        teams=teams,
        class_groups=class_groups,
        family_groups=family_groups,
        rings=rings,
        modified_client=modified,
        interest_groups=interest_groups,
        adult_groups=adult_groups,
        new_accounts=new_accounts,
        groomer_style=groomer_style,
        group_first_group=group_first_group,
        replaces=replaces,
        aged_sextortion=aged_sextortion,
        mentor_pupils=mentor_pupils,
        insider_minors=insider_minors,
        children_of={
            par: [k for k, ps in parents_of.items() if par in ps] for par in {a for a, _ in parent_child}
        },
    )
