"""Credentials without the ``kubernetes`` package (smepulse_operator.credentials): kubeconfig
files as kubectl reads them, in-cluster service accounts, and clear errors. The API calls made
with them are tested against the real API server (tests/integration/operator)."""

from __future__ import annotations

import base64
import datetime as dt
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from smepulse.errors import ConfigError, StageError
from smepulse.settings import Settings
from smepulse_operator import credentials
from smepulse_operator.credentials import from_kubeconfig, load_credentials
from smepulse_operator.kube import default_namespace

pytestmark = pytest.mark.unit


def kubeconfig(path: Path, current: str | None, contexts: dict[str, Any], **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
        **extra,
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def test_relative_paths_are_relative_to_the_kubeconfig_and_inline_data_becomes_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "pki").mkdir()
    cfg = kubeconfig(
        tmp_path / "config",
        "dev",
        {"dev": {"cluster": "c", "user": "u", "namespace": "team-a"}},
        clusters=[{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                            "certificate-authority": "pki/ca.crt"}}],
        users=[{"name": "u", "user": {
            "client-certificate-data": base64.b64encode(b"CERT PEM").decode(),
            "client-key": "pki/u.key",
        }}],
    )  # fmt: skip
    creds = from_kubeconfig([str(cfg)])
    assert creds.server == "https://127.0.0.1:6443"
    assert creds.ca_file == str(tmp_path / "pki" / "ca.crt")
    assert creds.key_file == str(tmp_path / "pki" / "u.key")
    assert creds.cert_file is not None and Path(creds.cert_file).read_bytes() == b"CERT PEM"
    assert Path(creds.cert_file).stat().st_mode & 0o077 == 0  # private to this user
    assert creds.namespace == "team-a" and creds.bearer_token() is None


def test_kubeconfig_list_first_file_wins_like_kubectl(tmp_path: Path) -> None:
    first = kubeconfig(
        tmp_path / "a",
        "prod",
        {"prod": {"cluster": "c", "user": "u"}},
        users=[{"name": "u", "user": {"token": "from-a"}}],
    )
    second = kubeconfig(
        tmp_path / "b",
        "other",
        {"prod": {"cluster": "ignored", "user": "ignored"}},
        clusters=[{"name": "c", "cluster": {"server": "https://10.0.0.1",
                                            "certificate-authority-data": base64.b64encode(
                                                b"-----BEGIN CERTIFICATE-----").decode()}}],
        users=[{"name": "u", "user": {"token": "from-b"}}],
    )  # fmt: skip
    missing = tmp_path / "absent"  # kubectl skips entries that do not exist
    creds = from_kubeconfig([str(missing), str(first), str(second)])
    assert (creds.server, creds.bearer_token()) == ("https://10.0.0.1", "from-a")
    assert creds.ca_file is not None
    assert Path(creds.ca_file).read_text() == "-----BEGIN CERTIFICATE-----"


def test_settings_read_kubeconfig_from_smepulse_then_kubeconfig_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = kubeconfig(
        tmp_path / "a",
        "x",
        {"x": {"cluster": "c", "user": "u", "namespace": "from-a"}},
        clusters=[{"name": "c", "cluster": {"server": "https://a"}}],
    )
    b = kubeconfig(
        tmp_path / "b",
        "x",
        {"x": {"cluster": "c", "user": "u", "namespace": "from-b"}},
        clusters=[{"name": "c", "cluster": {"server": "https://b"}}],
    )
    monkeypatch.setenv("KUBECONFIG", f"{b}:{a}")
    monkeypatch.delenv("SMEPULSE_KUBECONFIG", raising=False)
    monkeypatch.delenv("SMEPULSE_KUBE_NAMESPACE", raising=False)
    assert load_credentials(Settings.load()).server == "https://b"
    assert default_namespace(Settings.load()) == "from-b"
    monkeypatch.setenv("SMEPULSE_KUBECONFIG", str(a))
    assert load_credentials(Settings.load()).server == "https://a"


def test_in_cluster_uses_the_service_host_and_rereads_a_rotated_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("first\n")
    (sa / "namespace").write_text("prod")
    (sa / "ca.crt").write_text("pem")
    monkeypatch.setattr(credentials, "SERVICE_ACCOUNT", sa)
    monkeypatch.setattr(credentials, "TOKEN_REFRESH_SECONDS", 0.0)
    settings = Settings(
        kubeconfig=None, kubernetes_service_host="fd00::1", kubernetes_service_port=6443
    )
    creds = load_credentials(settings)
    assert creds.server == "https://[fd00::1]:6443"
    assert (creds.ca_file, creds.namespace) == (str(sa / "ca.crt"), "prod")
    assert creds.bearer_token() == "first"
    (sa / "token").write_text("second")  # the kubelet rotates projected tokens
    assert creds.bearer_token() == "second"


@pytest.mark.parametrize(
    ("contexts", "current", "extra", "expected"),
    [
        ({"x": {"cluster": "c", "user": "u"}}, None, {}, "no current-context"),
        ({"x": {"cluster": "c", "user": "u"}}, "y", {}, "current-context 'y' is not defined"),
        ({"x": {"cluster": "gone", "user": "u"}}, "x", {}, "cluster 'gone', which is missing"),
    ],
)
def test_broken_kubeconfig_names_the_file_and_the_problem(
    tmp_path: Path, contexts: dict[str, Any], current: str | None, extra: Any, expected: str
) -> None:
    cfg = kubeconfig(tmp_path / "cfg", current, contexts, **extra)
    with pytest.raises(ConfigError, match=expected) as err:
        from_kubeconfig([str(cfg)])
    assert str(cfg) in str(err.value)


def test_not_yaml_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=f"kubeconfig {cfg}: not a kubeconfig"):
        from_kubeconfig([str(cfg)])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["cancel", "retry", "submit", "watch", "logs"])
def test_each_cli_command_reads_the_kubeconfig_once(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kubeconfig with inline data is parsed, and its data written to private files, once
    per command (not once for the namespace, again for the client and again for the watch)."""
    from smepulse_operator import control, follow, kube, submit

    cfg = kubeconfig(
        tmp_path / "config",
        "dev",
        {"dev": {"cluster": "c", "user": "u", "namespace": "team-a"}},
        clusters=[{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}",
                                            "insecure-skip-tls-verify": True}}],
        users=[{"name": "u", "user": {"token": "t"}}],
    )  # fmt: skip
    monkeypatch.setenv("SMEPULSE_KUBECONFIG", str(cfg))
    monkeypatch.delenv("SMEPULSE_KUBE_NAMESPACE", raising=False)
    loads: list[Path] = []
    real = kube.load_credentials

    def counting(settings: Settings) -> credentials.Credentials:
        loads.append(Path(str(settings.kubeconfig)))
        return real(settings)

    monkeypatch.setattr(kube, "load_credentials", counting)
    settings = Settings.load()
    calls = {
        "cancel": lambda: control.set_control(settings, "r", "cancel"),
        "retry": lambda: control.retry_run(settings, "r"),
        "submit": lambda: submit.submit_run(settings, "daily-etl", dt.date(2026, 6, 30), {}),
        "watch": lambda: follow.watch_run(settings, "r"),
        "logs": lambda: follow.print_logs(settings, "r"),
    }
    with pytest.raises(StageError, match=r"127\.0\.0\.1"):  # nothing listens there
        calls[command]()
    assert loads == [cfg]
