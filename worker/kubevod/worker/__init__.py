"""The transcoding worker: probe, plan, one ffmpeg, upload as segments finish.

See docs/architecture.md §2 and §6.

``kubevod.worker.pipeline.run`` is the entry point shared by Kubernetes Jobs
(``kubevod-worker``) and local mode's pool.
"""
