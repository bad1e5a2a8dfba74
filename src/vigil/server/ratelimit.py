"""Request-rate limits per account, device and client address, with the `limits` library (sliding
window counters). Counters live in Redis when `VIGIL_REDIS_URL` is set, so every worker sees the same
counts; otherwise in this process. While Redis is unreachable the counts fall back to this process
rather than letting everything through or failing requests.

A refused request raises `RateLimited` (429 with Retry-After). Rules are settings
(`VIGIL_RATE_LIMIT_*`, in the `limits` notation such as "60/hour" or "10/second;300/hour").
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from vigil.server.capacity import RateLimited

__all__ = ["Limit", "RateLimiter", "parse_rule"]

log = logging.getLogger(__name__)

_REDIS_TIMEOUT_S = 0.5
# After Redis failed, counts stay in this process this long before Redis is tried again, so a Redis
# that is down costs one failed attempt per second, not one per request.
_REDIS_PAUSE_S = 1.0


class Limit(enum.StrEnum):
    """What is counted, and per what. The value names the setting: `VIGIL_RATE_LIMIT_<VALUE>`."""

    REGISTRATIONS_PER_ADDRESS = "registrations_per_address"
    SENDS_PER_DEVICE = "sends_per_device"
    KEY_CLAIMS_PER_REQUESTER = "key_claims_per_requester"
    KEY_CLAIMS_PER_TARGET = "key_claims_per_target"
    CONTACT_REQUESTS_PER_ACCOUNT = "contact_requests_per_account"
    REPORTS_PER_ACCOUNT = "reports_per_account"
    UPLOADS_PER_ACCOUNT = "uploads_per_account"
    GROUP_JOINS_PER_ACCOUNT = "group_joins_per_account"

    @property
    def refusal(self) -> str:
        match self:
            case Limit.REGISTRATIONS_PER_ADDRESS:
                return "too many registrations from this address"
            case Limit.SENDS_PER_DEVICE:
                return "too many messages from this device"
            case Limit.KEY_CLAIMS_PER_REQUESTER:
                return "too many key claims from this account"
            case Limit.KEY_CLAIMS_PER_TARGET:
                return "too many key claims for this user"
            case Limit.CONTACT_REQUESTS_PER_ACCOUNT:
                return "too many contact requests from this account"
            case Limit.REPORTS_PER_ACCOUNT:
                return "too many reports from this account"
            case Limit.UPLOADS_PER_ACCOUNT:
                return "too many uploads from this account"
            case Limit.GROUP_JOINS_PER_ACCOUNT:
                return "too many group joins from this account"


def parse_rule(rule: str) -> list[RateLimitItem]:
    """Raises ValueError for a rule `limits` cannot read."""
    return list(parse_many(rule))


class RateLimiter:
    def __init__(
        self, rules: Mapping[Limit, str], redis_url: str | None = None, namespace: str = "vigil"
    ) -> None:
        self._rules = {limit: parse_rule(rule) for limit, rule in rules.items()}
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: SlidingWindowCounterRateLimiter | None = None
        if redis_url is not None:
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{namespace}:limits",
                socket_connect_timeout=_REDIS_TIMEOUT_S,
                socket_timeout=_REDIS_TIMEOUT_S,
            )
            self._shared = SlidingWindowCounterRateLimiter(storage)
        self._shared_paused_until = 0.0

    @classmethod
    def disabled(cls) -> RateLimiter:
        return cls({})

    async def hit(self, limit: Limit, key: object) -> None:
        """Counts one request against `limit` for `key` (an account, device or address). Raises
        RateLimited when the rule's budget is used up; the refused request is not counted."""
        items = self._rules.get(limit)
        if not items:
            return
        identifier = str(key)
        for item in items:
            strategy = self._strategy()
            try:
                allowed = await strategy.hit(item, limit.value, identifier)
            except Exception as error:  # Redis unreachable: count here until it is back
                self._pause_shared(error)
                strategy = self._local
                allowed = await strategy.hit(item, limit.value, identifier)
            if not allowed:
                try:
                    stats = await strategy.get_window_stats(item, limit.value, identifier)
                    retry_after = math.ceil(stats.reset_time - time.time())
                except Exception:  # the refusal stands; the hint falls back to the window
                    retry_after = item.get_expiry()
                raise RateLimited(limit.refusal, retry_after)

    def _strategy(self) -> SlidingWindowCounterRateLimiter:
        if self._shared is not None and time.monotonic() >= self._shared_paused_until:
            return self._shared
        return self._local

    def _pause_shared(self, error: Exception) -> None:
        if time.monotonic() >= self._shared_paused_until:
            log.warning("rate limits: Redis unreachable (%s); counting in this process", type(error).__name__)
        self._shared_paused_until = time.monotonic() + _REDIS_PAUSE_S
