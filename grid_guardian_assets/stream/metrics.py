"""Prometheus metrics of the live path (one registry per process, served on ``--metrics-port`` when asked)."""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

METRICS_PORT_ENV = "GRID_GUARDIAN_METRICS_PORT"
METRICS_ADDR_ENV = "GRID_GUARDIAN_METRICS_ADDR"
DEFAULT_METRICS_ADDR = "127.0.0.1"


def metrics_endpoint(port: int | None = None, addr: str | None = None) -> tuple[int, str]:
    """Where to serve ``/metrics``: ``port`` and ``addr`` when given, else ``$GRID_GUARDIAN_METRICS_PORT`` (unset or
    0: off) and ``$GRID_GUARDIAN_METRICS_ADDR`` (default 127.0.0.1), read now rather than when a module is imported.

    Args:
        port: The port, or ``None`` for the environment's.
        addr: The bind address, or ``None`` for the environment's.

    Returns:
        ``(port, addr)``; port 0 means no metrics server.
    """
    if port is None:
        text = os.environ.get(METRICS_PORT_ENV, "").strip()
        if text and not text.isdigit():
            raise ValueError(f"${METRICS_PORT_ENV} must be a port number, not {text!r}")
        port = int(text or 0)
    return port, addr or os.environ.get(METRICS_ADDR_ENV) or DEFAULT_METRICS_ADDR


class StreamMetrics:
    """The live job's and the poller's metrics, in their own registry (so tests and jobs never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.inference_latency_ms = Histogram(
            "gnn_inference_latency_ms", "Time to score one batch of settlement periods with the GNN verifier (ms): "
            "one period per batch at the live rate, many while a backlog streams in (see scoring_periods_per_batch)",
            buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000, 5000), registry=self.registry,
        )
        self.periods_per_batch = Histogram(
            "scoring_periods_per_batch", "Settlement periods scored together in one pass (rules, DC flow and GNN): "
            "1 in the live regime, more while catching up on a backlog",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "kafka_consumer_lag", "Records not yet committed by the group, per partition: from the group's own "
            "committed offsets and the highest offset seen (a lower bound where the broker under-reports watermarks)",
            ["topic", "partition"], registry=self.registry,
        )
        self.messages_processed = Counter(
            "messages_processed_total", "Kafka messages processed (stored or sent to the DLQ)", ["dataset"], registry=self.registry
        )
        self.alerts = Counter("alerts_total", "Alerts written to Redis", ["source"], registry=self.registry)
        self.dlq = Counter("dlq_total", "Messages sent to the dead-letter topic", ["topic"], registry=self.registry)
        self.anomaly_score = Gauge(
            "anomaly_score", "Latest calibrated anomaly score per node (1.0 = alarm threshold)", ["node"], registry=self.registry
        )
        self.api_requests = Counter(
            "bmrs_api_requests_total", "Insights API requests made by the live poller", ["dataset", "outcome"], registry=self.registry
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` on ``addr:port`` for Prometheus to scrape."""
        start_http_server(port, addr=addr, registry=self.registry)
