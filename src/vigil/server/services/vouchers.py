"""Safety vouchers: stored as ciphertext on submission (the server cannot open them); opened by the
safety team with its voucher secret key, checked, and turned into high-priority image-match cases.

Also the one unencrypted image surface so far, profile photos: matched here against the enabled banks
and refused (with a case) on a match.

`open_voucher_case` is the seam to the reports/console cases (issue 4): today it writes an
`ImageMatchCaseRow`; when a shared case-creation service exists it should call that instead.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pydantic
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, PolicyViolation, TamperError, ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.franking import FrankingContext, verify_commitment, verify_server_tag
from vigil.protocol.reports import ReportReason
from vigil.protocol.vouchers import (
    SealedVoucher,
    VoucherAccepted,
    VoucherContent,
    VoucherDirection,
    VoucherKeyPair,
    VoucherSubmission,
    open_voucher,
    seal_voucher,
)
from vigil.safety.hashing.pdq import LowQualityImageError, PdqHash, hash_image
from vigil.safety.reports import party_problem
from vigil.safety.routing import CaseSource, RoutingInput, route
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.contacts import BlockRepository, ContactRepository
from vigil.server.db.groups import GroupRepository
from vigil.server.db.hashlists import (
    HashListRepository,
    ImageMatchCaseRow,
    ProfilePhotoRow,
    VoucherRepository,
    VoucherRow,
)
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import append_audit
from vigil.server.services.cases import open_or_join_case
from vigil.server.services.evidence import blurred_unless_revealed, log_reveal
from vigil.server.services.hashlist import match_image
from vigil.server.services.reports import group_membership

__all__ = [
    "IMAGE_MATCH_PRIORITY",
    "ImageMatchCase",
    "OpenResult",
    "case_image",
    "case_match_image",
    "image_matches_for",
    "list_image_cases",
    "open_pending_vouchers",
    "open_voucher_case",
    "profile_photo",
    "reveal_match_image",
    "set_profile_photo",
    "submit_voucher",
]

IMAGE_MATCH_PRIORITY = 100
"""Above every report priority: a known abuse image is the most urgent thing in the queue."""


@dataclass(frozen=True, slots=True)
class ImageMatchCase:
    id: int
    source: str
    subject: str
    reporter: str | None
    priority: int
    state: str
    direction: str
    bank: str
    entry_hash: str
    pdq: str
    distance: int
    verified: bool
    verification: str
    message_id: str | None
    voucher_id: str | None


@dataclass(frozen=True, slots=True)
class OpenResult:
    opened: int
    cases: list[int]
    failed: list[str]
    """Voucher ids that did not open or did not check out (kept, marked opened, no case)."""


async def submit_voucher(
    ctx: ServerContext, by: AuthenticatedDevice, submission: VoucherSubmission
) -> VoucherAccepted:
    """Stores the sealed voucher; a retry with the same id is accepted once. Raises ValidationError on
    malformed parts, ConflictError if the id is another device's."""
    sealed = submission.sealed()
    async with ctx.sessions() as session, session.begin():
        repo = VoucherRepository(session)
        existing = await repo.get(submission.voucher_id)
        if existing is not None:
            if existing.device_id != by.device_id or existing.ciphertext != sealed.ciphertext:
                raise ConflictError("that voucher id is taken")
            return VoucherAccepted(voucher_id=submission.voucher_id)
        await repo.add(
            VoucherRow(
                id=submission.voucher_id,
                user_id=by.user_id,
                device_id=by.device_id,
                ciphertext=sealed.ciphertext,
                mac=sealed.mac,
                ephemeral_key=sealed.ephemeral_key,
                created_at_ms=ctx.clock_ms(),
            )
        )
    return VoucherAccepted(voucher_id=submission.voucher_id)


@dataclass(frozen=True, slots=True)
class _Checked:
    subject: str
    verified: bool
    verification: str
    tagged: FrankingContext | None = None  # what the verified server tag bound (received images only)


