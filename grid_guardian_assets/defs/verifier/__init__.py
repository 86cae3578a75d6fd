"""The GNN verifier: the frozen anomaly benchmark and the trained, gated, promoted checkpoint."""
