"""Defaults of the live inference job, in one place for ``StreamConfig``, the ``stream run`` command and the
``live_anomaly_scores`` asset's run config (this module imports nothing, so the code location can read it)."""

# Most messages per batch (one Redis transaction, one offset commit). A batch takes what has arrived and never waits
# to fill, so the bound costs no latency at the live rate; while a backlog streams in, each batch pays a fixed cost
# (validating its frame, one pass of the model, the state written out, the transaction, the commit), and 20,000
# messages (about 1,300 settlement periods of FUELHH) spread it thinly: about 8 % more readings a second than 5,000
# in a catch-up of 2018 without a broker (the bench's offline twin), for about a second's work per batch.
BATCH_SIZE = 20_000
GROUP_ID = "grid-guardian-live"
FUEL_SETTLE_S = 5.0  # quiet seconds after which a period's FUELHH counts as complete
KEEP_PERIODS = 96  # scored periods kept for refinement by late data (B1610 arrives about five days late: 288+)
PROGRESS_EVERY_S = 60.0