def _check(ctx: ServerContext, content: VoucherContent, submitter: str) -> _Checked:
    """What the voucher proves. Raises TamperError when the image is not the one claimed or matched."""
    image = b64decode(content.image, field="image")
    digest = hashlib.sha256(image).digest()
    if not hmac.compare_digest(digest, b64decode(content.image_sha256, field="image_sha256")):
        raise TamperError("the image is not the one the voucher describes")
    # Recompute the hash: the safety team acts on what the image is, not on what the client says.
    try:
        hashed = hash_image(image)
        distance = min(h.distance(PdqHash.from_hex(content.match.entry_hash)) for h in hashed.query_hashes())
    except LowQualityImageError as error:
        raise TamperError("the image is below matching quality") from error
    if distance > max(content.match.distance, 31):
        raise TamperError(f"the image is {distance} bits from the claimed entry")
    proof, payload = content.franking, content.franking.payload
    attachment = payload.attachment
    if attachment is None or not hmac.compare_digest(b64decode(attachment.sha256, field="sha256"), digest):
        return _Checked(payload.sender, False, "the franked message does not carry this image")
    commitment = b64decode(proof.commitment, field="commitment")
    kf = b64decode(payload.franking_key, field="franking_key")
    try:
        verify_commitment(kf, payload.franked_bytes(), commitment)
    except TamperError:
        return _Checked(payload.sender, False, "the franking commitment does not verify")
    if content.direction is VoucherDirection.OUTGOING:
        if payload.sender != submitter:
            return _Checked(submitter, False, "an outgoing voucher for someone else's message")
        return _Checked(submitter, True, "withheld before sending; sender is the submitting account")
    if proof.server_tag is None or proof.server_ts_ms is None or proof.conversation is None:
        return _Checked(payload.sender, False, "no server franking tag")
    context = FrankingContext(
        commitment, payload.sender, proof.conversation, proof.server_ts_ms, payload.message_id
    )
    try:
        verify_server_tag(ctx.franking_key, context, b64decode(proof.server_tag, field="server_tag"))
    except (TamperError, ValidationError):
        return _Checked(payload.sender, False, "the server franking tag does not verify")
    return _Checked(payload.sender, True, "franking commitment and server tag verified", context)


async def _checked_party(session: AsyncSession, checked: _Checked, submitter: str) -> _Checked:
    """A received image counts as verified only if the submitting account was a party to the message
    (`party_problem`: the recipient of a direct message, or a member of the group at its time, as the
    sender must have been), exactly as a reported message."""
    if not checked.verified or checked.tagged is None:
        return checked
    tagged = checked.tagged
    membership = await group_membership(session, tagged.conversation, [submitter, tagged.sender])
    problem = party_problem(submitter, tagged, membership)
    return checked if problem is None else _Checked(checked.subject, False, problem)


async def open_voucher_case(
    session: AsyncSession,
    *,
    source: str,
    subject_user_id: int,
    reporter_user_id: int | None,
    direction: str,
    bank: str,
    entry_hash: str,
    pdq: str,
    distance: int,
    verified: bool,
    verification: str,
    message_id: str | None,
    voucher_id: str | None,
    mime: str,
    sealed_image: SealedVoucher,
    now_ms: int,
) -> int:
    """Records the image match (the image stays sealed to the safety team's key) and opens or joins the
    reviewers' case about the subject at top priority, so it appears in the console queue; the record
    follows that case (deciding it closes the record, `cases.apply_action_in`); returns the record's id."""
    subject = await UserRepository(session).by_id(subject_user_id)
    if subject is None:
        raise NotFoundError("the matched account no longer exists")
    case = await open_or_join_case(
        session,
        subject,
        ReportReason.CSAM,
        IMAGE_MATCH_PRIORITY,
        verified,
        now_ms,
        queue=route(RoutingInput(CaseSource.IMAGE_MATCH, ReportReason.CSAM)),
    )
    row = await VoucherRepository(session).add_case(
        ImageMatchCaseRow(
            source=source,
            subject_user_id=subject_user_id,
            reporter_user_id=reporter_user_id,
            priority=IMAGE_MATCH_PRIORITY,
            state="open",
            direction=direction,
            bank=bank,
            entry_hash=entry_hash,
            pdq=pdq,
            distance=distance,
            verified=verified,
            verification=verification[:300],
            message_id=message_id,
            voucher_id=voucher_id,
            mime=mime[:100],
            image_ciphertext=sealed_image.ciphertext,
            image_mac=sealed_image.mac,
            image_ephemeral_key=sealed_image.ephemeral_key,
            created_at_ms=now_ms,
            case_id=case.id,
        )
    )
    return row.id


