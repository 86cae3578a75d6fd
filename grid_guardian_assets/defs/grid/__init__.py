"""Grid graphs: the static topology and daily snapshots of BMRS signals on its buses."""
