# helm test: the PipelineRun CRD is Established and its names accepted.
# Environment: CRD_NAME, CRD_VERSION, TIMEOUT_SECONDS. Runs in the SME Pulse image (which has the
# kubernetes client) with the in-cluster token, or anywhere with a kubeconfig. Exit 0 = pass.
import os
import sys
import time

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

try:
    config.load_incluster_config()
except config.ConfigException:
    config.load_kube_config()

name = os.environ.get("CRD_NAME", "pipelineruns.smepulse.io")
version = os.environ.get("CRD_VERSION", "v1alpha1")
deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "120"))
api = client.ApiextensionsV1Api()
while True:
    try:
        crd = api.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        served = [v.name for v in crd.spec.versions if v.served]
        problem = ""
        if conditions.get("Established") != "True":
            problem = f"condition Established is {conditions.get('Established', 'missing')}"
        elif conditions.get("NamesAccepted") != "True":
            problem = f"condition NamesAccepted is {conditions.get('NamesAccepted', 'missing')}"
        elif version not in served:
            problem = f"version {version} is not served (served: {served})"
        if not problem:
            print(f"ok: CRD {name} is established and serves {version}")
            sys.exit(0)
    except ApiException as exc:
        problem = f"cannot read CRD {name}: HTTP {exc.status} {exc.reason}"
    if time.monotonic() > deadline:
        sys.exit(f"FAIL: {problem}. Is crds.install on, or the CRD installed separately?")
    time.sleep(2)
