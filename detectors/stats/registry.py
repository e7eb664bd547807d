"""The drift tests, by name, in one explicit registry that refuses duplicate names.

Each test is a small pure function registered with the column kinds it accepts, the
direction that means drift (p-values: lower; distances: higher), its default threshold and
whether a score equal to the threshold already counts (Evidently 0.7's choices: KS and the
distances use ``<=``/``>=``, chi-square and z use ``<``). Nothing registers itself at import
time: ``default_registry()`` builds the registry, and a caller may build its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from detectors.stats import distances, proportions
from detectors.stats import psi as psi_module
from detectors.stats.ks import ks_2samp_sorted
from detectors.stats.outcome import StatResult, beyond, insufficient
from detectors.stats.reference import Kind, NumericalReference
from detectors.stats.samples import CategoryCounts, NumericalSample
from modeltap.errors import InputError
from modeltap.schema import Direction, JsonValue

PsiMode = Literal["quantile", "evidently"]


@dataclass(frozen=True, slots=True)
class NumericalInput:
    """A numerical column: the fitted reference and the window's finite values."""

    reference: NumericalReference
    current: NumericalSample


@dataclass(frozen=True, slots=True)
class CategoricalInput:
    """Category counts of the reference and of the window."""

    reference: CategoryCounts
    current: CategoryCounts


TestInput = NumericalInput | CategoricalInput


@dataclass(frozen=True, slots=True)
class Options:
    """Settings a test may read; ``psi_mode`` picks quantile bins or Evidently's binning."""

    psi_mode: PsiMode = "quantile"


@dataclass(frozen=True, slots=True)
class Computed:
    """A test's raw answer: the score the threshold applies to, and what led to it."""

    score: float
    statistic: float | None = None
    reference_size: int | None = None
    details: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatTest:
    """A registered test: how to compute it and how to read its score."""

    name: str
    kinds: frozenset[Kind]
    direction: Direction
    default_threshold: float
    inclusive: bool
    compute: Callable[[TestInput, Options], Computed]
    summary: str

    def run(
        self,
        data: TestInput,
        *,
        threshold: float | None = None,
        options: Options = Options(),
        min_reference_size: int = 1,
        min_current_size: int = 1,
    ) -> StatResult:
        """Score ``data``, or report insufficient data below the minimum sizes.

        >>> from detectors.stats.samples import CategoryCounts as C
        >>> data = CategoricalInput(C.from_mapping({"a": 50}), C.from_mapping({"a": 50}))
        >>> default_registry().get("chisquare").run(data).drifted
        False
        """
        limit = self.default_threshold if threshold is None else threshold
        ref_size = _reference_size(data)
        cur_size = _current_size(data)
        if ref_size < min_reference_size or cur_size < min_current_size:
            return insufficient(
                self.name,
                threshold=limit,
                direction=self.direction,
                reference_size=ref_size,
                current_size=cur_size,
                reason=f"needs at least {min_reference_size} reference and {min_current_size} "
                f"current values",
            )
        computed = self.compute(data, options)
        return StatResult(
            test=self.name,
            status="ok",
            score=computed.score,
            statistic=computed.statistic,
            threshold=limit,
            direction=self.direction,
            drifted=beyond(computed.score, limit, self.direction, inclusive=self.inclusive),
            reference_size=computed.reference_size or ref_size,
            current_size=cur_size,
            details=computed.details,
        )


