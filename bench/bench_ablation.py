"""Issue #12's ablation on the bundled 2018 data, without Dagster: what ``gnn_verifier`` computes, for one split.

Stores the bundled 2018 recordings (``dev.recorded_store``: the daily chains' validation and HDF5 stores, in a
temporary folder), builds the snapshots of the verifier's training range (the fit and threshold windows) and of the
chosen split's days, cuts the benchmark from the split (``build_benchmark`` with ``BenchmarkSpec``'s defaults), fits
the rules on the stores (``fit_detectors`` on the windows, line limits measured on the training range as the asset does), trains
the GNN verifier and the per-bus GRU (``TrainConfig``'s defaults), and prints the bootstrap summary of every detector
(F1, false alerts per clean day, delay, each with its 95 % interval), how many events leave no trace in the national
readings the live job receives (``observation.national_trace_mw``: a bound on any detector's recall), how many unit
trips take frequency out of the operational band at their nadir (the band rule sees those in the period's farthest
FREQ sample, as the live job sees them sample by sample), how many periods' recorded frequency leaves the band (marked
with the known bad periods), and which rule findings raised the false alerts on the clean days.

The windows are the README's (``WINDOWS_2018``: fit January–June, thresholds July–September, held out
October–December). Tune on ``--split validation`` (July to September); ``held_out`` (October to December) is for the
final table only. For the validation split every fit ends before it (``VALIDATION_WINDOWS``: January–April learn the
rules' relations, May–June set their thresholds, line limits and the models train on both, July–September is that
run's held-out window), so validation figures are out of sample as held-out ones are; ``--in-sample`` fits on
``WINDOWS_2018`` (the validation days are its threshold window) for comparison.
``--rules-only`` skips training (seconds instead of minutes) and scores the rules alone. The cases are as the live job
would observe them (``build_benchmark``: national readings spread over the buses again, as every real snapshot is).

Run: .venv/bin/python bench/bench_ablation.py [--split validation|held_out] [--rules-only] [--epochs N]
"""

import argparse
import collections
import datetime as dt
import tempfile
import time
from pathlib import Path

import polars as pl

from grid_guardian_assets.detect.calibration import fit_detectors, known_bad_periods
from grid_guardian_assets.detect.redundancy import FALSE_ALARM_RATE
from grid_guardian_assets.dev.recorded_store import WINDOWS_2018, recorded_2018
from grid_guardian_assets.grid.branch_limits import LoadingHistory
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import load_network
from grid_guardian_assets.grid.physics import FREQUENCY_OPERATIONAL_BAND_HZ, trip_frequency_dip_hz
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.verifier.anomalies import build_benchmark, frequency_excursions
from grid_guardian_assets.verifier.benchmark_config import HELD_OUT, VALIDATION, BenchmarkSpec
from grid_guardian_assets.verifier.bootstrap import summary_table
from grid_guardian_assets.verifier.evaluation import evaluate, event_span, summarise
from grid_guardian_assets.verifier.observation import national_trace_mw
from grid_guardian_assets.verifier.pipeline import contiguous_sequences
from grid_guardian_assets.verifier.rule_detectors import RulesDetector
from grid_guardian_assets.verifier.train_config import TrainConfig
from grid_guardian_assets.windows import DayWindow, Windows

# The validation split scored out of sample: every fit ends before July.
VALIDATION_WINDOWS = Windows(DayWindow(dt.date(2018, 1, 1), dt.date(2018, 4, 30)), DayWindow(dt.date(2018, 5, 1), dt.date(2018, 6, 30)),
                             DayWindow(dt.date(2018, 7, 1), dt.date(2018, 9, 30)))


def windows_for(split: str, in_sample: bool) -> tuple[Windows, DayWindow]:
    """``(the windows every fit uses, the split's days)`` for ``split``."""
    if split == VALIDATION:
        return (WINDOWS_2018, WINDOWS_2018.threshold) if in_sample else (VALIDATION_WINDOWS, VALIDATION_WINDOWS.held_out)
    return WINDOWS_2018, WINDOWS_2018.held_out


