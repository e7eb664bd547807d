"""User files are read as written: every double the text names, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.history import _chunks
from modeltap.files import read_table


def _doubles() -> list[float]:
    rng = np.random.default_rng(11)
    values = [float(v) for v in rng.uniform(0, 1, 500)]
    values += [float(v) for v in rng.normal(0, 1e6, 500)]
    return [*values, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 1 / 3]


@pytest.mark.parametrize("kind", ["csv", "tsv"])
def test_a_table_file_reads_every_double_exactly(tmp_path: Path, kind: str) -> None:
    values = _doubles()
    sep = "\t" if kind == "tsv" else ","
    file = tmp_path / f"t.{kind}"
    file.write_text("x" + sep + "y\n" + "".join(f"{v!r}{sep}a\n" for v in values))
    read = read_table(file)["x"].to_numpy()
    assert read.tobytes() == np.array(values).tobytes()


def test_history_files_read_every_double_exactly_in_every_chunk(tmp_path: Path) -> None:
    values = _doubles()
    file = tmp_path / "history.csv"
    file.write_text("x\n" + "".join(f"{v!r}\n" for v in values))
    chunks = list(_chunks(file, "csv", rows=300))
    assert len(chunks) == 4
    read = np.concatenate([chunk["x"].to_numpy() for chunk in chunks])
    assert read.tobytes() == np.array(values).tobytes()
