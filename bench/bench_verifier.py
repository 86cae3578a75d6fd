"""Verifier training and inference benchmark (not a test): ratios against a baseline measured in the same run.

For each network (29 and 2,224 buses), over nine months of bundled snapshots (2018-01-01 .. 2018-09-30):

* one training epoch of the GNN verifier with days batched as disjoint-union graphs (how it trains), against
  the baseline loop the original plan sketched: one day at a time, the recurrent model stepped through its 48
  periods on one graph, one optimiser step per day;
* inference: scoring every period of a day in one pass, in ms per snapshot.

Run: .venv/bin/python bench/bench_verifier.py [--days 273] [--networks gb29 gb2224] [--device auto]
"""

import argparse
import datetime as dt
import time

import torch

from grid_guardian_assets.grid.network import load_network
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.verifier.graph import GraphTensors
from grid_guardian_assets.verifier.pipeline import contiguous_sequences
from grid_guardian_assets.verifier.scoring import LearnedDetector
from grid_guardian_assets.verifier.sequences import Normaliser, sequence_from_days
from grid_guardian_assets.verifier.train import TrainConfig, pick_device, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=273)
    parser.add_argument("--networks", nargs="+", default=["gb29", "gb2224"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'})")
    for name in args.networks:
        network = load_network(name)
        started = time.perf_counter()
        days = bundled_snapshot_days(network, dt.date(2018, 1, 1), dt.date(2018, 1, 1) + dt.timedelta(days=args.days - 1))
        built = time.perf_counter() - started
        sequences = contiguous_sequences(days)
        normaliser = Normaliser.fit(sequence_from_days(days))
        graph = GraphTensors.of(network, device)
        config = TrainConfig(epochs=1, hidden_channels=32)
        batch_chunks = max(1, min(config.batch_chunks, config.max_batch_buses // network.n_buses))
        periods = sum(len(s) for s in sequences)
        model, history = train_model("gnn", sequences, normaliser, graph, config, device)
        batched = history.epoch_seconds[0]
        # The baseline: the same model and loss, one day (one graph) per optimiser step.
        _, one_day_history = train_model("gnn", sequences, normaliser, graph, TrainConfig(epochs=1, hidden_channels=32, batch_chunks=1), device)
        baseline = one_day_history.epoch_seconds[0]
        print(f"{name} ({network.n_buses} buses): {len(days)} days, {periods:,} periods (snapshots built in {built:.0f} s)")
        print(f"  training epoch, {batch_chunks} days batched as one graph: {batched:.1f} s | one day at a time: "
              f"{baseline:.1f} s | ratio {baseline / batched:.1f}x")
        detector = LearnedDetector("gnn", model, normaliser, config.warmup, graph)
        one_day = sequence_from_days(days[-1:])
        detector.raw_scores(one_day)  # warm-up
        started = time.perf_counter()
        repeats = 5
        for _ in range(repeats):
            detector.raw_scores(one_day)
        per_snapshot = (time.perf_counter() - started) / repeats / len(one_day)
        print(f"  inference: {per_snapshot * 1000:.2f} ms per snapshot (a day scored in one pass)")


if __name__ == "__main__":
    main()
