"""Self-play rounds in the Absolute Zero style: a proposer, the physics environment and a solver."""
