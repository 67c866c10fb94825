# helm test: the PipelineRun CRD is Established and its names accepted.
# Environment: CRD_NAME, CRD_VERSION, TIMEOUT_SECONDS. Runs in the operator image with its own
# API client (no `kubernetes` package there) and the in-cluster token, or anywhere the smepulse
# package is installed, with a kubeconfig. Exit 0 = pass.
import os
import sys
import time

from smepulse.settings import Settings
from smepulse_operator.kube import ApiRejected, ApiUnavailable, Kube

kube = Kube.connect(Settings.load())
name = os.environ.get("CRD_NAME", "pipelineruns.smepulse.io")
version = os.environ.get("CRD_VERSION", "v1alpha1")
deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "120"))
while True:
    try:
        crd = kube.request(
            f"get crd {name}",
            "GET",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
        )
        conditions = {
            c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []
        }
        served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
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
    except (ApiRejected, ApiUnavailable) as exc:
        problem = f"cannot read the CRD: {exc}"
    if time.monotonic() > deadline:
        sys.exit(f"FAIL: {problem}. Is crds.install on, or the CRD installed separately?")
    time.sleep(2)
