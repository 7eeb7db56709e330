"""A real one-node Kubernetes for the tests: its parts, its images and its life cycle."""
