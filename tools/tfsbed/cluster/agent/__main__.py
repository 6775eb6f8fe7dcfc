"""``python -m tfsbed.cluster.agent``: run the process node agent in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tfsctl.errors import ToolkitError

from . import BRIDGE, DEFAULT_LB_CIDR, DEFAULT_METRICS_PORT, DEFAULT_NODE_NAME, DEFAULT_POD_CIDR
from .agent import AgentConfig, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfsbed.cluster.agent", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig of the cluster to join")
    parser.add_argument("--state-dir", type=Path, required=True, help="volumes, logs, IP allocations")
    parser.add_argument("--node-name", default=DEFAULT_NODE_NAME)
    parser.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR)
    parser.add_argument(
        "--node-type", default="process", help="value of the node's node.tfsctl.dev/type label"
    )
    parser.add_argument(
        "--bridge", default=BRIDGE, help="host bridge of the pod network (one agent per bridge)"
    )
    parser.add_argument(
        "--service-cidr",
        help="slice of --pod-cidr for service VIPs (default: its last eighth, e.g. 10.244.100.224/27)",
    )
    parser.add_argument("--lb-cidr", default=DEFAULT_LB_CIDR, help="loopback range of LoadBalancer IPs")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="kubelet endpoint port (/metrics/resource, /healthz); 0 picks a free one",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="longest grace period given to pods when the agent stops",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    cfg = AgentConfig(
        kubeconfig=args.kubeconfig,
        state_dir=args.state_dir.resolve(),
        node_name=args.node_name,
        pod_cidr=args.pod_cidr,
        lb_cidr=args.lb_cidr,
        metrics_port=args.metrics_port,
        shutdown_grace=args.shutdown_grace,
        bridge=args.bridge,
        node_type=args.node_type,
        service_cidr=args.service_cidr,
    )
    try:
        run(cfg)
    except ToolkitError as exc:
        print(f"tfsctl-process-agent: error: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
