"""Application deployments on EKS: status, scale, restart, rollback, logs."""
