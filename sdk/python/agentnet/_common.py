"""Shared pieces of the blocking and asyncio clients: errors, result types,
body encoding, socket location and JSON-RPC framing.

Nothing here touches a socket; :mod:`agentnet.client` and :mod:`agentnet.aio`
do the I/O.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union, cast

from typing import Literal, TypedDict

__all__ = [
    "SOCKET_FILE",
    "MAX_LINE_BYTES",
    "DEFAULT_TIMEOUT",
    "JsonValue",
    "Body",
    "AgentnetError",
    "ConnectionFailedError",
    "NodeNotRunningError",
    "ConnectionClosedError",
    "RequestTimeoutError",
    "ServiceError",
    "LeakBlockedError",
    "Message",
    "Reply",
    "socket_path",
    "encode_body",
    "decode_body",
    "error_reply",
    "BINARY_FEATURE",
]

#: File name of the node's socket inside its home folder.
SOCKET_FILE = "agentnet.sock"

#: Longest line the clients accept from the node (64 MiB, as the TypeScript SDK).
MAX_LINE_BYTES = 64 * 1024 * 1024

#: Default time in seconds a call waits for the node's answer. ``msg.send``
#: is bounded by the node itself (``messaging.requestTimeoutMs``, and a local
#: service has 60 s to answer), so this is only a guard against a hung node.
DEFAULT_TIMEOUT = 120.0

JsonValue = Any
"""Any value :func:`json.dumps` accepts."""

Body = Union[str, bytes, bytearray, memoryview, JsonValue]
"""A message body: ``str`` travels as UTF-8 text, ``bytes`` as
``application/octet-stream`` (raw bytes after the header line once binary
bodies are negotiated, else ``bodyBase64``), any other JSON value as
``application/json``. The receiver sees the same form."""

#: The ``ipc.hello`` feature for raw body frames (see the README's "Binary bodies").
BINARY_FEATURE = "binary"

TEXT = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
BINARY = "application/octet-stream"

#: Internal params key: a ``str``/bytes body not yet encoded, so that a binary
#: connection sends it raw and a plain one as ``body``/``bodyBase64``.
RAW_BODY = "\x00rawBody"


# --------------------------------------------------------------------------
# errors


class AgentnetError(Exception):
    """An error from the node (or from this SDK) with agentnet's error code.

    Attributes:
        code: the agentnet error name, e.g. ``"PeerUnreachable"``,
            ``"UntrustedPeer"``, ``"InvalidParams"``, ``"MethodNotFound"`` or a
            remote service's own code (``data.code`` of the JSON-RPC error).
        rpc_code: the JSON-RPC error code (``-32000`` for agentnet errors,
            ``-32601`` unknown method, ``-32602`` bad params, ...); ``None``
            for errors raised by the SDK itself.
        data: the JSON-RPC error's ``data`` object, if any.
    """

    def __init__(
        self,
        message: str,
        code: str = "AgentnetError",
        rpc_code: Optional[int] = None,
        data: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.rpc_code = rpc_code
        self.data: Dict[str, Any] = dict(data) if data is not None else {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, rpc_code={self.rpc_code!r}, message={self.message!r})"

    @classmethod
    def from_rpc(cls, error: Mapping[str, Any]) -> "AgentnetError":
        """Build the exception for a JSON-RPC ``error`` object."""
        data = error.get("data")
        data = data if isinstance(data, dict) else {}
        rpc_code = error.get("code")
        code = data.get("code")
        if not isinstance(code, str):
            code = _STANDARD_CODES.get(rpc_code, "Unknown") if isinstance(rpc_code, int) else "Unknown"
        message = error.get("message")
        # a code with its own exception class (LeakBlocked, ...) raises that class
        klass = _ERROR_CLASSES.get(code, cls) if cls is AgentnetError else cls
        return klass(
            message if isinstance(message, str) else "the node reported an error",
            code=code,
            rpc_code=rpc_code if isinstance(rpc_code, int) else None,
            data=data,
        )


_STANDARD_CODES = {
    -32700: "ParseError",
    -32600: "InvalidRequest",
    -32601: "MethodNotFound",
    -32602: "InvalidParams",
    -32603: "InternalError",
    -32001: "LineTooLong",
}


class ConnectionFailedError(AgentnetError):
    """The node's socket could not be reached (other than "not running")."""

    def __init__(self, message: str, code: str = "ConnectionFailed") -> None:
        super().__init__(message, code=code)


