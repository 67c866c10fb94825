# helm test: the operator Deployment has rolled out and its Pod is ready (kopf's health probe).
# Environment: NAMESPACE, DEPLOYMENT, TIMEOUT_SECONDS. Runs in the operator image with its own
# API client (no `kubernetes` package there) and the in-cluster token, or anywhere the smepulse
# package is installed, with a kubeconfig. Exit 0 = pass.
import os
import sys
import time

from smepulse.settings import Settings
from smepulse_operator.kube import ApiRejected, ApiUnavailable, Kube

kube = Kube.connect(Settings.load())
namespace = os.environ["NAMESPACE"]
name = os.environ["DEPLOYMENT"]
deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "120"))
while True:
    try:
        dep = kube.request(
            f"get deployment {namespace}/{name}",
            "GET",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        )
        status = dep.get("status") or {}
        available = {c["type"]: c["status"] for c in status.get("conditions") or []}.get(
            "Available"
        )
        wanted = (dep.get("spec") or {}).get("replicas") or 0
        ready = status.get("readyReplicas") or 0
        if wanted < 1:
            problem = "the deployment is scaled to 0 replicas: no operator runs PipelineRuns"
        elif (status.get("observedGeneration") or 0) < (dep["metadata"].get("generation") or 0):
            problem = "the latest spec is not yet observed by the Deployment controller"
        elif ready < wanted or (status.get("updatedReplicas") or 0) < wanted:
            problem = f"{ready}/{wanted} replicas ready"
        elif available != "True":
            problem = f"condition Available is {available or 'missing'}"
        else:
            print(f"ok: deployment {namespace}/{name} is ready ({wanted}/{wanted})")
            sys.exit(0)
    except (ApiRejected, ApiUnavailable) as exc:
        problem = f"cannot read the deployment: {exc}"
    if time.monotonic() > deadline:
        sys.exit(f"FAIL: {problem}. See `kubectl -n {namespace} describe deployment {name}`.")
    time.sleep(2)
