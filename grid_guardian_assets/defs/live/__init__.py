"""Live inference: the long-running Kafka → GNN → Redis job and the sensor that launches it on a new checkpoint."""
