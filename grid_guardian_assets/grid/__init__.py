"""The GB transmission network as graphs: topology, BMRS signals on buses, DC power flow, PyG snapshots."""
