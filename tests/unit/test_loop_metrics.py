"""The hot path's lock-free metrics expose exactly what prometheus_client's would.

``LoopCounter`` and ``LoopHistogram`` (router.metrics) drop the lock of each
increment; fed the same observations as the library's own classes, the text a
Prometheus scrape reads must be the same, bucket by bucket.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from router.metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# On the bounds (a bucket's le is inclusive), between them, beyond the last, zero.
AMOUNTS = [0.0, 0.0005, 0.001, 0.0010001, 0.0025, 0.003, 0.05, 0.7, 5.0, 5.0001, 120.0]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_loop_histogram_exposes_what_a_histogram_does() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("t_seconds", "t", ["endpoint"], buckets=BUCKETS, registry=ours)
    library = Histogram("t_seconds", "t", ["endpoint"], buckets=BUCKETS, registry=theirs)
    for amount in AMOUNTS:
        loop.labels("/a").observe(amount)
        library.labels("/a").observe(amount)
    loop.labels("/b").observe(0.002)
    library.labels("/b").observe(0.002)
    assert samples(ours) == samples(theirs)
    assert samples(ours)[("t_seconds_bucket", (("endpoint", "/a"), ("le", "0.001")))] == 3


def test_a_loop_counter_exposes_what_a_counter_does() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("t_requests", "t", ["code"], registry=ours)
    library = Counter("t_requests", "t", ["code"], registry=theirs)
    for code, amount in [("200", 1), ("200", 2.5), ("503", 1)]:
        loop.labels(code).inc(amount)
        library.labels(code).inc(amount)
    assert samples(ours) == samples(theirs)
    assert samples(ours)[("t_requests_total", (("code", "200"),))] == 3.5
    with pytest.raises(ValueError):
        loop.labels("200").inc(-1)
