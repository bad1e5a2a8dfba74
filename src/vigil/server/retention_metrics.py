"""What the retention sweeps did, per sweep, since the process started: served by `GET /v1/retention`
next to the health checks, so an operator can see that every rule runs (and when one keeps failing)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RetentionMetrics", "SweepStats"]


@dataclass(slots=True)
class SweepStats:
    runs: int = 0
    failures: int = 0
    deleted_total: int = 0
    last_deleted: int = 0
    last_run_ms: int | None = None  # when the last successful run finished (server clock)
    last_error: str | None = None  # the exception type of the last failed run, never its message


@dataclass(slots=True)
class RetentionMetrics:
    sweeps: dict[str, SweepStats] = field(default_factory=dict)

    def succeeded(self, name: str, deleted: int, now_ms: int) -> None:
        stats = self.sweeps.setdefault(name, SweepStats())
        stats.runs += 1
        stats.deleted_total += deleted
        stats.last_deleted = deleted
        stats.last_run_ms = now_ms
        stats.last_error = None

    def failed(self, name: str, error: BaseException) -> None:
        stats = self.sweeps.setdefault(name, SweepStats())
        stats.failures += 1
        stats.last_error = type(error).__name__
