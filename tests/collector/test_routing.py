from __future__ import annotations

import pytest

from collector.routing import Route, resolve


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/models/churn:predict", Route("churn", None, "kserve_v1")),
        ("/v1/models/churn:explain", Route("churn", None, "kserve_v1")),
        ("/v2/models/churn/infer", Route("churn", None, "oip_v2")),
        ("/v2/models/churn/versions/7/infer", Route("churn", "7", "oip_v2")),
        ("/v2/models/churn", Route()),  # metadata, not inference
        ("/v1/models/churn", Route()),
        ("/predict", Route()),
        ("/v2/models//infer", Route()),
    ],
)
def test_kserve_and_open_inference_paths(path: str, expected: Route) -> None:
    assert resolve(path) == expected