def alarm_sources(rules: RulesDetector, benchmark) -> tuple[collections.Counter, collections.Counter]:
    """Which rule findings alarmed: ``(outside any labelled event, clean days included; inside one)``, counted in
    alarming periods; outside the events, periods on known bad real data are left out, as the benchmark's false-alert
    count leaves them out."""
    outside: collections.Counter = collections.Counter()
    inside: collections.Counter = collections.Counter()
    for k, label in enumerate(benchmark.labels):
        span = event_span(label, benchmark.known_bad.shape[1])
        for t, found in enumerate(rules.findings(benchmark.case(k))):
            within = bool(span[t])
            if not within and benchmark.known_bad[k, t]:
                continue
            for source in {f.source for f in found if f.alert}:
                (inside if within else outside)[source] += 1
    return outside, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=(VALIDATION, HELD_OUT), default=VALIDATION)
    parser.add_argument("--network", default="gb29")
    parser.add_argument("--rules-only", action="store_true")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--false-alarm-rate", type=float, default=FALSE_ALARM_RATE,
                        help="the redundancy checks' alarms per check and normal period (fit_detectors' argument)")
    parser.add_argument("--count-known-bad", action="store_true",
                        help="count alarms on periods of known bad real data as false alerts (as before they were marked; "
                             "the recorded frequency's own excursions stay marked)")
    parser.add_argument("--in-sample", action="store_true",
                        help="fit on the assets' default ranges even for the validation split (which then lies inside them)")
    args = parser.parse_args()

    network = load_network(args.network)
    started = time.perf_counter()
    windows, split = windows_for(args.split, args.in_sample)
    recorded = recorded_2018(Path(tempfile.mkdtemp(prefix="bench_ablation_")) / "hdf5")
    train_days = bundled_snapshot_days(network, windows.training.first, windows.training.last)
    split_days = bundled_snapshot_days(network, split.first, split.last)
    detectors = fit_detectors(recorded, windows, false_alarm_rate=args.false_alarm_rate)
    limits = LoadingHistory.of(train_days, network.n_branches).limits()
    known_bad = [] if args.count_known_bad else known_bad_periods(detectors, recorded.table(split.days(), b1610_days=()), recorded)
    benchmark = build_benchmark(contiguous_sequences(split_days), network, BenchmarkSpec(), known_bad, recorded)
    print(f"{args.split}: {len(benchmark.labels)} cases from {len(split_days)} days, {benchmark.known_bad.mean():.1%} of "
          f"their periods on known bad data; windows {windows.describe()}; training range "
          f"{windows.training.describe()}, {len(train_days)} whole days ({time.perf_counter() - started:.0f} s)")

    rules = RulesDetector(detectors, bus_mapping(network), limits, recorded)
    if args.rules_only:
        started = time.perf_counter()
        outcomes = {rules.name: evaluate(rules, rules.calibration(), benchmark)}
        print(f"rules scored in {time.perf_counter() - started:.0f} s")
    else:  # benchmark_outcomes scores the rules too, with the same calibration and limits
        import torch

        from grid_guardian_assets.verifier.pipeline import benchmark_outcomes, train_verifier

        started = time.perf_counter()
        trained = train_verifier(network, train_days, TrainConfig(epochs=args.epochs), device=torch.device("cpu"))
        print(f"trained in {time.perf_counter() - started:.0f} s")
        scored = benchmark_outcomes(trained, network, benchmark, detectors, limits, recorded)
        outcomes = {name: run.outcomes for name, run in scored.items()}

    with pl.Config(tbl_cols=-1, tbl_rows=-1, tbl_width_chars=250):
        print(summary_table(outcomes).select("detector", "f1", "f1_lo", "f1_hi", "false_alerts_per_clean_day",
                                             "false_alerts_lo", "false_alerts_hi", "mean_delay_min"))
        for name, run in outcomes.items():
            print(name)
            print(summarise(run).select("type", "events", "detected", "false_positives", "f1"))
    traceless = {k for k, label in enumerate(benchmark.labels)
                 if label is not None and national_trace_mw(benchmark.case(k), rules.mapping, range(label.start, label.start + label.duration),
                                                        recorded) < 1.0}
    print("events that change no national reading the live job receives by 1 MW (no detector can find them), by type:",
          dict(collections.Counter(benchmark.labels[k].kind for k in traceless).most_common()))
    trips = [k for k, label in enumerate(benchmark.labels) if label is not None and label.kind == "unit_trip"]
    in_freq = [k for k in trips if trip_frequency_dip_hz(benchmark.labels[k].magnitude, 0.0) >= FREQUENCY_OPERATIONAL_BAND_HZ]
    print(f"unit trips whose frequency nadir (grid.physics) leaves the operational band, which the band rule sees in the "
          f"period's farthest FREQ sample: {len(in_freq)} of {len(trips)}, {len(traceless.intersection(in_freq))} of them "
          "without a national trace")
    if benchmark.untouched_frequency_extreme is not None:
        excursions = frequency_excursions(benchmark.untouched_frequency_extreme)
        clean = [k for k, label in enumerate(benchmark.labels) if label is None]
        print(f"periods whose recorded frequency leaves the operational band (marked with the known bad: the live job's "
              f"alerts there are right): {int(excursions.sum())} of {excursions.size}; on the clean days "
              f"{excursions[clean].sum() / len(clean):.2f} a day")
    outside, inside = alarm_sources(rules, benchmark)
    print("rules' alarming periods outside the events (false alerts), by finding:", dict(outside.most_common()))
    print("rules' alarming periods inside the events, by finding:", dict(inside.most_common()))


if __name__ == "__main__":
    main()
