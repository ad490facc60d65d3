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
                "hosts_required": Setting(
                    bool, False, "fail the step (not skip it) when the environment lists no SSH hosts"
                ),
            },
        ),
        StepType(
            "eks-nodegroups",
            "each EKS managed node group to the newest AMI release of its Kubernetes version "
            "(update_nodegroup_version), waited on with the nodes being replaced",
            ("aws",),
            1800.0,
            "none expected: EKS replaces the nodes one by one, draining each as its pods' disruption budgets allow",
            "EKS rolls a failed node-group update back itself; the old nodes stay",
            ".eks_steps:EKS_NODEGROUPS",
            {
                "timeout_s": Setting(int, 5400, "seconds one EKS update may take", 1),
                "poll_s": Setting(float, 30.0, "seconds between describe_update polls", 0.01),
            },
        ),
        StepType(
            "eks-upgrade",
            "the EKS control plane one minor version (e.g. 1.28 -> 1.29) after its pre-checks, then the managed "
            "add-ons to their default versions for it, then the node groups",
            ("aws",),
            3600.0,
            "the Kubernetes API may refuse requests for a few seconds while its servers are replaced; workloads "
            "keep running; nodes are replaced as in eks-nodegroups",
            "a control plane cannot be downgraded: the pre-checks keep a risky upgrade from starting; a failed "
            "update is reverted by EKS",
            ".eks_steps:EKS_UPGRADE",
            {
                "target": Setting(str, "", "the version to reach: empty for the next minor, e.g. '1.29'"),
                "timeout_s": Setting(int, 5400, "seconds one EKS update may take", 1),
                "poll_s": Setting(float, 30.0, "seconds between describe_update polls", 0.01),
            },
        ),
    )
}
