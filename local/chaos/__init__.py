"""A seeded, replayable fault run against the local stack, judged by invariants (`make chaos`)."""
