"""Prometheus `/metrics`: the fleet as the database sees it, collected at scrape time (prometheus-client).

Every API process answers from the same database, so any of them can be scraped: no per-process counters to
add up, and nothing is lost when a process restarts.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select

from shared.store.db import session_scope
from shared.store.models import EpochMetric, Job, JobStatus, utcnow

bp = Blueprint("metrics", __name__)
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)  # seconds
RECENT = 1000  # finished jobs and epochs the duration histograms are drawn from


def _histogram(name: str, doc: str, values: list[float]) -> HistogramMetricFamily:
    buckets = [(str(b), sum(v <= b for v in values)) for b in DURATION_BUCKETS] + [("+Inf", len(values))]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


class FleetCollector:
    """Jobs by status and queue, queue depth, retries, durations and the running workers' heartbeats."""

    def __init__(self, database_url: str):
        self.url = database_url

    def collect(self):
        with session_scope(self.url) as s:
            yield self._jobs(s)
            depth = GaugeMetricFamily("cnnlab_queue_depth", "Jobs waiting to run, per queue", labels=["queue"])
            for queue, n in s.execute(select(Job.queue, func.count()).where(Job.status == JobStatus.QUEUED)
                                      .group_by(Job.queue)):
                depth.add_metric([queue], n)
            yield depth
            retries = s.scalar(select(func.coalesce(func.sum(Job.attempts - 1), 0)).where(Job.attempts > 1))
            yield GaugeMetricFamily("cnnlab_job_retries", "Attempts beyond the first, over all jobs", value=retries)
            yield self._heartbeats(s)
            yield self._job_durations(s)
            epochs = s.scalars(select(EpochMetric.seconds).order_by(EpochMetric.id.desc()).limit(RECENT)).all()
            yield _histogram("cnnlab_epoch_seconds", f"Epoch wall time, last {RECENT} epochs", list(epochs))

    @staticmethod
    def _jobs(s) -> GaugeMetricFamily:
        jobs = GaugeMetricFamily("cnnlab_jobs", "Jobs by status and queue", labels=["status", "queue"])
        counts = dict(((st, q), n) for st, q, n in s.execute(
            select(Job.status, Job.queue, func.count()).group_by(Job.status, Job.queue)))
        for status in JobStatus:  # every status, zeros included, so dashboards see a series from the start
            for queue in sorted({q for _, q in counts} | {"cpu", "gpu"}):
                jobs.add_metric([status.value, queue], counts.get((status.value, queue), 0))
        return jobs

    @staticmethod
    def _heartbeats(s) -> GaugeMetricFamily:
        ages = GaugeMetricFamily("cnnlab_worker_heartbeat_age_seconds",
                                 "Seconds since each busy worker last renewed its job's lease", labels=["worker"])
        now = utcnow()
        for worker, beat in s.execute(select(Job.worker, func.max(Job.heartbeat_at))
                                      .where(Job.status == JobStatus.RUNNING).group_by(Job.worker)):
            ages.add_metric([worker or "?"], (now - beat).total_seconds() if beat else float("nan"))
        return ages

    @staticmethod
    def _job_durations(s) -> HistogramMetricFamily:
        rows = s.execute(select(Job.started_at, Job.finished_at).where(Job.finished_at.is_not(None),
                                                                       Job.started_at.is_not(None))
                         .order_by(Job.finished_at.desc()).limit(RECENT)).all()
        return _histogram("cnnlab_job_seconds", f"Start to finish, last {RECENT} finished jobs",
                          [(end - start).total_seconds() for start, end in rows])


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(current_app.config["DATABASE_URL"]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
