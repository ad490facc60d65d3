"""Infrastructure operations on the Terraform port: plan summary, destroy guard,
apply of a saved plan, drift, state versions and rollback, staged redeploy."""
