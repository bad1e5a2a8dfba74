"""Rate limits the relay benchmarks run their server with: still on, because their check is part of the
send path being measured, but far above what a benchmark's few devices send (thousands per second)."""

from __future__ import annotations

BENCHMARK_LIMITS = {
    "VIGIL_RATE_LIMIT_SENDS_PER_DEVICE": "100000000/hour",
    "VIGIL_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS": "1000000/hour",
    "VIGIL_RATE_LIMIT_KEY_CLAIMS_PER_REQUESTER": "1000000/hour",
    "VIGIL_RATE_LIMIT_KEY_CLAIMS_PER_TARGET": "1000000/hour",
}