class NodeNotRunningError(ConnectionFailedError):
    """No node answers on the socket: start one with ``agentnet start``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="NodeNotRunning")


class ConnectionClosedError(AgentnetError):
    """The connection to the node closed (node stopped, or :meth:`close` called)
    while a call was waiting for its answer."""

    def __init__(self, message: str = "the connection to the agentnet node closed") -> None:
        super().__init__(message, code="ConnectionClosed")


class RequestTimeoutError(AgentnetError):
    """The node did not answer a call within the client-side timeout."""

    def __init__(self, method: str, timeout: float) -> None:
        super().__init__(f"no answer from the node to {method} within {timeout:g} s", code="ClientTimeout")


class ServiceError(AgentnetError):
    """Raise this from a :meth:`serve` handler to answer with a chosen error
    code, e.g. ``raise ServiceError("Overloaded", "try again later")``.
    (Any other exception is answered with its class name as the code.)"""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class LeakBlockedError(AgentnetError):
    """The node's leakage guard refused outbound content (code ``LeakBlocked``):
    nothing was sent. :attr:`findings` lists what it found (offsets, labels
    and categories; never the values)."""

    def __init__(
        self,
        message: str,
        code: str = "LeakBlocked",
        rpc_code: Optional[int] = None,
        data: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message, code=code, rpc_code=rpc_code, data=data)

    @property
    def findings(self) -> List["GuardFinding"]:
        """The guard's findings (``data.findings``)."""
        found = self.data.get("findings")
        return cast(List[GuardFinding], found) if isinstance(found, list) else []

    @property
    def categories(self) -> List[str]:
        """The categories of the findings, in order, without repeats."""
        seen: List[str] = []
        for f in self.findings:
            category = f.get("category")
            if isinstance(category, str) and category not in seen:
                seen.append(category)
        return seen


#: Error codes raised as their own :class:`AgentnetError` subclass
_ERROR_CLASSES: Dict[str, Any] = {"LeakBlocked": LeakBlockedError}


def connect_error(path: str, home: Optional[str], err: OSError) -> AgentnetError:
    """Turn an OS error from connecting to ``path`` into a helpful exception."""
    where = f"home {home}" if home is not None else f"socket {path}"
    start_hint = f"agentnet start --home {home}" if home is not None else "agentnet start"
    if isinstance(err, (FileNotFoundError, ConnectionRefusedError)):
        reason = "no socket" if isinstance(err, FileNotFoundError) else "the socket refuses connections"
        return NodeNotRunningError(
            f"no agentnet node is running on {where} ({reason} at {path}); start one with `{start_hint}`"
        )
    if isinstance(err, PermissionError):
        return ConnectionFailedError(
            f"permission denied on {path}: the socket is readable by the node's user only (mode 0600); "
            "run the agent as that user",
            code="PermissionDenied",
        )
    return ConnectionFailedError(f"cannot connect to the agentnet node at {path}: {err}")


def socket_path(home: Optional[str] = None, path: Optional[str] = None) -> str:
    """Where the node's socket is: ``path`` if given, else
    ``<home>/agentnet.sock`` with ``home`` defaulting to ``$AGENTNET_HOME``,
    then ``~/.agentnet`` (the same rule as the CLI)."""
    if path is not None:
        return path
    return os.path.join(resolve_home(home), SOCKET_FILE)


