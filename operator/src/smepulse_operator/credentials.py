"""Where the API server is and how to authenticate to it, without the ``kubernetes`` package.

Resolved once per process from the settings, in kubectl's order:

1. a kubeconfig named by ``SMEPULSE_KUBECONFIG``, else ``$KUBECONFIG`` (a list of files; for
   each entry the first file that names it wins, as kubectl merges them);
2. else in-cluster: the service account's token and CA, the API server from
   ``KUBERNETES_SERVICE_HOST``/``_PORT`` (the address Kubernetes puts in every container, so no
   cluster DNS is needed);
3. else ``~/.kube/config``.

A kubeconfig user may hold a bearer token, a token file, or a client certificate and key
(as files or inline ``-data``). A user that needs an ``exec`` or ``auth-provider`` credential
plugin (EKS, GKE, OIDC logins) is handed to the ``kubernetes`` package when it is installed
(the CLI); the operator image does not have it and says so.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from smepulse.errors import ConfigError
from smepulse.settings import Settings

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REFRESH_SECONDS = 60.0  # projected service-account tokens rotate; re-read the file


@dataclass
class Credentials:
    server: str
    ca_file: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    namespace: str | None = None
    delegate: str | None = None  # kubeconfig path to hand to the kubernetes package (exec users)
    _read_at: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bearer_token(self) -> str | None:
        """The token to send; a token file is re-read at most every minute (rotation)."""
        if self.token_file is None:
            return self.token
        with self._lock:
            if time.monotonic() - self._read_at > TOKEN_REFRESH_SECONDS or self.token is None:
                try:
                    self.token = Path(self.token_file).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ConfigError(
                        f"cannot read the API token {self.token_file}: {exc}"
                    ) from None
                self._read_at = time.monotonic()
            return self.token

    def refresh_delegated(self) -> str | None:
        """Run the kubeconfig's credential plugin again (its token expired)."""
        return _delegated_token(self.delegate) if self.delegate else self.token


def load_credentials(settings: Settings) -> Credentials:
    """The credentials of the settings (see the module docstring); ConfigError naming what is
    missing or malformed, and where."""
    if settings.kubeconfig is not None:
        return from_kubeconfig(str(settings.kubeconfig).split(os.pathsep))
    token = SERVICE_ACCOUNT / "token"
    if token.exists() and settings.kubernetes_service_host:
        host = settings.kubernetes_service_host
        host = f"[{host}]" if ":" in host else host  # an IPv6 address
        ns_file = SERVICE_ACCOUNT / "namespace"
        ca = SERVICE_ACCOUNT / "ca.crt"
        return Credentials(
            server=f"https://{host}:{settings.kubernetes_service_port}",
            ca_file=str(ca) if ca.exists() else None,
            token_file=str(token),
            namespace=ns_file.read_text(encoding="utf-8").strip() if ns_file.exists() else None,
        )
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return from_kubeconfig([str(default)])
    raise ConfigError(
        "no Kubernetes credentials: not in a cluster and no kubeconfig "
        "(set SMEPULSE_KUBECONFIG or KUBECONFIG, or create ~/.kube/config)"
    )


def from_kubeconfig(paths: list[str]) -> Credentials:
    """The current context's cluster and user, merged over ``paths`` the way kubectl does."""
    files = [Path(p).expanduser() for p in paths if p]
    merged: dict[str, dict[str, Any]] = {"contexts": {}, "clusters": {}, "users": {}}
    current: str | None = None
    origin: dict[tuple[str, str], Path] = {}  # (section, name) -> the file it came from
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            continue  # kubectl skips missing entries of $KUBECONFIG
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"kubeconfig {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path}: not a kubeconfig (a YAML mapping expected)")
        current = current or doc.get("current-context")
        for section, key in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in doc.get(section) or []:
                name = str(item.get("name", ""))
                if name not in merged[section]:
                    merged[section][name] = item.get(key) or {}
                    origin[(section, name)] = path
    where = ", ".join(str(p) for p in files) or "(no file)"
    if not current:
        raise ConfigError(f"kubeconfig {where}: no current-context")
    context = merged["contexts"].get(current)
    if context is None:
        raise ConfigError(f"kubeconfig {where}: current-context {current!r} is not defined")
    cluster = merged["clusters"].get(str(context.get("cluster")))
    user = merged["users"].get(str(context.get("user")), {})
    if not cluster or not cluster.get("server"):
        raise ConfigError(
            f"kubeconfig {where}: context {current!r} names cluster {context.get('cluster')!r}, "
            "which is missing or has no server"
        )
    base = origin[("clusters", str(context.get("cluster")))].parent
    ubase = origin.get(("users", str(context.get("user"))), base).parent
    creds = Credentials(
        server=str(cluster["server"]),
        ca_file=_path(base, cluster.get("certificate-authority"))
        or _temp(cluster.get("certificate-authority-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=user.get("token"),
        token_file=_path(ubase, user.get("tokenFile")),
        namespace=context.get("namespace"),
    )
    creds.cert_file = _path(ubase, user.get("client-certificate")) or _temp(
        user.get("client-certificate-data")
    )
    creds.key_file = _path(ubase, user.get("client-key")) or _temp(user.get("client-key-data"))
    if user.get("exec") or user.get("auth-provider"):
        creds.delegate = str(origin[("users", str(context.get("user")))])
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"kubeconfig {creds.delegate}: user {context.get('user')!r} needs an exec or "
                "auth-provider credential plugin, which this install cannot run (no `kubernetes` "
                "package); give it a token or a client certificate"
            ) from None
        creds.token = _delegated_token(creds.delegate)
    return creds


def _delegated_token(path: str) -> str | None:
    """Run the user's credential plugin through the kubernetes package; the bearer token."""
    from kubernetes import client, config

    conf = client.Configuration()
    config.load_kube_config(config_file=path, client_configuration=conf)
    header = conf.get_api_key_with_prefix("authorization") or ""
    return header.removeprefix("Bearer ").strip() or None


def _path(base: Path, value: Any) -> str | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else base / path)


def _temp(value: Any) -> str | None:
    """Inline CA/certificate/key data as a private file (TLS libraries load them from files)."""
    if not value:
        return None
    fd, name = tempfile.mkstemp(prefix="smepulse-kube-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(str(value)))
    atexit.register(_remove, name)
    return name


def _remove(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)
