"""Generate ``charts/smepulse/values.schema.json`` from ``values.yaml`` plus explicit rules.

Why generated: the schema must list exactly the keys of values.yaml (``additionalProperties:
false`` everywhere), so deriving the key tree from values.yaml keeps both in step, while the
rules below add what a default value cannot say (enums, ranges, patterns, the shape of free-form
maps and of Kubernetes objects). Every mapping written in block style in values.yaml becomes a
closed object; Kubernetes objects (written in flow style) are open objects checked by the API
server. The ``description`` of each property is its ``# --`` comment.

Usage: ``python charts/scripts/values_schema.py [--check]`` (``--check``: exit 1 if the
committed schema is stale). A unit test runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from values_table import CHART_DIR, parse_comments

SCHEMA_PATH = CHART_DIR / "values.schema.json"

Schema = dict[str, Any]

STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
SCALAR_MAP: Schema = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
K8S_OBJECT: Schema = {"type": "object"}
K8S_LIST: Schema = {"type": "array", "items": {"type": "object"}}
STRING_LIST: Schema = {"type": "array", "items": {"type": "string", "minLength": 1}}
PULL_POLICY: Schema = {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
QUANTITY: Schema = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$"}
DNS_NAME: Schema = {
    "type": "string",
    "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
    "maxLength": 63,
}
ENV_MAP: Schema = {
    "type": "object",
    "propertyNames": {"pattern": "^[A-Z_][A-Z0-9_]*$"},
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
CRON: Schema = {"type": "string", "minLength": 9, "pattern": r"^(@\w+|(\S+\s+){4}\S+)$"}

# Rules by dotted path; "*" matches any one key. Applied on top of the inferred type.
RULES: dict[str, Schema] = {
    "networkPolicy.extraFrom": {"type": "array", "items": {"type": "object"}},
    "image.*.digest": {"type": "string", "pattern": r"^(sha256:[0-9a-f]{64})?$"},
    "commonLabels": STRING_MAP,
    "imagePullSecrets": STRING_LIST,
    "*.pullPolicy": PULL_POLICY,
    "*.*.pullPolicy": PULL_POLICY,
    "image.operator.repository": {"type": "string", "minLength": 1},
    "image.stages.repository": {"type": "string", "minLength": 1},
    "podSecurityContext": K8S_OBJECT,
    "securityContext": K8S_OBJECT,
    "*.podSecurityContext": K8S_OBJECT,
    "*.securityContext": K8S_OBJECT,
    "*.resources": K8S_OBJECT,
    "*.*.resources": K8S_OBJECT,
    "*.nodeSelector": STRING_MAP,
    "*.tolerations": K8S_LIST,
    "*.affinity": K8S_OBJECT,
    "*.podAnnotations": STRING_MAP,
    "*.podLabels": STRING_MAP,
    "*.serviceAccount.annotations": STRING_MAP,
    "*.serviceAccount.name": DNS_NAME,
    "*.*.service.annotations": STRING_MAP,
    "*.livenessProbe": K8S_OBJECT,
    "*.readinessProbe": K8S_OBJECT,
    "operator.extraEnv": K8S_LIST,
    "tests.extraEnv": K8S_LIST,
    "operator.logLevel": {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
    "operator.logFormat": {"type": "string", "enum": ["json", "text"]},
    "operator.metrics.port": PORT,
    "operator.healthPort": PORT,
    "config.configMapName": DNS_NAME,
    "config.secretName": DNS_NAME,
    "config.existingSecret": DNS_NAME,
    "config.logLevel": {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
    "config.timezone": {"type": "string", "minLength": 1},
    "config.home": {"type": "string", "pattern": "^/"},
    "config.env": ENV_MAP,
    "config.secretEnv": ENV_MAP,
    "objectStore.bucket": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
    "cronJobs.timeZone": {"type": "string", "minLength": 1},
    "cronJobs.concurrencyPolicy": {"type": "string", "enum": ["Allow", "Forbid", "Replace"]},
    "cronJobs.startingDeadlineSeconds": {"type": "integer", "minimum": 10},
    "cronJobs.successfulJobsHistoryLimit": {"type": "integer", "minimum": 0},
    "cronJobs.failedJobsHistoryLimit": {"type": "integer", "minimum": 0},
    "cronJobs.backoffLimit": {"type": "integer", "minimum": 0, "maximum": 20},
    "cronJobs.activeDeadlineSeconds": {"type": "integer", "minimum": 10},
    "cronJobs.*.schedule": CRON,
    "cronJobs.*.params": SCALAR_MAP,
    "*.persistence.size": QUANTITY,
    "*.persistence.accessModes": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "string",
            "enum": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"],
        },
    },
    "*.auth.existingSecret": DNS_NAME,
    "embeddedWarehouse.mountPath": {"type": "string", "pattern": "^/"},
    "embeddedWarehouse.persistence.existingClaim": DNS_NAME,
    "*.external.existingSecret": DNS_NAME,
    "*.image.tag": {"type": "string"},
    "minio.extraBuckets": STRING_LIST,
    "postgresql.external.port": PORT,
    "postgresql.databases.*": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
    "trino.lakehouseCatalog": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
    "trino.bronzeCatalog": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
    "trino.additionalCatalogs": {
        "type": "object",
        "propertyNames": {"pattern": "^[a-z_][a-z0-9_]*$"},
        "additionalProperties": {"type": "string", "pattern": "connector\\.name="},
    },
    "trino.maxRamPercentage": {"type": "integer", "minimum": 10, "maximum": 95},
    "trino.worker.replicas": {"type": "integer", "minimum": 0},
    "trino.external.port": PORT,
    "trino.external.httpScheme": {"type": "string", "enum": ["http", "https"]},
    "mlflow.workers": {"type": "integer", "minimum": 1, "maximum": 32},
    "mlflow.extraAllowedHosts": STRING_LIST,
    "mlflow.external.trackingUri": {"type": "string", "pattern": "^(https?://.*)?$"},
    "redis.external.url": {"type": "string", "pattern": "^(rediss?://.*)?$"},
    "minio.external.endpointUrl": {"type": "string", "pattern": "^(https?://.*)?$"},
    "metabase.external.url": {"type": "string", "pattern": "^(https?://.*)?$"},
    "tests.timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 3600},
}


def _rule(path: tuple[str, ...]) -> Schema | None:
    for pattern, schema in RULES.items():
        parts = pattern.split(".")
        if len(parts) == len(path) and all(p in ("*", k) for p, k in zip(parts, path, strict=True)):
            return schema
    return None


def _infer(value: Any, path: tuple[str, ...]) -> Schema:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, str):
        return {"type": "string"}
    # Empty maps and lists say nothing about their items: they need an explicit rule.
    raise SystemExit(f"values.yaml: {'.'.join(path)}: no schema rule for a {type(value).__name__}")


def build_schema() -> Schema:
    """The schema: one closed object per block mapping of values.yaml, rules applied."""
    text = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(text)
    comments = parse_comments(text)

    def node(value: Any, path: tuple[str, ...]) -> Schema:
        rule = _rule(path)
        described = {"description": comments[path]} if path in comments else {}
        if rule is not None:
            return {**described, **rule}
        if isinstance(value, dict) and value:
            return {
                **described,
                "type": "object",
                "additionalProperties": False,
                "properties": {k: node(v, (*path, k)) for k, v in value.items()},
            }
        return {**described, **_infer(value, path)}

    root = node(values, ())
    # Helm gives every chart a `global` map: the parent chart's `global` values when this chart
    # is a subchart (Helm copies them in), which a closed root would refuse. The chart reads
    # nothing from it, so any content is allowed.
    root["properties"]["global"] = {
        "description": "Values shared with the parent chart and its other subcharts when this "
        "chart is used as a subchart; not read by this chart.",
        "type": "object",
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "smepulse chart values",
        **root,
    }


def render() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed schema is stale"
    )
    args = parser.parse_args()
    text = render()
    if args.check:
        if SCHEMA_PATH.read_text(encoding="utf-8") != text:
            print(
                f"{SCHEMA_PATH} is stale: run python charts/scripts/values_schema.py",
                file=sys.stderr,
            )
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
