"""`monitor demo`: a churn model's history through the store, every detector, then live traffic
through a real sidecar in front of a real model server."""
