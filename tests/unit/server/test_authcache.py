"""The credential cache: what it answers, and every way it is invalidated."""

from __future__ import annotations

from pathlib import Path

from vigil.server.authcache import AuthCache

DIGEST = b"d" * 32


def test_a_cached_device_answers_only_for_its_own_digest() -> None:
    cache: AuthCache[str] = AuthCache(10)
    cache.store(cache.generation, "dev1", DIGEST, 1, "alice")
    assert cache.lookup("dev1", DIGEST) == "alice"
    assert cache.lookup("dev1", b"x" * 32) is None  # a wrong credential is asked of the database
    assert cache.lookup("dev2", DIGEST) is None


def test_entries_expire_and_a_zero_ttl_disables_the_cache() -> None:
    now = [0.0]
    cache: AuthCache[str] = AuthCache(5, clock=lambda: now[0])
    cache.store(cache.generation, "dev1", DIGEST, 1, "alice")
    now[0] = 4.9
    assert cache.lookup("dev1", DIGEST) == "alice"
    now[0] = 5.0
    assert cache.lookup("dev1", DIGEST) is None
    disabled: AuthCache[str] = AuthCache(0)
    disabled.store(disabled.generation, "dev1", DIGEST, 1, "alice")
    assert disabled.lookup("dev1", DIGEST) is None


def test_invalidating_a_user_or_a_device_drops_exactly_their_entries() -> None:
    cache: AuthCache[str] = AuthCache(10)
    for device, user in (("a1", 1), ("a2", 1), ("b1", 2), ("c1", 3)):
        cache.store(cache.generation, device, DIGEST, user, device)
    cache.invalidate_users([1])
    assert cache.lookup("a1", DIGEST) is None and cache.lookup("a2", DIGEST) is None
    assert cache.lookup("b1", DIGEST) == "b1"
    cache.invalidate_devices(["b1"])
    assert cache.lookup("b1", DIGEST) is None and cache.lookup("c1", DIGEST) == "c1"
    cache.clear()
    assert cache.lookup("c1", DIGEST) is None


def test_a_lookup_that_read_the_database_before_an_invalidation_is_not_stored() -> None:
    cache: AuthCache[str] = AuthCache(10)
    started = cache.generation  # the request starts reading the device row (old standing)
    cache.invalidate_users([1])  # meanwhile the suspension commits and invalidates
    cache.store(started, "a1", DIGEST, 1, "alice (stale)")
    assert cache.lookup("a1", DIGEST) is None


def test_an_announcement_through_the_marker_empties_another_process_cache(tmp_path: Path) -> None:
    marker = tmp_path / "credentials-changed"
    server: AuthCache[str] = AuthCache(10, marker=marker)
    console: AuthCache[str] = AuthCache(10, marker=marker)  # another process on the same data directory
    server.store(server.generation, "a1", DIGEST, 1, "alice")
    assert server.lookup("a1", DIGEST) == "alice"
    console.announce()
    assert server.lookup("a1", DIGEST) is None
    server.store(server.generation, "a1", DIGEST, 1, "alice")
    assert server.lookup("a1", DIGEST) == "alice"
    console.announce()  # twice within one clock tick still changes the marker's identity
    assert server.lookup("a1", DIGEST) is None
