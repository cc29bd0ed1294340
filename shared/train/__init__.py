"""The torch core: nets, data, batches, steps, the engine, distributed runs, checkpoints and figures."""
