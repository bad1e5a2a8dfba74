"""Evidence: reported content at rest, and what the console shows of it.

Content is sealed with AES-256-GCM under the report key from settings, bound by associated data to the
row and column it belongs to, so a ciphertext moved to another row does not decrypt. Pictures (evidence
items and image-match records) are shown blurred and greyscale until a reviewer reveals them, and every
reveal is audit-logged.
"""

from __future__ import annotations

import io
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, ImageFilter, UnidentifiedImageError

from vigil.errors import NotFoundError, StorageError, ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.cases import CaseRepository
from vigil.server.services.audit import append_audit

__all__ = [
    "EvidenceBox",
    "blurred_unless_revealed",
    "evidence_box",
    "evidence_image",
    "item_content_context",
    "log_reveal",
    "reveal_image",
]

_NONCE = 12
_VERSION = b"\x01"


class EvidenceBox:
    def __init__(self, key: bytes) -> None:
        """Raises ValidationError unless the key is 32 bytes."""
        if len(key) != 32:
            raise ValidationError("the report key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _VERSION + context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        """Raises StorageError when the value does not authenticate (wrong key, row or tampering)."""
        if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _VERSION:
            raise StorageError("stored evidence is malformed")
        try:
            return self._aead.decrypt(
                sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], _VERSION + context.encode()
            )
        except InvalidTag as error:
            raise StorageError("stored evidence does not decrypt with the report key") from error


def evidence_box(ctx: ServerContext) -> EvidenceBox:
    return EvidenceBox(ctx.report_key)


def item_content_context(report_id: int, position: int, column: str) -> str:
    """The associated data binding a report item's sealed `column` to its row."""
    return f"report_item:{report_id}:{position}:{column}"


def _blurred(data: bytes) -> bytes:
    """A small greyscale, heavily blurred rendering: enough to see that there is a picture, not what."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((360, 360))
            blurred = image.convert("L").filter(ImageFilter.GaussianBlur(radius=16))
    except (UnidentifiedImageError, OSError, ValueError):
        blurred = Image.new("L", (240, 160), color=128)
    out = io.BytesIO()
    blurred.save(out, format="PNG")
    return out.getvalue()


async def _item_attachment(ctx: ServerContext, item_id: int) -> tuple[bytes, str, int]:
    box = evidence_box(ctx)
    async with ctx.sessions() as session:
        found = await CaseRepository(session).item(item_id)
        if found is None or found[0].attachment_enc is None:
            raise NotFoundError("no such evidence image")
        item, report = found
        data = box.open(
            item.attachment_enc or b"", item_content_context(report.id, item.position, "attachment")
        )
        return data, item.attachment_mime or "application/octet-stream", report.case_id


async def evidence_image(ctx: ServerContext, item_id: int, *, revealed: bool) -> tuple[bytes, str]:
    """The blurred rendering, or the original once revealed (the reveal itself is logged by
    `reveal_image`). Raises NotFoundError."""
    data, mime, _case = await _item_attachment(ctx, item_id)
    return blurred_unless_revealed(data, mime, revealed=revealed)


async def reveal_image(ctx: ServerContext, actor: str, item_id: int) -> int:
    """Logs that `actor` revealed an evidence image; returns its case id. Raises NotFoundError."""
    _data, _mime, case_id = await _item_attachment(ctx, item_id)
    await log_reveal(ctx, actor, "evidence.image_revealed", f"case:{case_id}", {"item": item_id})
    return case_id


def blurred_unless_revealed(data: bytes, mime: str, *, revealed: bool) -> tuple[bytes, str]:
    """What the console shows of an evidence or image-match picture: the original only once revealed."""
    if not revealed or not mime.startswith("image/"):
        return _blurred(data), "image/png"
    return data, mime


async def log_reveal(
    ctx: ServerContext, actor: str, action: str, target: str, details: dict[str, int]
) -> None:
    """The audit entry for revealing an image (evidence or image match)."""
    async with ctx.sessions() as session, session.begin():
        await append_audit(
            session, now_ms=ctx.clock_ms(), actor=actor, action=action, target=target, details=details
        )
