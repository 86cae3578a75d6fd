"""The live path: BMRS records on Kafka, scored against the grid graph, alerts in Redis."""