def resolve_home(home: Optional[str] = None) -> str:
    """The node home folder: ``home``, else ``$AGENTNET_HOME``, else ``~/.agentnet``."""
    if home is not None:
        return home
    env = os.environ.get("AGENTNET_HOME")
    if env:
        return env
    return os.path.join(os.path.expanduser("~"), ".agentnet")


# --------------------------------------------------------------------------
# bodies and messages


def encode_body(body: Body, key: str = "body") -> Dict[str, Any]:
    """Socket params for a body: ``{"body": ...}`` for text and JSON values,
    ``{"bodyBase64": ...}`` for bytes-like values."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return {key + "Base64": base64.b64encode(bytes(body)).decode("ascii")}
    return {key: body}


def body_params(body: Body) -> Dict[str, Any]:
    """Params for a body, encoded only when the call is written: text and
    bytes go raw on a binary connection (no base64, no JSON escaping)."""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        return {RAW_BODY: body}
    return {"body": body}


def decode_body(obj: Mapping[str, Any]) -> Body:
    """The body of a ``msg.received`` notification or ``msg.send`` result:
    ``bytes`` if it came as ``bodyBase64`` or raw bytes, else the JSON value
    (``str`` for text)."""
    raw = obj.get(RAW_BODY)
    if isinstance(raw, bytes):
        return raw
    if "bodyBase64" in obj and isinstance(obj["bodyBase64"], str):
        return base64.b64decode(obj["bodyBase64"])
    return obj.get("body")


def error_reply(exc: BaseException) -> Dict[str, str]:
    """The ``error`` object of a ``msg.reply`` for an exception raised by a
    service handler: its ``code`` attribute if it is a string, else the
    exception's class name."""
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or not code:
        code = type(exc).__name__
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        message = str(exc) or type(exc).__name__
    return {"code": code, "message": message}


@dataclass(frozen=True)
class Message:
    """An inbound message for a service this client registered (the
    ``msg.received`` notification).

    Answer a request with ``client.reply(message.id, body)`` (or let
    :meth:`~agentnet.Client.serve` do it). One-way messages need no answer.
    """

    #: Delivery ID on this node: pass it to ``reply``.
    id: str
    #: The sender's request ID.
    request_id: str
    #: The sender's peer ID.
    sender: str
    service: str
    #: ``"request"`` or ``"oneway"``.
    kind: str
    #: ``str`` (text), ``bytes``, or another JSON value.
    body: Body
    content_type: str
    #: The notification's params as received.
    raw: Dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def is_request(self) -> bool:
        """True if the sender waits for an answer."""
        return self.kind == "request"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "Message":
        return cls(
            id=str(params.get("id", "")),
            request_id=str(params.get("requestId", "")),
            sender=str(params.get("from", "")),
            service=str(params.get("service", "")),
            kind=str(params.get("kind", "request")),
            body=decode_body(params),
            content_type=str(params.get("contentType", "")),
            raw=dict(params),
        )


@dataclass(frozen=True)
class Reply:
    """The result of :meth:`~agentnet.Client.send`: the peer's answer to a
    request, or the acknowledgement of a one-way message (``accepted``)."""

    #: The answering peer's ID.
    sender: str
    #: The request ID.
    id: str
    #: The answer's body (``None`` for an accepted one-way message).
    body: Body = None
    content_type: Optional[str] = None
    #: True for a one-way message the receiving node accepted.
    accepted: bool = False
    raw: Dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> "Reply":
        return cls(
            sender=str(result.get("from", "")),
            id=str(result.get("id", "")),
            body=None if result.get("accepted") is True else decode_body(result),
            content_type=result.get("contentType"),
            accepted=result.get("accepted") is True,
            raw=dict(result),
        )


# --------------------------------------------------------------------------
# result shapes (see the README's method table)


class Connection(TypedDict, total=False):
    peerId: str
    address: str
    direct: bool
    transport: Literal["tcp", "webrtc", "webrtc-direct", "relay"]
    direction: str


class NodeInfo(TypedDict):
    peerId: str
    addresses: List[str]
    protocols: List[str]
    version: str


