"""agentnet: a Python client for an agentnet node's local socket.

An agentnet node (``agentnet start``) serves JSON-RPC 2.0 on
``<home>/agentnet.sock``, one JSON object per line. This package wraps every
method with type hints, in two flavours:

* :class:`agentnet.Client` (blocking, thread-safe; a reader thread)::

      import agentnet

      with agentnet.connect() as node:
          node.serve("echo", lambda message: message.body)
          node.wait_closed()

* :class:`agentnet.aio.AsyncClient` (``asyncio``)::

      import agentnet.aio

      async with await agentnet.aio.connect() as node:
          reply = await node.send(peer_id, "echo", {"hello": "world"})

Errors are :class:`AgentnetError` with the node's ``code`` (e.g.
``"UntrustedPeer"``, ``"NoSuchService"``) and the JSON-RPC ``rpc_code``;
:class:`NodeNotRunningError` when no node runs on the home folder.

Standard library only; Python 3.9 or newer.
"""

from ._common import (
    DEFAULT_TIMEOUT,
    SOCKET_FILE,
    AgentnetError,
    Alias,
    Body,
    Card,
    ConnectionClosedError,
    ConnectionFailedError,
    ConnectResult,
    GroupMessage,
    GroupSummary,
    GuardCheck,
    GuardFinding,
    GuardPolicy,
    Invite,
    InviteAccepted,
    LeakBlockedError,
    Message,
    NodeInfo,
    NodeMetrics,
    NodeNotRunningError,
    NodeReadiness,
    NodeStatus,
    PeerSummary,
    PostureCounts,
    PendingRequest,
    PingResult,
    Reply,
    RequestTimeoutError,
    ServiceError,
    TrustDecision,
    TrustEntry,
    decode_body,
    encode_body,
    resolve_home,
    socket_path,
)
from .client import Client, Notification, Service, Subscription, connect

__version__ = "0.1.0"

__all__ = [
    "AgentnetError",
    "Alias",
    "Body",
    "Card",
    "Client",
    "ConnectResult",
    "ConnectionClosedError",
    "ConnectionFailedError",
    "DEFAULT_TIMEOUT",
    "GroupMessage",
    "GroupSummary",
    "GuardCheck",
    "GuardFinding",
    "GuardPolicy",
    "Invite",
    "InviteAccepted",
    "LeakBlockedError",
    "Message",
    "NodeInfo",
    "NodeMetrics",
    "NodeNotRunningError",
    "NodeReadiness",
    "NodeStatus",
    "Notification",
    "PeerSummary",
    "PendingRequest",
    "PingResult",
    "PostureCounts",
    "Reply",
    "RequestTimeoutError",
    "SOCKET_FILE",
    "Service",
    "ServiceError",
    "Subscription",
    "TrustDecision",
    "TrustEntry",
    "connect",
    "decode_body",
    "encode_body",
    "resolve_home",
    "socket_path",
]
