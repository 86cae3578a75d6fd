"""The GNN verifier: a temporal graph model of grid snapshots, its baselines, anomaly benchmark and checkpoints."""
