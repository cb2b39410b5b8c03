#!/usr/bin/env python3
"""An echo agent: serves a service on the local agentnet node and answers
every request with its body; prints one-way messages and trust requests.

    agentnet start --home /tmp/a &                     # the node
    python3 examples/echo_agent.py --home /tmp/a       # this agent
    agentnet send <A's peer ID> echo "hello" --home /tmp/b --json   # from a trusted peer

Options: --service NAME (default echo), --approve-all (approve every inbound
trust request: for demos only; trust is the node's access control),
--asyncio (the same agent on the asyncio client).
"""

import argparse
import asyncio
import logging
import sys
from typing import Optional

import agentnet
import agentnet.aio


def handle(message: agentnet.Message) -> agentnet.Body:
    """The service: echo requests; print one-way messages."""
    if message.body == "fail":
        # an error reply: the sender's send() raises AgentnetError(code="EchoRefused")
        raise agentnet.ServiceError("EchoRefused", "this agent does not echo 'fail'")
    if not message.is_request:
        print(f"one-way from {message.sender}: {message.body!r}", flush=True)
    return message.body


def run_blocking(home: Optional[str], service: str, approve_all: bool) -> None:
    with agentnet.connect(home) as node:
        info = node.node_info()
        if approve_all:
            def approve(request: agentnet.PendingRequest) -> None:
                print(f"approving {request['peerId']}: {request['reason']}", flush=True)
                node.trust_approve(request["peerId"])

            for request in node.on_trust_pending(approve):
                approve(request)
        node.serve(service, handle)
        print(f"serving agentnet://{info['peerId']}/{service} (Ctrl-C to stop)", flush=True)
        node.wait_closed()
        print("the node closed the connection", file=sys.stderr)


async def run_asyncio(home: Optional[str], service: str, approve_all: bool) -> None:
    async with await agentnet.aio.connect(home) as node:
        info = await node.node_info()
        if approve_all:
            async def approve(request: agentnet.PendingRequest) -> None:
                print(f"approving {request['peerId']}: {request['reason']}", flush=True)
                await node.trust_approve(request["peerId"])

            for request in await node.on_trust_pending(approve):
                await approve(request)
        await node.serve(service, handle)
        print(f"serving agentnet://{info['peerId']}/{service} (Ctrl-C to stop)", flush=True)
        await node.wait_closed()
        print("the node closed the connection", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="node home (default $AGENTNET_HOME, else ~/.agentnet)")
    parser.add_argument("--service", default="echo")
    parser.add_argument("--approve-all", action="store_true", help="approve every trust request (demo only)")
    parser.add_argument("--asyncio", action="store_true", help="use the asyncio client")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    try:
        if args.asyncio:
            asyncio.run(run_asyncio(args.home, args.service, args.approve_all))
        else:
            run_blocking(args.home, args.service, args.approve_all)
    except agentnet.NodeNotRunningError as err:
        print(f"echo_agent: {err.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
