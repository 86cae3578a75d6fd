"""The settlement-day graph (every BMRS chain and grid_snapshots) computed day by day in one multi-asset."""
