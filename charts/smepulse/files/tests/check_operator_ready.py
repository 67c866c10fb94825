# helm test: the operator Deployment has rolled out and its Pod is ready (kopf's health probe).
# Environment: NAMESPACE, DEPLOYMENT, TIMEOUT_SECONDS. Runs in the SME Pulse image with the
# in-cluster token, or anywhere with a kubeconfig. Exit 0 = pass.
import os
import sys
import time

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

try:
    config.load_incluster_config()
except config.ConfigException:
    config.load_kube_config()

namespace = os.environ["NAMESPACE"]
name = os.environ["DEPLOYMENT"]
deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "120"))
api = client.AppsV1Api()
while True:
    try:
        dep = api.read_namespaced_deployment(name, namespace)
        status = dep.status
        available = {c.type: c.status for c in (status.conditions or [])}.get("Available")
        wanted = dep.spec.replicas or 0
        if wanted < 1:
            problem = "the deployment is scaled to 0 replicas: no operator runs PipelineRuns"
        elif (status.observed_generation or 0) < (dep.metadata.generation or 0):
            problem = "the latest spec is not yet observed by the Deployment controller"
        elif (status.ready_replicas or 0) < wanted or (status.updated_replicas or 0) < wanted:
            problem = f"{status.ready_replicas or 0}/{wanted} replicas ready"
        elif available != "True":
            problem = f"condition Available is {available or 'missing'}"
        else:
            print(f"ok: deployment {namespace}/{name} is ready ({wanted}/{wanted})")
            sys.exit(0)
    except ApiException as exc:
        problem = f"cannot read deployment {namespace}/{name}: HTTP {exc.status} {exc.reason}"
    if time.monotonic() > deadline:
        sys.exit(f"FAIL: {problem}. See `kubectl -n {namespace} describe deployment {name}`.")
    time.sleep(2)
