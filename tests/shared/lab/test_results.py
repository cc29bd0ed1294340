"""The stored result's details (shared.lab.results.ResultDetails): what the trainer writes loads back the same,
and rows of other versions load leniently."""

from __future__ import annotations

from shared.lab.results import EpochMetrics, Misclassified, PackInfo, ResultDetails


def test_details_round_trip_through_their_stored_json():
    details = ResultDetails(confusion=[[3, 1], [0, 4]], misclassified=[Misclassified(index=2, label=1, predicted=0)],
                            history=[EpochMetrics(epoch=1, train_loss=0.5, test_loss=0.4, test_accuracy=0.9, seconds=2,
                                                  train_seconds=1.5, samples_per_second=100)],
                            pack=PackInfo(jobs=[4, 5], started_at="2026-01-01T00:00:00+00:00",
                                          finished_at="2026-01-01T00:01:00+00:00", train_seconds=50.0),
                            artifacts={"samples": {"png": "data:image/png;base64,"}})
    stored = details.model_dump(mode="json", exclude_defaults=True)
    assert "artifacts_error" not in stored and "local" not in stored  # absent, as before the model
    assert ResultDetails.stored(stored) == details


def test_older_rows_load_with_defaults_and_a_bad_field_left_out():
    assert ResultDetails.stored(None) == ResultDetails.stored({}) == ResultDetails()
    old = ResultDetails.stored({"confusion": [[1, 0], [0, 1]], "misclassified": [{"index": 3}], "history": "?",
                                "written_by": "0.1"})
    assert old.confusion == [[1, 0], [0, 1]] and old.misclassified == [] and old.history == []
    assert old.model_extra == {"written_by": "0.1"}
