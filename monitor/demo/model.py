"""The demo's model server: a churn classifier behind KServe v1 and Open Inference v2 routes.

A logistic model with fixed weights, served by aiohttp like any model server the sidecar
may front. It knows nothing about modeltap. Run: python -m monitor.demo.model --port 8080
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from aiohttp import web

FEATURES = ("age", "tenure_months", "plan")
_PLAN_WEIGHT = {"basic": 0.4, "pro": -0.3, "enterprise": -0.8}


def churn_probability(age: float, tenure_months: float, plan: str) -> float:
    """P(churn) from a fixed logistic model: older, newer, cheaper customers leave more."""
    z = 0.045 * (age - 45) - 0.035 * tenure_months + _PLAN_WEIGHT.get(plan, 0.0) + 0.6
    return 1 / (1 + math.exp(-z))


def _row(instance: Any) -> tuple[float, float, str]:
    if isinstance(instance, dict):
        return float(instance["age"]), float(instance["tenure_months"]), str(instance["plan"])
    age, tenure, plan = instance
    return float(age), float(tenure), str(plan)


async def kserve_v1(request: web.Request) -> web.Response:
    try:
        rows = [_row(instance) for instance in (await request.json())["instances"]]
    except (ValueError, KeyError, TypeError) as error:
        return web.json_response({"error": f"bad request: {error}"}, status=400)
    probabilities = [churn_probability(*row) for row in rows]
    return web.json_response({"predictions": [int(p > 0.5) for p in probabilities]})


async def open_inference(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        columns = {tensor["name"]: tensor["data"] for tensor in body["inputs"]}
        rows = list(zip(columns["age"], columns["tenure_months"], columns["plan"], strict=True))
    except (ValueError, KeyError, TypeError) as error:
        return web.json_response({"error": f"bad request: {error}"}, status=400)
    probabilities = [churn_probability(float(a), float(t), str(p)) for a, t, p in rows]
    return web.json_response(
        {
            "model_name": request.match_info["model"],
            "outputs": [
                {
                    "name": "churn",
                    "shape": [len(rows)],
                    "datatype": "INT64",
                    "data": [int(p > 0.5) for p in probabilities],
                },
                {
                    "name": "probability",
                    "shape": [len(rows)],
                    "datatype": "FP32",
                    "data": [round(p, 6) for p in probabilities],
                },
            ],
        }
    )


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"ready": True})


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/v1/models/{model}:predict", kserve_v1)
    application.router.add_post("/v2/models/{model}/infer", open_inference)
    application.router.add_post("/v2/models/{model}/versions/{version}/infer", open_inference)
    application.router.add_get("/v2/health/ready", health)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    arguments = parser.parse_args()
    web.run_app(app(), host="127.0.0.1", port=arguments.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
