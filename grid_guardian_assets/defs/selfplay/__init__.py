"""Self-play rounds (Absolute Zero style) as a partitioned asset, and the buffer of accepted scenarios."""