async def open_pending_vouchers(ctx: ServerContext, keys: VoucherKeyPair, limit: int = 100) -> OpenResult:
    """Opens unopened vouchers with the safety team's secret, checks each, and opens a case for each one
    that checks out. The case keeps the voucher ciphertext (the image stays encrypted at rest)."""
    cases: list[int] = []
    failed: list[str] = []
    async with ctx.sessions() as session, session.begin():
        repo = VoucherRepository(session)
        users = UserRepository(session)
        pending = list(await repo.unopened(limit))
        for voucher in pending:
            voucher.opened_at_ms = ctx.clock_ms()
            sealed = SealedVoucher(voucher.ciphertext, voucher.mac, voucher.ephemeral_key)
            submitter = await users.by_id(voucher.user_id)
            try:
                content = VoucherContent.model_validate_json(open_voucher(keys.secret, sealed))
                assert submitter is not None
                checked = await _checked_party(
                    session, _check(ctx, content, submitter.username), submitter.username
                )
            except (pydantic.ValidationError, ValidationError, TamperError) as error:
                failed.append(f"{voucher.id}: {getattr(error, 'detail', 'malformed voucher content')}")
                continue
            except Exception:
                failed.append(f"{voucher.id}: does not open with this key")
                continue
            subject = await users.by_username(checked.subject)
            if subject is None:
                failed.append(f"{voucher.id}: unknown subject account")
                continue
            voucher.case_id = await open_voucher_case(
                session,
                source="voucher",
                subject_user_id=subject.id,
                reporter_user_id=None if subject.id == voucher.user_id else voucher.user_id,
                direction=content.direction.value,
                bank=content.match.bank,
                entry_hash=content.match.entry_hash,
                pdq=content.pdq,
                distance=content.match.distance,
                verified=checked.verified,
                verification=checked.verification,
                message_id=content.franking.payload.message_id,
                voucher_id=voucher.id,
                mime=content.mime,
                sealed_image=sealed,
                now_ms=ctx.clock_ms(),
            )
            cases.append(voucher.case_id)
    return OpenResult(len(pending), cases, failed)


async def list_image_cases(ctx: ServerContext) -> list[ImageMatchCase]:
    """Highest priority first."""
    async with ctx.sessions() as session:
        users = UserRepository(session)
        out = []
        for row in await VoucherRepository(session).cases():
            subject = await users.by_id(row.subject_user_id)
            reporter = None if row.reporter_user_id is None else await users.by_id(row.reporter_user_id)
            out.append(
                ImageMatchCase(
                    row.id,
                    row.source,
                    subject.username if subject else "?",
                    reporter.username if reporter else None,
                    row.priority,
                    row.state,
                    row.direction,
                    row.bank,
                    row.entry_hash,
                    row.pdq,
                    row.distance,
                    row.verified,
                    row.verification,
                    row.message_id,
                    row.voucher_id,
                )
            )
        return out


async def case_image(ctx: ServerContext, case_id: int, keys: VoucherKeyPair) -> tuple[bytes, str]:
    """The case's image, decrypted with the safety team's key, for review (blur it before display).
    Raises NotFoundError, DecryptionError (wrong key)."""
    async with ctx.sessions() as session:
        row = await VoucherRepository(session).case(case_id)
        if row is None:
            raise NotFoundError("no such image-match case")
    plaintext = open_voucher(
        keys.secret, SealedVoucher(row.image_ciphertext, row.image_mac, row.image_ephemeral_key)
    )
    if row.source == "voucher":
        return b64decode(VoucherContent.model_validate_json(plaintext).image, field="image"), row.mime
    return plaintext, row.mime


