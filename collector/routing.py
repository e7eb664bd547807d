"""What a request path says: the model, its version, and the inference protocol."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Protocol = Literal["kserve_v1", "oip_v2"]

_KSERVE_V1 = re.compile(r"^/v1/models/(?P<model>[^/:]+):(?P<verb>predict|explain)$")
_OIP_V2 = re.compile(
    r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/(?P<verb>infer|generate)$"
)


@dataclass(frozen=True, slots=True)
class Route:
    """The parts of a request path modeltap cares about; None where the path is silent."""

    model: str | None = None
    version: str | None = None
    protocol: Protocol | None = None


def resolve(path: str) -> Route:
    """Parse KServe v1 and Open Inference Protocol v2 paths.

    >>> resolve("/v2/models/churn/versions/3/infer")
    Route(model='churn', version='3', protocol='oip_v2')
    >>> resolve("/v1/models/churn:predict")
    Route(model='churn', version=None, protocol='kserve_v1')
    >>> resolve("/score")
    Route(model=None, version=None, protocol=None)
    """
    match = _KSERVE_V1.match(path)
    if match:
        return Route(match.group("model"), None, "kserve_v1")
    match = _OIP_V2.match(path)
    if match:
        return Route(match.group("model"), match.group("version"), "oip_v2")
    return Route()
