# modeltap's images, two targets from one file:
#   full     (image "modeltap")          every command: collect, serve, detect, check, ...
#   sidecar  (image "modeltap-sidecar")  `monitor sidecar` alone, without numpy/scipy/pandas/pyarrow
# scripts/image.sh builds both on a Debian base made with mmdebstrap (no image registry is
# needed); with a registry at hand, any Debian-like image with python3 >= 3.11 and
# python3-venv will do:  --build-arg BASE=docker.io/library/debian:bookworm-slim plus those.
ARG BASE=localhost/modeltap-base:bookworm

# ---------------------------------------------------------------- build: the virtualenvs
FROM ${BASE} AS build-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml or the
# pins change, not on every change of the code (or of the README, which comes later).
COPY pyproject.toml constraints.txt ./
COPY scripts/image_requirements.py scripts/

FROM build-base AS build-full
# Extras of the full image; reports (Evidently) is large, so opt in.
ARG EXTRAS=grafana
RUN python3 -m venv /opt/modeltap \
 && python3 scripts/image_requirements.py full "$EXTRAS" > /tmp/requirements.txt \
 && /opt/modeltap/bin/pip install --quiet -c constraints.txt -r /tmp/requirements.txt
COPY modeltap modeltap
COPY collector collector
COPY detectors detectors
COPY exporters exporters
COPY monitor monitor
COPY README.md ./
# The same step as `make venv` (pinned by constraints.txt), without --editable.
RUN /opt/modeltap/bin/pip install --quiet --no-deps -c constraints.txt . \
 && rm -rf /src

FROM build-base AS build-sidecar
RUN python3 -m venv /opt/modeltap \
 && python3 scripts/image_requirements.py sidecar > /tmp/requirements.txt \
 && /opt/modeltap/bin/pip install --quiet -c constraints.txt -r /tmp/requirements.txt
COPY modeltap modeltap
COPY collector collector
COPY detectors detectors
COPY exporters exporters
COPY monitor monitor
COPY README.md ./
RUN /opt/modeltap/bin/pip install --quiet --no-deps -c constraints.txt . \
 && rm -rf /src \
 && if /opt/modeltap/bin/python -c 'import numpy' 2>/dev/null; then \
      echo 'numpy reached the sidecar image' >&2; exit 1; fi

# ---------------------------------------------------------------- runtime
FROM ${BASE} AS runtime
# A fixed non-root uid/gid (65532, as distroless images use; the Helm chart and the
# injector run the sidecar as it), written directly: the base need not carry passwd.
RUN echo 'modeltap:x:65532:65532:modeltap:/var/lib/modeltap:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'modeltap:x:65532:' >> /etc/group \
 && mkdir -p /var/lib/modeltap/spool \
 && chown -R 65532:65532 /var/lib/modeltap
ENV PATH=/opt/modeltap/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_SIDECAR__SPOOL_DIR=/var/lib/modeltap/spool
WORKDIR /var/lib/modeltap
USER 65532:65532
ENTRYPOINT ["monitor"]
# What the health check asks; set it per process (the sidecar's /healthz is on
# sidecar.metrics_listen, `monitor serve`'s on serve.listen).
ENV MODELTAP_HEALTHCHECK_URL=http://127.0.0.1:9108/healthz
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['MODELTAP_HEALTHCHECK_URL'], timeout=4)"]
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="modeltap" \
      org.opencontainers.image.description="Monitoring and drift detection for machine-learning models in production" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE}"

FROM runtime AS sidecar
COPY --from=build-sidecar /opt/modeltap /opt/modeltap
LABEL org.opencontainers.image.title="modeltap-sidecar" \
      org.opencontainers.image.description="modeltap's capture sidecar: proxy, queue, spool, sinks"
EXPOSE 8000 9108
CMD ["sidecar"]

# The last stage is what a plain `docker build .` gives: the full image.
FROM runtime AS full
COPY --from=build-full /opt/modeltap /opt/modeltap
ENV MODELTAP_HEALTHCHECK_URL=http://127.0.0.1:8001/healthz
EXPOSE 8000 8001 9108 9109 9110
CMD ["--help"]
