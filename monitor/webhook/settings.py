"""What the injector puts into a pod when the pod's annotations do not say otherwise.

The chart renders ``injector.sidecar`` from its values into a file that `monitor webhook
--settings FILE` reads; the keys are the values' keys (camelCase, as Helm values are).

>>> InjectionSettings.model_validate({"image": "modeltap-sidecar:1.0", "listenPort": 8700}).native
True
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from modeltap.errors import ConfigError

# A Kubernetes resource quantity (the forms people write: 100m, 0.5, 64Mi, 1G). Checked
# here because a pod patched with a bad quantity is rejected by the API server, and that
# rejection would block the pod although the webhook's own failure never should.
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def check_quantity(value: str) -> str:
    """``value`` if it is a resource quantity such as ``100m`` or ``64Mi``, else ValueError.

    >>> check_quantity("64Mi")
    '64Mi'
    """
    if not _QUANTITY.match(value):
        raise ValueError(f"expected a resource quantity such as 100m or 64Mi, got {value!r}")
    return value


_SCALE = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SCALE |= {f"{prefix}i": 1024.0 ** (n + 1) for n, prefix in enumerate("KMGTPE")}


def quantity_value(value: str) -> float:
    """The number a quantity stands for, to compare a request with its limit.

    >>> quantity_value("100m"), quantity_value("1Ki")
    (0.1, 1024.0)
    """
    match = _QUANTITY.match(check_quantity(value))
    assert match is not None  # checked just above
    suffix = match.group(2) or ""
    return float(value.removesuffix(suffix)) * _SCALE[suffix]


Quantity = Annotated[str, AfterValidator(check_quantity)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Camel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class SecretKey(_Camel):
    """A key of an existing Secret in the pod's namespace (credentials never sit in values)."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class ResourceList(_Camel):
    """CPU and memory quantities; an empty one is left out of the container."""

    cpu: Quantity | None = None
    memory: Quantity | None = None

    def as_dict(self) -> dict[str, str]:
        """The quantities that are set, as the container spec writes them."""
        return {key: value for key, value in (("cpu", self.cpu), ("memory", self.memory)) if value}


class Resources(_Camel):
    """Requests and limits of the sidecar container. No CPU limit by default: throttling
    a proxy adds latency to every call of the model."""

    requests: ResourceList = ResourceList(cpu="50m", memory="64Mi")
    limits: ResourceList = ResourceList(memory="256Mi")


class InjectionSettings(_Camel):
    """Defaults of the injected sidecar; per-pod annotations override most of them."""

    image: str = Field(min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # An init container with restartPolicy Always (Kubernetes 1.29+): ready before the
    # model takes traffic, stopped after it. False: a plain container, for older clusters.
    native: bool = True
    # The sidecar's own ports; the model keeps its port, which the sidecar forwards to.
    listen_port: Port = 8700
    metrics_port: Port = 9108
    # Where captured events go (kafka://host:port/topic, postgresql+psycopg://…); or, with
    # credentials in it, a key of a Secret that exists in the model's namespace.
    sink: str | None = None
    sink_secret: SecretKey | None = None
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    resources: Resources = Resources()
    spool_size_limit: Quantity = "512Mi"
    run_as_user: int = Field(default=65532, ge=1)
    shutdown_grace_seconds: int = Field(default=25, ge=1, le=3600)


def load_settings(path: Path) -> InjectionSettings:
    """Read ``path`` (YAML); a missing file or a wrong key is a ConfigError naming it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read injector settings {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({error})") from None
    try:
        return InjectionSettings.model_validate(data or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
