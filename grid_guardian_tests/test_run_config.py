"""The Dagster run config of the training assets against the domain's config dataclasses it is declared from."""

import dataclasses

import dagster as dg
import pytest

from grid_guardian_assets.defs.domain_config import from_domain, to_domain
from grid_guardian_assets.defs.selfplay.assets import SELF_PLAY_RUN_FIELDS, SelfPlayConfig
from grid_guardian_assets.defs.verifier.assets import BENCHMARK_RUN_FIELDS, VERIFIER_RUN_FIELDS, BenchmarkConfig, VerifierConfig
from grid_guardian_assets.selfplay.round_config import RoundConfig
from grid_guardian_assets.verifier.benchmark_config import BenchmarkSpec
from grid_guardian_assets.verifier.train_config import TrainConfig

PAIRS = [(VerifierConfig, TrainConfig, VERIFIER_RUN_FIELDS), (SelfPlayConfig, RoundConfig, SELF_PLAY_RUN_FIELDS),
         (BenchmarkConfig, BenchmarkSpec, BENCHMARK_RUN_FIELDS)]


@pytest.mark.parametrize(("dagster_config", "domain", "run_fields"), PAIRS, ids=lambda c: getattr(c, "__name__", "run_fields"))
def test_dagster_config_declares_the_domain_fields_with_their_types_and_defaults(dagster_config: type[dg.Config], domain: type,
                                                                                 run_fields: frozenset[str]) -> None:
    declared = dagster_config.model_fields
    assert run_fields <= declared.keys()
    domain_fields = {f.name: f for f in dataclasses.fields(domain)}
    assert declared.keys() - run_fields == domain_fields.keys()
    for name, spec in domain_fields.items():
        assert declared[name].annotation is spec.type, name
        assert declared[name].default == spec.default, name
    assert all(field.description for field in declared.values())  # the config UI says what each knob is
    assert to_domain(domain, dagster_config(), run_fields=run_fields) == domain()


def test_to_domain_refuses_a_field_that_one_side_lacks() -> None:
    @dataclasses.dataclass
    class Knobs:
        steps: int = dataclasses.field(default=3, metadata={"doc": "Steps."})

    class Renamed(dg.Config):
        step_count: int = 3

    class Declared(dg.Config):
        steps: int = from_domain(Knobs, "steps")

    with pytest.raises(TypeError, match=r"only in the Dagster config \['step_count'\], only in Knobs \['steps'\]"):
        to_domain(Knobs, Renamed())
    assert to_domain(Knobs, Declared(steps=5)) == Knobs(5)
    assert Declared.model_fields["steps"].description == "Steps."
