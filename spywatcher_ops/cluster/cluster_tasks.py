"""EKS cluster nodes: list, drain with PodDisruptionBudgets respected, uncordon."""
