"""Chart tests: helm lint/template, kubeconform, server dry-run, RBAC, nginx conf."""
