"""`monitor reference set|show`: fit from a file or from stored traffic (CliRunner)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from detectors.profile import Profile
from detectors.stats.reference import CategoricalReference, NumericalReference
from modeltap.store import SqlStore, open_store
from monitor.cli import cli
from tests.detectors.traffic import MODEL, Traffic, write

T0 = datetime(2026, 11, 25, tzinfo=UTC)
CONFIG = """
storage: {{url: "{url}"}}
models:
  - name: churn
    task: classification
    segment_by: plan
    features:
      - {{name: age, type: numerical}}
      - {{name: tenure, type: numerical}}
      - {{name: plan, type: categorical}}
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(url=url))
    return config, url


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "reference", *args])


def test_fit_from_a_file_and_show_it(setup: tuple[Path, str], tmp_path: Path) -> None:
    config, url = setup
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 5000),
            "tenure": rng.integers(1, 72, 5000),
            "plan": rng.choice(["basic", "pro"], 5000),
            "prediction": rng.integers(0, 2, 5000),
        }
    )
    data.loc[:99, "age"] = None
    data.to_csv(tmp_path / "train.csv", index=False)
    result = run(config, "set", "--model", "churn", "--file", str(tmp_path / "train.csv"))
    assert result.exit_code == 0, result.output
    assert "stored reference profile 1 for churn (every version): 5000 rows" in result.output
    assert "2 segment(s) of plan" in result.output
    again = run(
        config, "set", "--model", "churn", "--file", str(tmp_path / "train.csv"), "--version", "v2"
    )
    assert "profile 1 for churn (version v2)" in again.output
    store = SqlStore.open(url)
    stored = store.get_reference(MODEL, "")
    store.close()
    assert stored is not None
    profile = Profile.from_json(stored.profile)
    age = profile.columns["age"]
    assert isinstance(age, NumericalReference)
    assert (age.rows, age.missing) == (5000, 100)
    assert isinstance(profile.columns["plan"], CategoricalReference)
    assert profile.prediction is not None
    shown = run(config, "show", "--model", "churn")
    assert shown.exit_code == 0, shown.output
    assert "5000 rows" in shown.output
    assert "tenure" in shown.output


def test_fit_from_stored_traffic(setup: tuple[Path, str]) -> None:
    config, url = setup
    store = SqlStore.open(url, migrate=True)
    write(store, [Traffic(T0, T0.replace(hour=3), per_hour=500)])
    store.close()
    result = run(
        config,
        "set",
        "--model",
        "churn",
        "--start",
        "2026-11-25T00:00:00Z",
        "--end",
        "2026-11-25T02:00:00+00:00",
    )
    assert result.exit_code == 0, result.output
    assert "from traffic 2026-11-25T00:00:00+00:00 .. 2026-11-25T02:00:00+00:00" in result.output
    rows = int(result.output.split(": ")[1].split(" rows")[0])
    assert 900 <= rows <= 1000  # 500 requests an hour, 1% of them failed without predictions


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "--model", "churn"], "give either --file, or --start and --end"),
        (["set", "--model", "nope", "--file", "x.csv"], "model 'nope' is not configured"),
        (
            ["set", "--model", "churn", "--start", "2026-11-25T00:00"],
            "--start and --end go together",
        ),
        (
            ["set", "--model", "churn", "--start", "2026-11-25T00:00", "--end", "2026-11-26T00:00"],
            "has no timezone",
        ),
        (
            [
                "set",
                "--model",
                "churn",
                "--start",
                "2026-11-25T00:00Z",
                "--end",
                "2026-11-26T00:00Z",
            ],
            "has no rows",
        ),
        (["show", "--model", "churn"], "fit one with `monitor reference set`"),
    ],
)
def test_usage_errors_exit_2(setup: tuple[Path, str], args: list[str], message: str) -> None:
    result = run(setup[0], *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def reference_rows(
    size: int, *, columns: tuple[str, ...] = ("age", "tenure", "plan")
) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    every = {
        "age": rng.normal(40, 10, size),
        "tenure": rng.integers(1, 72, size),
        "plan": rng.choice(["basic", "pro"], size),
    }
    return pd.DataFrame({name: every[name] for name in columns})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            reference_rows(150, columns=("age", "plan")),
            "has no column for 1 of the 3 features of model 'churn' (tenure)",
        ),
        (
            reference_rows(150).assign(tenure=np.nan),
            "feature(s) tenure of model 'churn' have no usable value in the reference's 150 rows",
        ),
        (
            reference_rows(9),
            "has 9 rows and drift needs detectors.drift.min_reference_size = 30",
        ),
    ],
    ids=["a feature's column absent", "a feature all missing", "fewer rows than the minimum"],
)
def test_a_reference_the_tests_cannot_use_is_refused_and_nothing_stored(
    setup: tuple[Path, str], tmp_path: Path, frame: pd.DataFrame, message: str
) -> None:
    config, url = setup
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = run(config, "set", "--model", "churn", "--file", str(tmp_path / "bad.csv"))
    assert result.exit_code == 2
    assert message in result.output
    store = open_store(url)
    assert store.get_reference(MODEL, "") is None
    store.close()


def test_show_names_the_model_version_and_the_profile_number(
    setup: tuple[Path, str], tmp_path: Path
) -> None:
    config, _ = setup
    reference_rows(300).to_csv(tmp_path / "v2.csv", index=False)
    run(config, "set", "--model", "churn", "--file", str(tmp_path / "v2.csv"), "--version", "v2")
    shown = run(config, "show", "--model", "churn", "--version", "v2")
    assert shown.exit_code == 0, shown.output
    assert "churn (version v2): reference profile 1 from file" in " ".join(shown.output.split())
