"""The evidence a CyberTipline filing sends, and the documents that describe it (issue 9).

A case's reportable files are its verified CSAM evidence: images attached to verified report items, and
verified image-match records (opened vouchers, refused profile photos) about the case's account. For each
file this module reads the bytes (decrypted from the case's encrypted evidence, only to hash and upload
them), its hashes (PDQ, SHA-256, MD5), the hash-match facts, and whether a person revealed it in the
console (`fileViewedByEsp`, from the audit log only: *United States v. Wilson*). It then builds the
`<report>` and `<fileDetails>` documents with `vigil.safety.ncmec`. Nothing here talks to NCMEC.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, StorageError, ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.vouchers import SealedVoucher, VoucherContent, open_voucher
from vigil.safety.hashing.pdq import hash_image
from vigil.safety.ncmec import (
    ChatImIncident,
    CyberTiplineDocumentError,
    Email,
    FileAnnotations,
    FileDetails,
    FileRelevance,
    HashMatchFacts,
    IncidentSummary,
    IncidentType,
    IndustryClassification,
    InternetDetails,
    OriginalFileHash,
    Person,
    PersonOrUserReported,
    Report,
    Reporter,
    file_details_xml,
    report_xml,
)
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.audit import AuditRepository
from vigil.server.db.cases import CaseRepository, CaseRow
from vigil.server.db.cybertip import CyberTipFileRow, CyberTipFilingRepository
from vigil.server.db.hashlists import (
    BankRepository,
    HashListRepository,
    ImageMatchCaseRow,
    VoucherRepository,
)
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services.evidence import evidence_box, item_content_context
from vigil.server.settings import CYBERTIPLINE_PRODUCTION_URL

__all__ = [
    "ANNOTATION_NAMES",
    "AlreadyReported",
    "CaseEvidence",
    "EvidenceFile",
    "FileClassification",
    "FilePreview",
    "FilingPreview",
    "PreparedFiling",
    "build_file_details",
    "build_report",
    "check_classifications",
    "file_row_classification",
    "gather_evidence",
    "incident_type_from",
    "is_test_url",
    "prepare",
    "referenced_blob_ids",
]

ANNOTATION_NAMES = frozenset(FileAnnotations.__dataclass_fields__)
_DEFAULT_THRESHOLD = 31
PREVIEW_REPORT_ID = 1
PREVIEW_FILE_ID = "assigned-by-ncmec-at-upload"


class AlreadyReported(ConflictError):
    """Every reportable file of the case is in a finished CyberTipline report already."""

    def __init__(self, filing_id: int, ncmec_report_id: int | None, case_id: int) -> None:
        super().__init__(
            f"case {case_id}: every file was already reported (CyberTipline report {ncmec_report_id}, "
            f"filing {filing_id})"
        )
        self.filing_id = filing_id


@dataclass(frozen=True, slots=True)
class FileClassification:
    """What the lead says about one file: its industry classification (A1/A2/B1/B2, or None to leave it
    out) and `FileAnnotations` flags by field name (e.g. "generative_ai", "infant")."""

    classification: IndustryClassification | None = None
    annotations: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One reportable file of a case. `key` ("item:ID" / "match:ID") is how callers classify it."""

    key: str
    source: str  # "report_item" | "image_match"
    source_id: int
    filename: str
    mime: str
    size: int
    sha256: str
    md5: str
    pdq: str | None
    match: HashMatchFacts | None
    verification: str
    received_at_ms: int | None
    revealed_by: tuple[str, ...]  # reviewers whose reveal of this exact file is in the audit log
    publicly_available: bool

    @property
    def viewed_by_esp(self) -> bool:
        return bool(self.revealed_by)

    def additional_info(self) -> str:
        parts = [] if self.match is None else [self.match.describe()]
        parts.append(f"Verification: {self.verification}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class CaseEvidence:
    case: CaseRow
    subject_id: int
    subject: str
    files: list[EvidenceFile]
    contents: dict[str, bytes] = field(repr=False)  # key -> the file's bytes (never logged, never stored)


def incident_type_from(text: str | IncidentType) -> IncidentType:
    """An incident type from its verbatim NCMEC value or its name (`CHILD_PORNOGRAPHY`,
    `child-pornography`, case-insensitive). Raises CyberTiplineDocumentError naming the choices."""
    if isinstance(text, IncidentType):
        return text
    wanted = text.strip()
    for kind in IncidentType:
        if wanted == kind.value or wanted.upper().replace("-", "_").replace(" ", "_") == kind.name:
            return kind
    choices = ", ".join(kind.name.lower().replace("_", "-") for kind in IncidentType)
    raise CyberTiplineDocumentError("incident_type", f"unknown incident type; one of: {choices}")


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _pdq(data: bytes) -> str | None:
    try:
        hashed = hash_image(data, dihedral=False)
    except (ValidationError, ValueError, OSError):
        return None
    return hashed.hash.hex() if hashed.matchable else None


def _extension(mime: str) -> str:
    return {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}.get(
        mime, "bin"
    )


async def _revealers(
    session: AsyncSession, action: str, target: str, key: str, value: int
) -> tuple[str, ...]:
    """Reviewers (people, never "system") with an audited reveal of exactly this file."""
    people = []
    for row in await AuditRepository(session).with_action(action, target):
        try:
            details = json.loads(row.details)
        except ValueError:
            continue
        if isinstance(details, dict) and details.get(key) == value and row.actor.startswith("reviewer:"):
            people.append(row.actor)
    return tuple(dict.fromkeys(people))


async def gather_evidence(ctx: ServerContext, session: AsyncSession, case_id: int) -> CaseEvidence:
    """The case's reportable files with their bytes. Raises NotFoundError, ValidationError when the case has
    no verified CSAM evidence, StorageError when stored evidence does not decrypt."""
    cases = CaseRepository(session)
    case = await cases.get(case_id)
    if case is None:
        raise NotFoundError(f"no case {case_id}")
    subject = await UserRepository(session).by_id(case.subject_user_id)
    if subject is None:
        raise NotFoundError("the case's account no longer exists")
    box = evidence_box(ctx)
    files: list[EvidenceFile] = []
    contents: dict[str, bytes] = {}
    reports = [report for report, _reporter in await cases.reports_of(case_id)]
    for item in await cases.items_of([r.id for r in reports]):
        if not item.verified or item.attachment_enc is None:
            continue
        data = box.open(
            item.attachment_enc, item_content_context(item.report_id, item.position, "attachment")
        )
        mime = item.attachment_mime or "application/octet-stream"
        key = f"item:{item.id}"
        files.append(
            EvidenceFile(
                key=key,
                source="report_item",
                source_id=item.id,
                filename=f"vigil-item-{item.id}.{_extension(mime)}",
                mime=mime,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                md5=_md5(data),
                pdq=_pdq(data) if mime.startswith("image/") else None,
                match=None,
                verification=f"franking-verified user report ({item.verdict})"[:300],
                received_at_ms=item.server_ts_ms,
                revealed_by=await _revealers(
                    session, "evidence.image_revealed", f"case:{case_id}", "item", item.id
                ),
                publicly_available=False,
            )
        )
        contents[key] = data
    matches = [
        m
        for m in await VoucherRepository(session).cases_about(case.subject_user_id)
        if m.verified and m.image_ciphertext
    ]
    if matches:
        files.extend(await _match_files(ctx, session, matches, contents))
    if not files:
        raise ValidationError(
            f"case {case_id} has no verified CSAM evidence to report (a verified report item with an "
            "attachment, or a verified image match)"
        )
    return CaseEvidence(case, subject.id, subject.username, files, contents)


async def _match_files(
    ctx: ServerContext,
    session: AsyncSession,
    matches: list[ImageMatchCaseRow],
    contents: dict[str, bytes],
) -> list[EvidenceFile]:
    keys = load_voucher_keypair(ctx.settings)
    latest = await HashListRepository(session).latest()
    banks = BankRepository(session)
    out = []
    for match in matches:
        try:
            opened = open_voucher(
                keys.secret, SealedVoucher(match.image_ciphertext, match.image_mac, match.image_ephemeral_key)
            )
        except Exception as error:  # wrong key or damaged row: the filing cannot include this file
            raise StorageError(f"image match {match.id} does not open with the safety team's key") from error
        version = latest.version if latest is not None else 1
        if match.source == "voucher":
            content = VoucherContent.model_validate_json(opened)
            data = b64decode(content.image, field="image")
            version = content.list_version
        else:
            data = opened
        bank = await banks.by_name(match.bank)
        key = f"match:{match.id}"
        out.append(
            EvidenceFile(
                key=key,
                source="image_match",
                source_id=match.id,
                filename=f"vigil-match-{match.id}.{_extension(match.mime)}",
                mime=match.mime,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                md5=_md5(data),
                pdq=match.pdq.lower() if len(match.pdq) == 64 else _pdq(data),
                match=HashMatchFacts(
                    list_name=match.bank,
                    list_version=version,
                    matched_hash=match.entry_hash.lower(),
                    distance=match.distance,
                    threshold=max(match.distance, bank.threshold if bank is not None else _DEFAULT_THRESHOLD),
                    matched_on="the server (profile photo upload)"
                    if match.source == "profile_photo"
                    else "the sender's device",
                ),
                verification=match.verification,
                received_at_ms=match.created_at_ms,
                revealed_by=await _revealers(
                    session, "image_match.image_revealed", f"image_match:{match.id}", "match", match.id
                ),
                publicly_available=match.source == "profile_photo",
            )
        )
        contents[key] = data
    return out


async def referenced_blob_ids(ctx: ServerContext, session: AsyncSession, case_id: int) -> frozenset[str]:
    """Ids of the blobs the case's reported messages name (their encrypted attachments), for a hold."""
    box = evidence_box(ctx)
    cases = CaseRepository(session)
    reports = [report for report, _reporter in await cases.reports_of(case_id)]
    found = set()
    for item in await cases.items_of([r.id for r in reports]):
        try:
            payload = json.loads(
                box.open(item.content_enc, item_content_context(item.report_id, item.position, "content"))
            )
        except (StorageError, ValueError):
            continue
        attachment = payload.get("attachment") if isinstance(payload, dict) else None
        blob_id = attachment.get("blob_id") if isinstance(attachment, dict) else None
        if isinstance(blob_id, str) and blob_id:
            found.add(blob_id[:64])
    return frozenset(found)


def check_classifications(
    files: list[EvidenceFile], classifications: Mapping[str, FileClassification]
) -> None:
    """Raises CyberTiplineDocumentError naming an unknown file key or annotation."""
    keys = {f.key for f in files}
    for key, chosen in classifications.items():
        if key not in keys:
            raise CyberTiplineDocumentError(
                f"classifications[{key}]", f"no such file in this case (files: {', '.join(sorted(keys))})"
            )
        unknown = sorted(chosen.annotations - ANNOTATION_NAMES)
        if unknown:
            raise CyberTiplineDocumentError(
                f"classifications[{key}].annotations", f"unknown annotation(s): {', '.join(unknown)}"
            )


def build_report(
    ctx: ServerContext,
    evidence: CaseEvidence,
    incident_type: IncidentType,
    *,
    prior_reports: tuple[int, ...],
) -> Report:
    """The `<report>`: the incident (time: the earliest file's arrival at Vigil), Vigil as chat client, the
    reporter from settings, and the case's account as the reported user."""
    settings = ctx.settings
    times = [f.received_at_ms for f in evidence.files if f.received_at_ms is not None]
    incident_ms = min(times) if times else ctx.clock_ms()
    company = settings.cybertipline_company
    return Report(
        incident_summary=IncidentSummary(
            incident_type=incident_type,
            platform=company,
            incident_date_time=_at(incident_ms),
            incident_date_time_description="When the earliest reported file reached Vigil (server clock).",
        ),
        internet_details=(InternetDetails(chat_im=ChatImIncident(chat_client=company)),),
        reporter=Reporter(
            reporting_person=Person(emails=(Email(address=settings.cybertipline_reporter_email),)),
            company_template=company,
        ),
        person_or_user_reported=PersonOrUserReported(
            esp_identifier=str(evidence.subject_id),
            esp_service=company,
            screen_name=evidence.subject,
            prior_ct_reports=prior_reports,
        ),
        additional_info=(
            f"Filed from {company} trust & safety case {evidence.case.id}. Message content is end-to-end "
            "encrypted; the files reached the safety team through franking-verified user reports or "
            "on-device hash-match vouchers."
        ),
    )


def file_row_classification(row: CyberTipFileRow) -> FileClassification:
    return FileClassification(
        IndustryClassification(row.classification) if row.classification else None,
        frozenset(a for a in row.annotations.split(",") if a),
    )


def build_file_details(row: CyberTipFileRow, report_id: int, file_id: str) -> FileDetails:
    """The `<fileDetails>` of a stored file row (everything needed is in the row: no bytes)."""
    chosen = file_row_classification(row)
    hashes = [] if row.pdq is None else [OriginalFileHash(hash_type="PDQ", value=row.pdq)]
    hashes += [
        OriginalFileHash(hash_type="SHA256", value=row.sha256),
        OriginalFileHash(hash_type="MD5", value=row.md5),
    ]
    return FileDetails(
        report_id=report_id,
        file_id=file_id,
        original_file_name=row.filename,
        uploaded_to_esp_timestamp=None if row.uploaded_to_esp_ms is None else _at(row.uploaded_to_esp_ms),
        file_viewed_by_esp=row.viewed_by_esp,
        publicly_available=row.publicly_available,
        file_relevance=FileRelevance.REPORTED,
        file_annotations=FileAnnotations(**{name: True for name in chosen.annotations})
        if chosen.annotations
        else None,
        industry_classification=chosen.classification,
        original_file_hashes=tuple(hashes),
        additional_info=(row.additional_info,) if row.additional_info else (),
    )


# -- the prepared filing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilePreview:
    key: str
    source: str
    source_id: int
    filename: str
    mime: str
    size: int
    sha256: str
    md5: str
    pdq: str | None
    match: str | None  # the hash-match facts as sent in additionalInfo
    viewed_by_esp: bool
    revealed_by: tuple[str, ...]
    classification: str | None
    annotations: tuple[str, ...]
    file_details_xml: str  # reportId/fileId are placeholders until NCMEC assigns them


@dataclass(frozen=True, slots=True)
class FilingPreview:
    case_id: int
    subject: str
    incident_type: str
    report_xml: str
    files: list[FilePreview]
    base_url: str
    is_test: bool
    prior_reports: tuple[int, ...]


def is_test_url(url: str) -> bool:
    return url.rstrip("/") != CYBERTIPLINE_PRODUCTION_URL


async def _prior_reports(ctx: ServerContext, session: AsyncSession, subject_id: int) -> tuple[int, ...]:
    # Test and production report ids do not cross-reference, so only production reports are listed.
    if is_test_url(ctx.settings.cybertipline_url):
        return ()
    return tuple(await CyberTipFilingRepository(session).finished_report_ids_about(subject_id))


def _file_row(position: int, file: EvidenceFile, chosen: FileClassification) -> CyberTipFileRow:
    return CyberTipFileRow(
        position=position,
        source=file.source,
        source_id=file.source_id,
        filename=file.filename,
        mime=file.mime[:100],
        size=file.size,
        sha256=file.sha256,
        md5=file.md5,
        pdq=file.pdq,
        classification=None if chosen.classification is None else chosen.classification.value,
        annotations=",".join(sorted(chosen.annotations)),
        viewed_by_esp=file.viewed_by_esp,
        publicly_available=file.publicly_available,
        uploaded_to_esp_ms=file.received_at_ms,
        additional_info=file.additional_info(),
        ncmec_file_id=None,
        uploaded_at_ms=None,
        details_sent=False,
    )


@dataclass(slots=True)
class PreparedFiling:
    """A validated filing, not stored yet: what will be sent, the file rows to store, and the bytes."""

    preview: FilingPreview
    report_xml: bytes
    subject_id: int
    rows: list[CyberTipFileRow]
    contents: dict[str, bytes] = field(repr=False)


async def prepare(
    ctx: ServerContext,
    case_id: int,
    incident_type: IncidentType | str,
    classifications: Mapping[str, FileClassification],
) -> PreparedFiling:
    """Gathers the case's evidence and builds every document. Raises as `prepare_filing` says."""
    kind = incident_type_from(incident_type)
    async with ctx.sessions() as session:
        evidence = await gather_evidence(ctx, session, case_id)
        reported = await CyberTipFilingRepository(session).reported_sources(case_id)
        if reported:  # a later report carries only what earlier finished reports did not
            fresh = [f for f in evidence.files if (f.source, f.source_id) not in reported]
            if not fresh:
                filing_id, report_id = max(reported.values(), key=lambda found: found[0])
                raise AlreadyReported(filing_id, report_id, case_id)
            evidence = dataclasses.replace(evidence, files=fresh)
        check_classifications(evidence.files, classifications)
        prior = await _prior_reports(ctx, session, evidence.subject_id)
    document = report_xml(build_report(ctx, evidence, kind, prior_reports=prior), now=_at(ctx.clock_ms()))
    rows, previews = [], []
    for position, file in enumerate(evidence.files):
        chosen = classifications.get(file.key, FileClassification())
        row = _file_row(position, file, chosen)
        details = file_details_xml(build_file_details(row, PREVIEW_REPORT_ID, PREVIEW_FILE_ID)).decode()
        details = details.replace(
            f"<reportId>{PREVIEW_REPORT_ID}</reportId>", "<reportId>(assigned by NCMEC at /submit)</reportId>"
        )
        rows.append(row)
        previews.append(
            FilePreview(
                key=file.key,
                source=file.source,
                source_id=file.source_id,
                filename=file.filename,
                mime=file.mime,
                size=file.size,
                sha256=file.sha256,
                md5=file.md5,
                pdq=file.pdq,
                match=None if file.match is None else file.match.describe(),
                viewed_by_esp=file.viewed_by_esp,
                revealed_by=file.revealed_by,
                classification=row.classification,
                annotations=tuple(sorted(chosen.annotations)),
                file_details_xml=details,
            )
        )
    preview = FilingPreview(
        case_id=case_id,
        subject=evidence.subject,
        incident_type=kind.value,
        report_xml=document.decode(),
        files=previews,
        base_url=ctx.settings.cybertipline_url,
        is_test=is_test_url(ctx.settings.cybertipline_url),
        prior_reports=prior,
    )
    return PreparedFiling(preview, document, evidence.subject_id, rows, evidence.contents)
