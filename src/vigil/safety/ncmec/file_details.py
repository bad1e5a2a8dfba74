"""The `<fileDetails>` document (body of `POST /fileinfo`), spec §5. Field order = XSD sequence order.

`file_viewed_by_esp` has no default on purpose: the caller states it for every file, and states `True` only
when the audit log shows that a person revealed that exact file (United States v. Wilson, spec §8). A hash
match nobody opened is `False`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from vigil.safety.ncmec._schema import Element, document_bytes, slot
from vigil.safety.ncmec.enums import DetailsType, FileRelevance, IndustryClassification
from vigil.safety.ncmec.errors import CyberTiplineDocumentError
from vigil.safety.ncmec.types import DeviceId, IpCaptureEvent

__all__ = [
    "Details",
    "FileAnnotations",
    "FileDetails",
    "HashMatchFacts",
    "NameValuePair",
    "OriginalFileHash",
    "file_details_xml",
    "hashes_of",
]

_HEX = {"MD5": re.compile(r"[0-9a-f]{32}"), "SHA1": re.compile(r"[0-9a-f]{40}")}
_HEX["SHA256"] = _HEX["PDQ"] = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileAnnotations(Element):
    """Presence flags, written as empty elements in this order."""

    anime_drawing_virtual_hentai: bool = field(
        default=False, metadata=slot("animeDrawingVirtualHentai", "flag")
    )
    potential_meme: bool = field(default=False, metadata=slot("potentialMeme", "flag"))
    viral: bool = field(default=False, metadata=slot("viral", "flag"))
    possible_self_production: bool = field(default=False, metadata=slot("possibleSelfProduction", "flag"))
    physical_harm: bool = field(default=False, metadata=slot("physicalHarm", "flag"))
    violence_gore: bool = field(default=False, metadata=slot("violenceGore", "flag"))
    bestiality: bool = field(default=False, metadata=slot("bestiality", "flag"))
    live_streaming: bool = field(default=False, metadata=slot("liveStreaming", "flag"))
    infant: bool = field(default=False, metadata=slot("infant", "flag"))
    generative_ai: bool = field(default=False, metadata=slot("generativeAi", "flag"))


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginalFileHash(Element):
    """`<originalFileHash hashType="...">value</originalFileHash>`. The type is upper-cased; the value of a
    known type (MD5, SHA1, SHA256, PDQ) must be lower-case hex of the right length."""

    value: str = field(metadata=slot("text", "str", text=True, required=True, max_length=1024))
    hash_type: str = field(metadata=slot("hashType", "str", attribute=True, required=True, max_length=64))

    def _check(self) -> None:
        object.__setattr__(self, "hash_type", self.hash_type.strip().upper())
        object.__setattr__(self, "value", self.value.strip().lower())
        pattern = _HEX.get(self.hash_type)
        if pattern is not None and not pattern.fullmatch(self.value):
            raise self._fail("originalFileHash", f"is not a {self.hash_type} hex digest")


@dataclass(frozen=True, slots=True, kw_only=True)
class NameValuePair(Element):
    name: str = field(metadata=slot("name", "str", required=True, max_length=64))
    value: str = field(metadata=slot("value", "str", required=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class Details(Element):
    type: DetailsType = field(metadata=slot("type", "enum", attribute=True, required=True, enum=DetailsType))
    pairs: tuple[NameValuePair, ...] = field(
        metadata=slot("nameValuePair", "element", repeated=True, required=True, element=NameValuePair)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileDetails(Element):
    report_id: int = field(metadata=slot("reportId", "int", required=True, minimum=1, maximum=2**63 - 1))
    file_id: str = field(metadata=slot("fileId", "str", required=True, max_length=255))
    original_file_name: str | None = field(
        default=None, metadata=slot("originalFileName", "str", max_length=2056)
    )
    uploaded_to_esp_timestamp: datetime | None = field(
        default=None, metadata=slot("uploadedToEspTimestamp", "datetime")
    )
    location_of_file: str | None = field(
        default=None, metadata=slot("locationOfFile", "url", max_length=2083)
    )
    file_viewed_by_esp: bool = field(metadata=slot("fileViewedByEsp", "bool", required=True))
    exif_viewed_by_esp: bool | None = field(default=None, metadata=slot("exifViewedByEsp", "bool"))
    publicly_available: bool | None = field(default=None, metadata=slot("publiclyAvailable", "bool"))
    file_relevance: FileRelevance | None = field(
        default=None, metadata=slot("fileRelevance", "enum", enum=FileRelevance)
    )
    file_annotations: FileAnnotations | None = field(
        default=None, metadata=slot("fileAnnotations", "element", element=FileAnnotations)
    )
    industry_classification: IndustryClassification | None = field(
        default=None, metadata=slot("industryClassification", "enum", enum=IndustryClassification)
    )
    original_file_hashes: tuple[OriginalFileHash, ...] = field(
        default=(), metadata=slot("originalFileHash", "element", repeated=True, element=OriginalFileHash)
    )
    ip_capture_event: IpCaptureEvent | None = field(
        default=None, metadata=slot("ipCaptureEvent", "element", element=IpCaptureEvent)
    )
    device_ids: tuple[DeviceId, ...] = field(
        default=(), metadata=slot("deviceId", "element", repeated=True, element=DeviceId)
    )
    details: tuple[Details, ...] = field(
        default=(), metadata=slot("details", "element", repeated=True, element=Details)
    )
    additional_info: tuple[str, ...] = field(
        default=(), metadata=slot("additionalInfo", "str", repeated=True)
    )

    def _check(self) -> None:
        if self.exif_viewed_by_esp and not self.file_viewed_by_esp:
            raise self._fail("exifViewedByEsp", "true requires fileViewedByEsp to be true")
        if self.file_relevance is FileRelevance.SUPPLEMENTAL_REPORTED:
            if self.industry_classification is not None:
                raise self._fail(
                    "industryClassification",
                    "only a Reported file can be classified (this one is Supplemental)",
                )
            if self.file_annotations is not None and self.file_annotations.potential_meme:
                raise self._fail("potentialMeme", "only a Reported file can be flagged as a potential meme")


def hashes_of(content: bytes, *, pdq: str | None = None) -> tuple[OriginalFileHash, ...]:
    """`originalFileHash` values for a file: its PDQ hash (hex, when the caller has one), and the SHA-256 and
    MD5 of its bytes (the MD5 is what NCMEC's `/upload` echoes back as `hash`)."""
    hashes = [] if pdq is None else [OriginalFileHash(hash_type="PDQ", value=pdq)]
    hashes.append(OriginalFileHash(hash_type="SHA256", value=hashlib.sha256(content).hexdigest()))
    hashes.append(
        OriginalFileHash(hash_type="MD5", value=hashlib.md5(content, usedforsecurity=False).hexdigest())
    )
    return tuple(hashes)


@dataclass(frozen=True, slots=True, kw_only=True)
class HashMatchFacts:
    """How a file was matched, written into the file's `additionalInfo` (the schema has no element for it)."""

    list_name: str  # the signed hash list / bank the entry came from
    list_version: int
    matched_hash: str  # the listed PDQ hash (hex) the file matched
    distance: int  # Hamming distance between the file's PDQ hash and `matched_hash`
    threshold: int  # the distance threshold in force
    matched_on: str = "the sender's device"

    def __post_init__(self) -> None:
        if not _HEX["PDQ"].fullmatch(self.matched_hash.lower()):
            raise CyberTiplineDocumentError("HashMatchFacts.matched_hash", "is not a PDQ hex digest")
        if not 0 <= self.distance <= 256 or not 0 <= self.threshold <= 256:
            raise CyberTiplineDocumentError("HashMatchFacts.distance", "must be between 0 and 256")
        if self.distance > self.threshold:
            raise CyberTiplineDocumentError("HashMatchFacts.distance", "exceeds the threshold: not a match")

    def describe(self) -> str:
        return (
            f"Hash match on {self.matched_on}: PDQ distance {self.distance} (threshold {self.threshold}) "
            f"to listed hash {self.matched_hash.lower()} in hash list {self.list_name!r} "
            f"version {self.list_version}."
        )


def file_details_xml(details: FileDetails) -> bytes:
    """The `<fileDetails>` document for `/fileinfo`."""
    return document_bytes(details.to_element("fileDetails"))
