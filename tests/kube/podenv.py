"""A container's process environment, built the way kubelet builds it.

Order: the node's base environment, then ``envFrom`` sources in order (ConfigMaps and
Secrets, with ``prefix``; keys that are not valid variable names are skipped), then ``env``
entries in order (plain ``value`` with ``$(VAR)`` expansion, or ``valueFrom`` a
``configMapKeyRef``, ``secretKeyRef`` or a simple ``fieldRef``). A missing, non-optional
ConfigMap/Secret/key raises :class:`ConfigError` (kubelet's CreateContainerConfigError).

The API reads are injected (``read_config_map``/``read_secret``), so this module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# (namespace, name) -> the object's string data, or None when it does not exist.
Reader = Callable[[str, str], Mapping[str, str] | None]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_LABEL_REF = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")
NODE_IP = "127.0.0.1"


class ConfigError(Exception):
    """The environment cannot be built (yet): a reference points at nothing."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, unknown ones kept as
    written, ``$$`` is an escaped ``$`` (kubelet does this for env values, command, args)."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(repl, text)


def container_env(
    pod: Any,
    container: Any,
    base_env: Mapping[str, str],
    read_config_map: Reader,
    read_secret: Reader,
) -> dict[str, str]:
    """The environment for ``container`` of ``pod`` (kubernetes client models)."""
    ns = pod.metadata.namespace
    env = dict(base_env)
    env["HOSTNAME"] = pod.metadata.name
    for src in container.env_from or []:
        if src.config_map_ref is not None:
            ref, kind, read = src.config_map_ref, "configmap", read_config_map
        elif src.secret_ref is not None:
            ref, kind, read = src.secret_ref, "secret", read_secret
        else:
            continue
        data = read(ns, ref.name)
        if data is None and not ref.optional:
            raise ConfigError(f'{kind} "{ref.name}" not found')
        prefix = src.prefix or ""
        for key, value in (data or {}).items():
            if _ENV_NAME.match(prefix + key):
                env[prefix + key] = value
    for var in container.env or []:
        if var.value_from is None:
            env[var.name] = expand(var.value or "", env)
            continue
        resolved = _value_from(pod, var.name, var.value_from, read_config_map, read_secret)
        if resolved is not None:
            env[var.name] = resolved
    return env


def _value_from(
    pod: Any, var: str, src: Any, read_config_map: Reader, read_secret: Reader
) -> str | None:
    if src.field_ref is not None:
        return field_ref(pod, src.field_ref.field_path)
    if src.config_map_key_ref is not None:
        return _key(pod, src.config_map_key_ref, "configmap", read_config_map, var)
    if src.secret_key_ref is not None:
        return _key(pod, src.secret_key_ref, "secret", read_secret, var)
    raise ConfigError(
        f"env {var}: only fieldRef, configMapKeyRef and secretKeyRef are supported "
        "by the node stand-in"
    )


def _key(pod: Any, ref: Any, kind: str, read: Reader, var: str) -> str | None:
    data = read(pod.metadata.namespace, ref.name)
    if data is not None and ref.key in data:
        return data[ref.key]
    if ref.optional:
        return None
    if data is None:
        raise ConfigError(f'env {var}: {kind} "{ref.name}" not found')
    raise ConfigError(f'env {var}: key "{ref.key}" not found in {kind} "{ref.name}"')


_FIELD_PATHS: dict[str, Callable[[Any], str | None]] = {
    "metadata.name": lambda p: p.metadata.name,
    "metadata.namespace": lambda p: p.metadata.namespace,
    "metadata.uid": lambda p: p.metadata.uid,
    "spec.nodeName": lambda p: p.spec.node_name,
    "spec.serviceAccountName": lambda p: p.spec.service_account_name,
    "status.hostIP": lambda p: NODE_IP,
    "status.podIP": lambda p: NODE_IP,
}


def field_ref(pod: Any, path: str) -> str:
    """Value of a downward-API ``fieldRef`` (the common paths, labels and annotations)."""
    m = _LABEL_REF.fullmatch(path)
    if m:
        values = getattr(pod.metadata, m.group(1)) or {}
        return str(values.get(m.group(2), ""))
    if path not in _FIELD_PATHS:
        raise ConfigError(f"fieldRef {path!r} is not supported by the node stand-in")
    return _FIELD_PATHS[path](pod) or ""
