"""The lab's vocabulary, torch- and SQL-free: specs and presets, the model catalog's facts, seeds, results,
sweeps, studies, verdicts and their statistics, settings. Every other layer speaks it."""
