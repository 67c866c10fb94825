"""The SME Pulse operator: runs a ``PipelineRun`` custom resource as one Kubernetes Job per stage.

Layers (see README.md): ``model`` (the resource's names and typed spec), ``planning`` (pure:
what to do next), ``render`` (pure: one builder per Kubernetes object), ``status`` (pure: the
status document), ``kube`` + ``reconciler`` (the only API I/O), ``handlers`` (thin kopf
handlers), ``main`` (kopf settings and the process), ``submit`` (what the CronJobs run).
"""
