"""Test set-up shared by the image-match tests: one match recorded the way the server records it (through
`vouchers.open_voucher_case`, which opens or joins the reviewers' case about the subject)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.vouchers import SealedVoucher
from vigil.server.services import vouchers


async def record_image_match(
    session: AsyncSession,
    *,
    subject_user_id: int,
    sealed_image: SealedVoucher,
    now_ms: int,
    source: str = "voucher",
    bank: str = "b",
    entry_hash: str = "h" * 64,
    pdq: str = "p" * 64,
    distance: int = 0,
    verification: str = "v",
) -> int:
    """A verified outgoing PNG match about `subject_user_id`, in the caller's transaction; returns the
    image-match record's id."""
    return await vouchers.open_voucher_case(
        session,
        source=source,
        subject_user_id=subject_user_id,
        reporter_user_id=None,
        direction="outgoing",
        bank=bank,
        entry_hash=entry_hash,
        pdq=pdq,
        distance=distance,
        verified=True,
        verification=verification,
        message_id=None,
        voucher_id=None,
        mime="image/png",
        sealed_image=sealed_image,
        now_ms=now_ms,
    )
