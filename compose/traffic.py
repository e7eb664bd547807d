"""Synthetic callers for docker-compose.yml's `traffic` profile: churn requests at a steady rate.

Posts KServe v1 requests for the demo's churn model to the sidecar (stdlib only, so it runs
in either image). After ``--drift-after`` seconds the callers get older and cheaper plans
take over, which the drift detectors and alerts should notice.
Run: python traffic.py --url http://model:8000 --rps 5 [--drift-after 1800]
"""

from __future__ import annotations

import argparse
import json
import random
import time
import urllib.error
import urllib.request


def instance(rng: random.Random, drifted: bool) -> dict[str, object]:
    age = rng.gauss(52 if drifted else 40, 11)
    plans = ["basic", "pro", "enterprise"]
    weights = [0.7, 0.2, 0.1] if drifted else [0.45, 0.35, 0.2]
    return {
        "age": round(max(age, 18.0), 1),
        "tenure_months": rng.randint(0, 72),
        "plan": rng.choices(plans, weights)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://model:8000")
    parser.add_argument("--rps", type=float, default=5.0)
    parser.add_argument("--drift-after", type=float, default=0.0, help="seconds; 0: never")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    if not options.url.startswith(("http://", "https://")):
        parser.error("--url must be http:// or https://")
    rng = random.Random(options.seed)
    started = time.monotonic()
    sent = failed = 0
    while True:
        elapsed = time.monotonic() - started
        drifted = options.drift_after > 0 and elapsed >= options.drift_after
        rows = [instance(rng, drifted) for _ in range(rng.randint(1, 3))]
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            f"{options.url}/v1/models/churn:predict",
            data=json.dumps({"instances": rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                response.read()
        except (urllib.error.URLError, OSError):
            failed += 1  # the stack may still be starting; keep going
        sent += 1
        if sent % 500 == 0:
            print(f"traffic: {sent} requests sent, {failed} failed", flush=True)
        time.sleep(max(0.0, started + sent / options.rps - time.monotonic()))


if __name__ == "__main__":
    main()