async def set_profile_photo(ctx: ServerContext, by: AuthenticatedDevice, data: bytes, mime: str) -> None:
    """Sets the account's profile photo (shown to its connections and co-members only) after matching
    it against the enabled banks. Raises ValidationError (not an image), PolicyViolation (a known image:
    refused, and a case opened)."""
    if not data:
        raise ValidationError("the photo is empty")
    hashed = hash_image(data)  # UndecodableImageError is a ValidationError
    result = None
    if hashed.matchable:
        result = await match_image(ctx, hashed)
    if result is not None and result.is_match:
        best = result.matches[0]
        async with ctx.sessions() as session, session.begin():
            key = await HashListRepository(session).voucher_key()
            # Kept for review encrypted to the safety team's key, like a voucher; without a published
            # key there is nothing to encrypt to, and the image is not kept.
            sealed = seal_voucher(key.public_key, data) if key is not None else SealedVoucher(b"", b"", b"")
            await open_voucher_case(
                session,
                source="profile_photo",
                subject_user_id=by.user_id,
                reporter_user_id=None,
                direction="outgoing",
                bank=best.bank,
                entry_hash=best.entry.hash.hex(),
                pdq=hashed.hash.hex(),
                distance=best.distance,
                verified=True,
                verification="matched on the server (profile photo upload)",
                message_id=None,
                voucher_id=None,
                mime=mime,
                sealed_image=sealed,
                now_ms=ctx.clock_ms(),
            )
        raise PolicyViolation("this image cannot be used as a profile photo")
    async with ctx.sessions() as session, session.begin():
        await VoucherRepository(session).put_profile_photo(
            ProfilePhotoRow(user_id=by.user_id, data=data, mime=mime, updated_at_ms=ctx.clock_ms())
        )


async def profile_photo(ctx: ServerContext, by: AuthenticatedDevice, username: str) -> tuple[bytes, str]:
    """The account's photo, for the account itself, its connections and its groups' co-members, unless
    the owner blocked the caller. Raises NotFoundError for anyone else, exactly as for an account with no
    photo (a stranger learns neither the photo nor whether there is one)."""
    async with ctx.sessions() as session:
        user = await UserRepository(session).by_username(username)
        row = None
        if user is not None and await _may_see_photo(session, by.user_id, user.id):
            row = await VoucherRepository(session).profile_photo(user.id)
        if row is None:
            raise NotFoundError("no profile photo")
        return row.data, row.mime


async def _may_see_photo(session: AsyncSession, viewer: int, owner: int) -> bool:
    if viewer == owner:
        return True
    if await BlockRepository(session).exists(owner, viewer):
        return False
    return await ContactRepository(session).connected(viewer, owner) or await GroupRepository(
        session
    ).share_a_group(viewer, owner)


async def image_matches_for(
    ctx: ServerContext, actor: str, case_id: int, subject: str
) -> list[ImageMatchCase]:
    """The image-match records about a reviewers' case's subject, for its console page; the listing is
    audit-logged against the case."""
    matches = [m for m in await list_image_cases(ctx) if m.subject == subject]
    async with ctx.sessions() as session, session.begin():
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="case.image_matches_viewed",
            target=f"case:{case_id}",
            details={"image_matches": [m.id for m in matches]},
        )
    return matches


async def case_match_image(
    ctx: ServerContext, match_id: int, keys: VoucherKeyPair, *, revealed: bool
) -> tuple[bytes, str]:
    """An image-match record's image, blurred and greyscale unless revealed (the reveal is logged by
    `reveal_match_image`). Raises NotFoundError, DecryptionError (wrong key)."""
    data, mime = await case_image(ctx, match_id, keys)
    return blurred_unless_revealed(data, mime, revealed=revealed)


async def reveal_match_image(ctx: ServerContext, actor: str, match_id: int) -> str:
    """Logs that `actor` revealed an image-match record's image; returns its subject. Raises NotFoundError."""
    async with ctx.sessions() as session:
        row = await VoucherRepository(session).case(match_id)
        if row is None:
            raise NotFoundError("no such image-match case")
        subject = await UserRepository(session).by_id(row.subject_user_id)
    await log_reveal(ctx, actor, "image_match.image_revealed", f"image_match:{match_id}", {"match": match_id})
    return "?" if subject is None else subject.username
