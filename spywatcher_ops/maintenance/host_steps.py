"""Part 2's step types (SSH hosts; EKS), registered into steps.STEPS.

Only the table lives here (no fabric, no boto3): `inv maint.check` reads it."""

from __future__ import annotations

from .steps import Setting, StepType

HOST_STEPS: dict[str, StepType] = {
    s.name: s
    for s in (
        StepType(
            "os-patch",
            "OS updates on the environment's SSH hosts, one host at a time (or max_concurrency): a Kubernetes "
            "node is cordoned and drained (PodDisruptionBudgets respected), updates applied (security only "
            "unless updates: all), rebooted when required, waited for (SSH back, node Ready), uncordoned",
            ("sandbox", "aws"),
            600.0,
            "none expected for the application: a node's pods move to other nodes before it is patched, as "
            "their PodDisruptionBudgets allow; a host is unavailable while it reboots",
            "packages are not downgraded; a node whose drain fails is uncordoned again; a host that does not "
            "come back stops the run and its node stays cordoned (the report gives the uncordon command)",
            ".os_patch:OS_PATCH",
            {
                "updates": Setting(
                    str, "security", "which updates to apply: security or all", choices=("security", "all")
                ),
                "max_concurrency": Setting(int, 1, "hosts patched at the same time", 1, 50),
                "reboot": Setting(bool, True, "reboot a host that reports it needs one"),
                "reboot_timeout_s": Setting(
                    int, 600, "seconds a host may take to answer SSH after a reboot", 1
                ),
                "drain_timeout_s": Setting(
                    int, 300, "seconds a node's drain may take (PDBs are waited on)", 1
                ),
                "command_timeout_s": Setting(int, 1800, "seconds one package-manager command may run", 1),
            },
        ),
    )
}
