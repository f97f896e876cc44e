"""The relay's Prometheus metrics (served on METRICS_LISTEN)."""
from prometheus_client import Counter, Gauge, Histogram

# multiprocess_mode only matters with several workers: the active relay's figure is the one to show.
BACKLOG = Gauge("licensing_outbox_backlog", "Outbox rows not yet published", multiprocess_mode="max")
OLDEST_AGE = Gauge("licensing_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished event",
                   multiprocess_mode="max")
PUBLISHED = Counter("licensing_outbox_published_total", "Events acknowledged by JetStream")
DUPLICATES = Counter("licensing_outbox_duplicates_total", "Re-publishes JetStream dropped as duplicates")
PUBLISH_ERRORS = Counter("licensing_outbox_publish_errors_total", "Publishes that failed or timed out")
PUBLISH_LATENCY = Histogram(
    "licensing_outbox_publish_latency_seconds", "From publish to JetStream acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
COMMIT_TO_ACK = Histogram(
    "licensing_outbox_lag_seconds", "From the change's transaction to JetStream acknowledgement",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HELD = Gauge("licensing_outbox_held_licenses",
             "Licenses whose events wait behind one that failed to publish (a rejected event stays here)",
             multiprocess_mode="max")
ACTIVE = Gauge("licensing_outbox_relay_active", "1 when this process is the active relay", multiprocess_mode="max")