class Registry:
    """Tests by name; registering a name twice is an error, and so is asking for an unknown one.

    >>> registry = Registry()
    >>> registry.register(default_registry().get("ks"))
    >>> registry.names()
    ['ks']
    """

    def __init__(self, tests: Iterable[StatTest] = ()) -> None:
        self._tests: dict[str, StatTest] = {}
        for test in tests:
            self.register(test)

    def register(self, test: StatTest) -> None:
        if test.name in self._tests:
            raise ValueError(f"a drift test named {test.name!r} is already registered")
        self._tests[test.name] = test

    def get(self, name: str, kind: Kind | None = None) -> StatTest:
        """The test called ``name`` (that accepts ``kind``, when given)."""
        test = self._tests.get(name)
        if test is None:
            raise InputError(f"unknown drift test {name!r}; registered: {', '.join(self.names())}")
        if kind is not None and kind not in test.kinds:
            raise InputError(
                f"drift test {name!r} does not apply to {kind} columns; "
                f"for those use one of: {', '.join(self.names(kind))}"
            )
        return test

    def names(self, kind: Kind | None = None) -> list[str]:
        return sorted(
            name for name, test in self._tests.items() if kind is None or kind in test.kinds
        )

    def __iter__(self) -> Iterator[StatTest]:
        return iter(self._tests.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tests


def _reference_size(data: TestInput) -> int:
    return data.reference.size


def _current_size(data: TestInput) -> int:
    return data.current.size


def _ks(data: TestInput, _options: Options) -> Computed:
    numerical = _numerical(data, "ks")
    result = ks_2samp_sorted(numerical.reference.sample, numerical.current.sorted)
    return Computed(
        result.pvalue,
        result.statistic,
        int(numerical.reference.sample.size),
        {"method": result.method},
    )


def _psi(data: TestInput, options: Options) -> Computed:
    evidently = options.psi_mode == "evidently"
    if isinstance(data, NumericalInput):
        if evidently:
            sample = data.reference.sample
            value = psi_module.psi_evidently_numerical(sample, data.current.sorted)
            return Computed(value, None, int(sample.size), {"bins": "evidently"})
        counts = psi_module.bin_counts(data.current.sorted, data.reference.edges)
        value = psi_module.psi(data.reference.shares, counts / data.current.size)
        return Computed(value, None, None, {"bins": int(counts.size)})
    if evidently:
        value = psi_module.psi_evidently_categorical(data.reference, data.current)
        return Computed(value, None, None, {"bins": "evidently"})
    expected, actual = psi_module.categorical_shares(data.reference, data.current)
    return Computed(psi_module.psi(expected, actual), None, None, {"bins": int(expected.size)})


def _chisquare(data: TestInput, _options: Options) -> Computed:
    categorical = _categorical(data, "chisquare")
    result = proportions.chisquare_counts(categorical.reference, categorical.current)
    return Computed(result.pvalue, result.statistic)


def _z(data: TestInput, _options: Options) -> Computed:
    categorical = _categorical(data, "z")
    result = proportions.binary_ztest(categorical.reference, categorical.current)
    return Computed(result.pvalue, result.z, None, {"difference": result.difference})


def _jensenshannon(data: TestInput, _options: Options) -> Computed:
    if isinstance(data, NumericalInput):
        sample = data.reference.sample
        value = distances.jensenshannon_numerical(sample, data.current.sorted)
        return Computed(value, None, int(sample.size))
    return Computed(distances.jensenshannon_categorical(data.reference, data.current))


def _wasserstein(data: TestInput, _options: Options) -> Computed:
    numerical = _numerical(data, "wasserstein")
    sample = numerical.reference.sample
    value = distances.wasserstein_norm(sample, numerical.current.sorted, numerical.reference.std)
    return Computed(value, None, int(sample.size))


def _numerical(data: TestInput, name: str) -> NumericalInput:
    if not isinstance(data, NumericalInput):
        raise InputError(f"drift test {name!r} needs numerical data")
    return data


def _categorical(data: TestInput, name: str) -> CategoricalInput:
    if not isinstance(data, CategoricalInput):
        raise InputError(f"drift test {name!r} needs category counts")
    return data


_BOTH: frozenset[Kind] = frozenset({"numerical", "categorical"})
_NUMERICAL: frozenset[Kind] = frozenset({"numerical"})
_CATEGORICAL: frozenset[Kind] = frozenset({"categorical"})


def default_registry() -> Registry:
    """The six built-in tests; thresholds are Evidently 0.7's defaults except PSI's 0.2.

    >>> default_registry().names()
    ['chisquare', 'jensenshannon', 'ks', 'psi', 'wasserstein', 'z']
    """
    return Registry(
        [
            StatTest(
                name="ks",
                kinds=_NUMERICAL,
                direction="lower",
                default_threshold=0.05,
                inclusive=True,
                compute=_ks,
                summary="two-sample Kolmogorov-Smirnov p-value",
            ),
            StatTest(
                name="psi",
                kinds=_BOTH,
                direction="higher",
                default_threshold=0.2,
                inclusive=True,
                compute=_psi,
                summary="population stability index",
            ),
            StatTest(
                name="chisquare",
                kinds=_CATEGORICAL,
                direction="lower",
                default_threshold=0.05,
                inclusive=False,
                compute=_chisquare,
                summary="chi-square p-value",
            ),
            StatTest(
                name="z",
                kinds=_CATEGORICAL,
                direction="lower",
                default_threshold=0.05,
                inclusive=False,
                compute=_z,
                summary="two-proportion z-test p-value",
            ),
            StatTest(
                name="jensenshannon",
                kinds=_BOTH,
                direction="higher",
                default_threshold=0.1,
                inclusive=True,
                compute=_jensenshannon,
                summary="Jensen-Shannon distance",
            ),
            StatTest(
                name="wasserstein",
                kinds=_NUMERICAL,
                direction="higher",
                default_threshold=0.1,
                inclusive=True,
                compute=_wasserstein,
                summary="Wasserstein distance in reference standard deviations",
            ),
        ]
    )