class NodeStatus(TypedDict, total=False):
    peerId: str
    addresses: List[str]
    reachability: Literal["public", "private", "unknown"]
    relayReservations: List[str]
    connections: List[Connection]


class MessagingMetrics(TypedDict, total=False):
    sent: int
    received: int
    rejected: Dict[str, int]
    retries: int
    duplicates: int


class NodeMetrics(TypedDict, total=False):
    messaging: MessagingMetrics
    replayCache: Dict[str, int]
    #: pieces of agent-authored content admitted/refused by kind
    outbox: Dict[str, Dict[str, int]]
    #: the leakage guard's counters
    guard: "GuardStats"
    #: the last posture review's counts, once one ran
    posture: "PostureCounts"


class PeerSummary(TypedDict):
    peerId: str
    addresses: List[str]


class ConnectResult(TypedDict):
    peerId: str
    address: str


class PingResult(TypedDict):
    peerId: str
    rttMs: float


class ServiceResult(TypedDict, total=False):
    service: str
    removed: bool


class TokenRevocation(TypedDict):
    peerId: str
    revokedBefore: int


class Card(TypedDict, total=False):
    peerId: str
    seq: int
    name: str
    services: List[str]
    metadata: Dict[str, Any]


class TrustResult(TypedDict):
    peerId: str
    state: str


class TrustDecision(TypedDict, total=False):
    peerId: str
    state: str
    delivered: bool
    error: Any
    closedConnections: int


class PendingRequest(TypedDict):
    peerId: str
    reason: str
    since: int
    updatedAt: int


class TrustEntry(TypedDict, total=False):
    peerId: str
    state: str
    since: int
    updatedAt: int
    reason: str
    direction: str
    via: str
    note: str
    static: bool


class TrustSubscription(TypedDict):
    subscribed: bool
    pending: List[PendingRequest]


class Invite(TypedDict):
    code: str
    id: str
    expiresAt: int
    uses: int
    addresses: List[str]


class InviteAccepted(TypedDict):
    peerId: str
    state: str
    addresses: List[str]


class Alias(TypedDict):
    name: str
    peerId: str


class AliasRemoved(TypedDict):
    removed: bool


class GuardStats(TypedDict, total=False):
    registered: int
    patterns: int
    checks: int
    #: decisions by action: ``pass``, ``redact``, ``block``, ``warn``
    actions: Dict[str, int]
    #: findings in blocked messages by category
    blockedByCategory: Dict[str, int]


class PostureCounts(TypedDict, total=False):
    #: ``True`` until the node's first posture review finished (the other keys are then absent)
    checking: bool
    #: findings by severity: ``high``, ``medium``, ``low``, ``info``
    findings: Dict[str, int]
    #: ``drift.*`` findings (differences from the signed baseline)
    drift: int
    baseline: Literal["none", "intact", "tampered"]
    #: ms since the epoch
    checkedAt: int
    error: str


class NodeReadiness(TypedDict, total=False):
    pid: int
    peerId: str
    addresses: List[str]
    ready: bool
    listening: bool
    bootstrap: Dict[str, Any]
    dht: Any
    reachability: str
    relayReservations: List[str]


class NodeStopping(TypedDict):
    pid: int
    stopping: bool


class Prometheus(TypedDict, total=False):
    url: str
    contentType: str
    #: the text format 0.0.4 (``format="text"``)
    text: str
    #: every series in prom-client's JSON form (``format="json"``)
    metrics: List[Dict[str, Any]]


class GuardFinding(TypedDict, total=False):
    detector: str
    category: str
    label: str
    id: str
    #: UTF-16 code-unit offsets into the body
    start: int
    end: int
    variant: str
    allowed: bool


class GuardCheck(TypedDict, total=False):
    action: Literal["pass", "redact", "block", "warn"]
    #: the redacted text when ``action`` is ``redact``
    body: str
    findings: List[GuardFinding]


class ProtectedEntry(TypedDict, total=False):
    id: str
    label: str
    category: str
    scope: str
    expiresAt: int
    persist: bool


