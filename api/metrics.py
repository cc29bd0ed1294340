"""Prometheus `/metrics`: the fleet as the database sees it, collected at scrape time (prometheus-client).

Every API process answers from the same database, so any of them can be scraped: no per-process counters to
add up, and nothing is lost when a process restarts.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from shared.store import metrics as store
from shared.store.db import session_scope
from shared.store.metrics import RECENT
from shared.store.models import JobStatus

bp = Blueprint("metrics", __name__)
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)  # seconds


def _histogram(name: str, doc: str, values: list[float]) -> HistogramMetricFamily:
    buckets = [(str(b), sum(v <= b for v in values)) for b in DURATION_BUCKETS] + [("+Inf", len(values))]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


class FleetCollector:
    """Jobs by status and queue, queue depth, retries, durations and the running workers' heartbeats."""

    def __init__(self, database_url: str):
        self.url = database_url

    def collect(self):
        with session_scope(self.url) as s:
            fleet = store.fleet(s)
        yield self._jobs(fleet.jobs)
        depth = GaugeMetricFamily("cnnlab_queue_depth", "Jobs waiting to run, per queue", labels=["queue"])
        for queue, n in fleet.queue_depth.items():
            depth.add_metric([queue], n)
        yield depth
        yield GaugeMetricFamily("cnnlab_job_retries", "Attempts beyond the first, over all jobs", value=fleet.retries)
        ages = GaugeMetricFamily("cnnlab_worker_heartbeat_age_seconds",
                                 "Seconds since each busy worker last renewed its job's lease", labels=["worker"])
        for worker, age in fleet.heartbeat_ages.items():
            ages.add_metric([worker], age)
        yield ages
        yield _histogram("cnnlab_job_seconds", f"Start to finish, last {RECENT} finished jobs", fleet.job_seconds)
        yield _histogram("cnnlab_epoch_seconds", f"Epoch wall time, last {RECENT} epochs", fleet.epoch_seconds)

    @staticmethod
    def _jobs(counts: dict[tuple[str, str], int]) -> GaugeMetricFamily:
        jobs = GaugeMetricFamily("cnnlab_jobs", "Jobs by status and queue", labels=["status", "queue"])
        for status in JobStatus:  # every status, zeros included, so dashboards see a series from the start
            for queue in sorted({q for _, q in counts} | {"cpu", "gpu"}):
                jobs.add_metric([status.value, queue], counts.get((status.value, queue), 0))
        return jobs


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(current_app.config["DATABASE_URL"]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
