# The sandbox, described by Terraform: built-in terraform_data resources whose
# provisioners call the toolkit's own provisioning
# (python -m spywatcher_ops.backends.terraform_sandbox). No provider is needed.
#
# `terraform destroy` is the disaster the full-rebuild drill injects: every
# server is killed and its live data deleted, but the backup store (base
# backups + WAL archive, the sandbox's cross-region snapshot copies) is kept.
# `terraform apply` rebuilds the servers; `inv infra.redeploy` then restores
# the database from that store and waits for the cache.
#
# inv supplies the variables (TF_VAR_*) and the local state path; run it through
# `inv infra.plan --env sandbox` / `inv infra.apply --env sandbox`.

terraform {
  required_version = ">= 1.6"
  backend "local" {}
}

variable "ops_env" {
  type        = string
  description = "the toolkit environment this builds (kind sandbox)"
}

variable "ops_config" {
  type        = string
  description = "the toolkit's merged configuration, a YAML file inv writes for Terraform"
}

variable "python" {
  type        = string
  description = "the Python interpreter that has spywatcher_ops installed"
}

locals {
  provision = "'${var.python}' -m spywatcher_ops.backends.terraform_sandbox --env '${var.ops_env}' --config '${var.ops_config}'"
}

# PostgreSQL 15 primary + streaming standby with a WAL archive and base backups.
resource "terraform_data" "database_servers" {
  input = { provision = local.provision }

  provisioner "local-exec" {
    command = "${self.input.provision} up database"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.provision} destroy database"
  }
}

# Redis 7 primary + replica + three sentinels.
resource "terraform_data" "cache" {
  input      = { provision = local.provision }
  depends_on = [terraform_data.database_servers]

  provisioner "local-exec" {
    command = "${self.input.provision} up cache"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.provision} destroy cache"
  }
}
