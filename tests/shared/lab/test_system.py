"""A job's system samples summarized: mean and peak of each quantity, None where no sample has it."""

from __future__ import annotations

from shared.lab.results import ResultDetails, SystemSample, SystemSummary


def test_mean_and_peak_over_the_samples_that_have_a_value():
    samples = [SystemSample(seconds=1, cpu_percent=50, rss_mb=100, load_1m=1.0),
               SystemSample(seconds=2, cpu_percent=150, rss_mb=300, gpu_percent=40, gpu_memory_mb=10, load_1m=3.0)]
    s = SystemSummary.of(samples, [1.5, 1.2, 1.0])
    assert (s.samples, s.cpu_percent_mean, s.cpu_percent_peak, s.rss_mb_mean, s.rss_mb_peak) == (2, 100, 150, 200, 300)
    assert (s.gpu_percent_mean, s.gpu_memory_mb_peak, s.load_mean, s.load_average) == (40, 10, 2.0, [1.5, 1.2, 1.0])
    empty = SystemSummary.of([], [])
    assert empty.samples == 0 and empty.cpu_percent_mean is None


def test_the_summary_round_trips_in_the_result_details():
    summary = SystemSummary.of([SystemSample(seconds=1, cpu_percent=80, rss_mb=500)], [0.5, 0.4, 0.3])
    assert ResultDetails.stored({"system": summary.model_dump()}).system == summary
    assert ResultDetails.stored({}).system is None  # results stored before system metrics
