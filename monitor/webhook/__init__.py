"""`monitor webhook`: the mutating admission webhook that injects the capture sidecar.

The parts, each usable alone: ``settings`` (what the chart renders for the injector),
``patch`` (a pod in, the JSON patch that adds the sidecar out; pure), ``review`` (an
AdmissionReview request in, its response out; never raises), ``certs`` (a TLS context that
follows a mounted Secret) and ``server`` (the HTTPS application around them).
"""
