"""The one retry policy, shared by the client and the service's remote engine: its delays, and who retries what."""

from __future__ import annotations

from pandalm_client import RetryPolicy
from pandalm_serve.engines.remote import UPSTREAM_RETRY_STATUSES, RemoteEngine
from pandalm_serve.settings import Settings


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=3.0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (10, 3.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # full jitter spreads over the whole range


def test_retry_after_is_honoured_within_the_cap_and_a_date_falls_back_to_backoff() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=30.0)
    assert policy.delay(0, "7") == 7.0
    assert policy.delay(0, "3600") == 30.0
    assert policy.delay(0, "-1") == 0.0
    assert 0 <= policy.delay(0, "Wed, 21 Oct 2026 07:28:00 GMT") <= 0.5


def test_the_client_and_the_remote_engine_differ_only_in_what_they_retry() -> None:
    client = RetryPolicy()
    engine = RemoteEngine(Settings(engine="remote", remote_url="http://127.0.0.1:1", remote_max_retries=2))
    remote = engine._retry
    assert (remote.initial_backoff_s, remote.max_backoff_s) == (client.initial_backoff_s, client.max_backoff_s)
    assert remote.max_retries == 2 and remote.retry_statuses == UPSTREAM_RETRY_STATUSES
    # The service's 502 and 504 are an engine failure and a pair past its deadline: a retry would judge again.
    assert [s for s in (429, 500, 502, 503, 504) if client.retries(s)] == [429, 503]
    assert all(remote.retries(s) for s in (429, 500, 502, 503, 504))