class GuardPolicy(TypedDict, total=False):
    peer: str
    service: str
    allow: List[str]
    action: Literal["block", "redact", "warn"]


class Protected(TypedDict):
    id: str


class Unprotected(TypedDict):
    removed: int


class GroupCreated(TypedDict):
    groupId: str


class GroupEpoch(TypedDict):
    epoch: int


class GroupSent(TypedDict):
    epoch: int
    #: members reached now
    delivered: int
    #: members it is kept for (offline)
    queued: int


class GroupSummary(TypedDict):
    groupId: str
    name: str
    epoch: int
    term: int
    committer: str
    #: in leaf order (the succession order)
    members: List[str]


class GroupLeft(TypedDict):
    groupId: str
    left: bool


class GroupSubscription(TypedDict, total=False):
    subscribed: bool
    groupId: str


@dataclass(frozen=True)
class GroupMessage:
    """A message received in an MLS group (the ``group.received`` notification)."""

    group_id: str
    #: The sending member's peer ID.
    sender: str
    #: The group's MLS epoch it was sent in.
    epoch: int
    #: ``str`` (text), ``bytes``, or another JSON value.
    body: Body
    content_type: str
    #: The inbound screening's findings, when it found anything.
    screening: Optional[Dict[str, Any]] = None
    raw: Dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "GroupMessage":
        screening = params.get("screening")
        epoch = params.get("epoch")
        return cls(
            group_id=str(params.get("groupId", "")),
            sender=str(params.get("from", "")),
            epoch=epoch if isinstance(epoch, int) else 0,
            body=decode_body(params),
            content_type=str(params.get("contentType", "")),
            screening=screening if isinstance(screening, dict) else None,
            raw=dict(params),
        )


# --------------------------------------------------------------------------
# JSON-RPC framing


def request_line(id_: int, method: str, params: Optional[Mapping[str, Any]]) -> bytes:
    """One JSON-RPC request, newline-terminated, compact UTF-8."""
    return b"".join(request_frame(id_, method, params, False))


def request_frame(id_: int, method: str, params: Optional[Mapping[str, Any]], binary: bool) -> List[bytes]:
    """One JSON-RPC request: the header line and, on a binary connection with
    a text or bytes body, the raw body (``"bodyBytes": N`` in the header)."""
    req: Dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    raw: Optional[bytes] = None
    if params is not None:
        if RAW_BODY in params:
            params = dict(params)
            value = params.pop(RAW_BODY)
            if binary and isinstance(value, str):
                raw, params["contentType"] = value.encode("utf-8"), TEXT
            elif binary:
                raw, params["contentType"] = bytes(value), BINARY
            else:
                params.update(encode_body(value))
        req["params"] = params
    if raw is None:
        return [(json.dumps(req, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")]
    req["bodyBytes"] = len(raw)
    return [(json.dumps(req, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"), raw]


def attach_body(msg: Dict[str, Any], raw: bytes) -> None:
    """Put a binary frame's body into its result or notification params the
    way the JSON path shows it: text and JSON decoded, other bytes as bytes."""
    target = msg.get("params") if "method" in msg else msg.get("result")
    if not isinstance(target, dict):
        return
    content_type = target.get("contentType")
    try:
        if content_type == TEXT:
            target["body"] = raw.decode("utf-8")
            return
        if content_type == JSON_TYPE:
            target["body"] = json.loads(raw)
            return
    except ValueError:  # as the node does: undecodable text or JSON comes as bytes
        pass
    target[RAW_BODY] = raw


def body_length(msg: Any) -> Optional[int]:
    """The ``bodyBytes`` a header line announces, if any."""
    if isinstance(msg, dict):
        n = msg.get("bodyBytes")
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            return n
    return None


def clean_params(**params: Any) -> Dict[str, Any]:
    """Params without the ``None`` values (optional params left out)."""
    return {k: v for k, v in params.items() if v is not None}
