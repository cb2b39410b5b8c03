"""The blocking client: one socket, a reader thread, calls from any thread.

Example::

    import agentnet

    with agentnet.connect() as node:          # $AGENTNET_HOME or ~/.agentnet
        print(node.node_info()["peerId"])
        answer = node.request("12D3KooW...", "echo", {"q": "hi"})

Threads: a *reader* thread reads the socket and resolves calls; callbacks
(:meth:`Client.on`, :meth:`Client.on_message`, ...) run one at a time, in
order, on a *dispatcher* thread; :meth:`Client.serve` handlers run on a small
thread pool so that slow handlers do not hold up each other. Every one of
them may call the client (calls are multiplexed on the one connection).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import queue
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Dict, Generic, Iterator, List, Mapping, NamedTuple, Optional, TypeVar, cast

from ._common import (
    DEFAULT_TIMEOUT,
    MAX_LINE_BYTES,
    AgentnetError,
    Body,
    ConnectionClosedError,
    NodeNotRunningError,
    GroupMessage,
    GroupSubscription,
    Message,
    PendingRequest,
    TrustSubscription,
    RequestTimeoutError,
    BINARY_FEATURE,
    attach_body,
    body_length,
    body_params,
    connect_error,
    error_reply,
    request_frame,
    resolve_home,
    socket_path as _socket_path,
)
from ._methods import _Methods

__all__ = ["Client", "connect", "Notification", "Subscription", "Service"]

log = logging.getLogger("agentnet")

T = TypeVar("T")


class Notification(NamedTuple):
    """A JSON-RPC notification from the node, e.g. ``msg.received``."""

    method: str
    params: Any


class Subscription(Generic[T]):
    """Notifications queued for iteration, from the moment it was created.

    Iterate it (``for msg in sub``) until the connection closes or
    :meth:`close` is called, or take one item with :meth:`get`. Use it as a
    context manager to close it.
    """

    _END = object()

    def __init__(self, client: "Client", accept: Callable[[Notification], bool], convert: Callable[[Notification], T]) -> None:
        self._client = client
        self._accept = accept
        self._convert = convert
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._closed = False

    def _offer(self, note: Notification) -> None:
        if not self._closed and self._accept(note):
            self._queue.put(self._convert(note))

    def _end(self) -> None:
        self._queue.put(self._END)

    def get(self, timeout: Optional[float] = None) -> T:
        """The next item; raises :class:`TimeoutError` after ``timeout``
        seconds and :class:`ConnectionClosedError` once the subscription or
        the connection is closed."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no notification within {timeout:g} s") from None
        if item is self._END:
            self._queue.put(self._END)  # keep it ended for later calls
            raise ConnectionClosedError("the subscription ended: " + ("closed" if self._closed else "the connection to the node closed"))
        return cast(T, item)

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.get()
            except ConnectionClosedError:
                return

    def close(self) -> None:
        """Stop queueing; a blocked iteration ends."""
        if not self._closed:
            self._closed = True
            self._client._remove_subscription(self)
            self._end()

    def __enter__(self) -> "Subscription[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Service:
    """A service served by :meth:`Client.serve`; :meth:`stop` unregisters it."""

    def __init__(self, client: "Client", name: str, remove: Callable[[], None]) -> None:
        self.client = client
        self.name = name
        self._remove = remove

    def stop(self) -> None:
        """Stop answering and unregister the service (if still connected)."""
        self._remove()
        if not self.client.closed:
            try:
                self.client.service_unregister(self.name)
            except AgentnetError:
                pass


Handler = Callable[[Message], Body]


class Client(_Methods):
    """A blocking client of a node's IPC socket.

    Args:
        home: the node's home folder (default ``$AGENTNET_HOME``, else
            ``~/.agentnet``); the socket is ``<home>/agentnet.sock``.
        socket_path: explicit socket path (wins over ``home``).
        timeout: seconds a call waits for the node's answer by default
            (``None``: forever). ``msg.send`` is bounded by the node anyway.
        handler_threads: threads that run :meth:`serve` handlers.
        connect_timeout: seconds to wait for the socket to accept.
        binary: negotiate raw body frames (``ipc.hello``): text and bytes
            bodies then cross the socket without base64 or JSON escaping.

    Raises:
        NodeNotRunningError: nothing listens on the socket (run
            ``agentnet start``).
        ConnectionFailedError: any other failure to connect (e.g. permission).
    """

    def __init__(
        self,
        home: Optional[str] = None,
        *,
        socket_path: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        handler_threads: int = 8,
        connect_timeout: float = 10.0,
        binary: bool = True,
    ) -> None:
        self.home = None if socket_path is not None else resolve_home(home)
        self.socket_path = _socket_path(self.home, socket_path)
        self.timeout = timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(self.socket_path)
            sock.settimeout(None)
        except OSError as err:
            sock.close()
            raise connect_error(self.socket_path, self.home, err) from None
        self._sock = sock
        self._rfile = sock.makefile("rb")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: Dict[int, "Future[Any]"] = {}
        self._listeners: List[Callable[[Notification], None]] = []
        self._subscriptions: List[Subscription[Any]] = []
        self._close_callbacks: List[Callable[[], None]] = []
        self._closed = threading.Event()
        self._close_reason: Optional[str] = None
        self._refused: Optional[str] = None
        self._refused_error: Optional[AgentnetError] = None
        self._trust_subscribed = False
        self._groups_subscribed = False
        self._dispatch: "queue.Queue[Optional[Callable[[], None]]]" = queue.Queue()
        self._executor = ThreadPoolExecutor(max_workers=handler_threads, thread_name_prefix="agentnet-handler")
        self._reader = threading.Thread(target=self._read_loop, name="agentnet-reader", daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="agentnet-dispatch", daemon=True)
        self._binary = False
        self._reader.start()
        self._dispatcher.start()
        if binary:
            try:
                hello = self.call("ipc.hello", {"features": [BINARY_FEATURE]}, timeout=connect_timeout)
                self._binary = BINARY_FEATURE in (hello.get("features") or [])
            except ConnectionClosedError:
                # accepted, then closed: refused (e.g. TooManyClients, said in an error line) or stopping
                self.close()
                if self._refused_error is not None:
                    raise self._refused_error from None
                raise NodeNotRunningError(f"the node on {self.socket_path} closed the connection at once: it is stopping") from None
            except AgentnetError as err:
                if err.code != "MethodNotFound":  # an older node speaks JSON only
                    self.close()
                    raise

    # ------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed.is_set()

    def close(self) -> None:
        """Close the connection: pending calls raise
        :class:`ConnectionClosedError`, subscriptions end, and the node frees
        this connection's services (their pending requests get
        ``ServiceUnavailable``)."""
        with self._lock:
            if self._close_reason is None:
                self._close_reason = "the client closed the connection"
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # the reader sees EOF and shuts down
        except OSError:
            pass
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=5)
        self._shutdown("the client closed the connection")

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Block until the connection closes (e.g. the node stops); returns
        False on timeout. Handy as an agent's main loop."""
        return self._closed.wait(timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _default_timeout(self) -> float:
        return self.timeout if self.timeout is not None else 0.0

    # ------------------------------------------------------------ calls

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None) -> Any:
        """Call any IPC method and return its result; methods without a typed
        wrapper yet work too, e.g. ``client.call("guard.list")``.

        Args:
            timeout: seconds to wait (default: the client's ``timeout``).

        Raises:
            AgentnetError: the node's error, with ``code`` (``data.code``)
                and ``rpc_code``.
            RequestTimeoutError: no answer in time.
            ConnectionClosedError: the connection closed first.
        """
        if self._closed.is_set():
            raise ConnectionClosedError(self._reason())
        future: "Future[Any]" = Future()
        id_ = next(self._ids)
        with self._lock:
            self._pending[id_] = future
        frames = request_frame(id_, method, params, self._binary)
        try:
            with self._write_lock:
                for frame in frames:
                    self._sock.sendall(frame)
        except OSError as err:
            with self._lock:
                self._pending.pop(id_, None)
            self._shutdown(f"writing to the node failed: {err}")
            raise ConnectionClosedError(self._reason()) from None
        wait = self.timeout if timeout is None else timeout
        try:
            return future.result(wait)
        except FutureTimeout:
            with self._lock:
                self._pending.pop(id_, None)
            raise RequestTimeoutError(method, wait if wait is not None else 0.0) from None

    # ------------------------------------------------------------ notifications: callbacks

    def on(self, method: Optional[str], callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(params)`` for every notification ``method`` (or,
        with ``None``, ``callback(Notification)`` for every notification).
        Returns a function that removes the callback. Callbacks run on the
        dispatcher thread, one at a time, in arrival order."""

        def listener(note: Notification) -> None:
            if method is None:
                callback(note)
            elif note.method == method:
                callback(note.params)

        return self._add_listener(listener)

    def on_message(self, callback: Callable[[Message], None], service: Optional[str] = None) -> Callable[[], None]:
        """Call ``callback(message)`` for each inbound message (``msg.received``)
        of a registered service (all, or only ``service``). The callback
        answers requests itself (:meth:`reply`); :meth:`serve` does that for
        you."""

        def listener(note: Notification) -> None:
            if note.method == "msg.received":
                message = Message.from_params(note.params)
                if service is None or message.service == service:
                    callback(message)

        return self._add_listener(listener)

    def on_trust_pending(self, callback: Callable[[PendingRequest], None]) -> List[PendingRequest]:
        """Subscribe to inbound trust requests (``trust.subscribe``) and call
        ``callback(request)`` for each new one; returns those pending now."""
        self.on("trust.pending", callback)
        return self.trust_subscribe()["pending"]

    def on_group_message(self, callback: Callable[[GroupMessage], None], group_id: Optional[str] = None) -> Callable[[], None]:
        """Call ``callback(message)`` for each message received in a group
        (every group, or only ``group_id``); subscribes this connection to
        group messages (``group.subscribe``) once. Returns a function that
        removes the callback."""

        def listener(note: Notification) -> None:
            if note.method == "group.received":
                message = GroupMessage.from_params(note.params)
                if group_id is None or message.group_id == group_id:
                    callback(message)

        remove = self._add_listener(listener)
        self._subscribe_groups()
        return remove

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once when the connection closes."""
        run_now = False
        with self._lock:
            if self._closed.is_set():
                run_now = True
            else:
                self._close_callbacks.append(callback)
        if run_now:
            callback()

    # ------------------------------------------------------------ notifications: iterators

    def notifications(self, method: Optional[str] = None) -> Subscription[Notification]:
        """Every notification (or only ``method``), as a blocking iterator of
        :class:`Notification` from now on."""
        return self._subscribe(lambda n: method is None or n.method == method, lambda n: n)

    def messages(self, service: Optional[str] = None) -> Subscription[Message]:
        """Inbound messages of registered services (all, or only ``service``)
        as a blocking iterator of :class:`Message` from now on. Register the
        service first (:meth:`service_register`) and answer requests with
        :meth:`reply`."""
        return self._subscribe(
            lambda n: n.method == "msg.received" and (service is None or n.params.get("service") == service),
            lambda n: Message.from_params(n.params),
        )

    def trust_requests(self) -> Subscription[PendingRequest]:
        """New inbound trust requests as a blocking iterator (calls
        ``trust.subscribe``; those pending already are in :meth:`trust_pending`)."""
        sub: Subscription[PendingRequest] = self._subscribe(lambda n: n.method == "trust.pending", lambda n: n.params)
        if not self._trust_subscribed:
            self.trust_subscribe()
            self._trust_subscribed = True
        return sub

    def group_messages(self, group_id: Optional[str] = None) -> Subscription[GroupMessage]:
        """Messages received in groups (every group, or only ``group_id``)
        from now on, as a blocking iterator of :class:`GroupMessage`
        (subscribes this connection once, see :meth:`group_subscribe`)."""
        sub: Subscription[GroupMessage] = self._subscribe(
            lambda n: n.method == "group.received" and (group_id is None or n.params.get("groupId") == group_id),
            lambda n: GroupMessage.from_params(n.params),
        )
        self._subscribe_groups()
        return sub

    def _subscribe_groups(self) -> None:
        if not self._groups_subscribed:
            self.group_subscribe()

    def group_subscribe(self, group_id: Optional[str] = None) -> GroupSubscription:
        result = super().group_subscribe(group_id)
        if group_id is None:
            self._groups_subscribed = True
        return result

    group_subscribe.__doc__ = _Methods.group_subscribe.__doc__

    def trust_subscribe(self) -> TrustSubscription:
        result = super().trust_subscribe()
        self._trust_subscribed = True
        return result

    trust_subscribe.__doc__ = _Methods.trust_subscribe.__doc__

    # ------------------------------------------------------------ serving

    def serve(self, service: str, handler: Handler, *, register: bool = True) -> Service:
        """Register ``service`` and answer each request with
        ``handler(message)``'s return value (``str``, ``bytes`` or any JSON
        value). An exception becomes an error reply: its ``code`` attribute
        if it has one (see :class:`ServiceError`), else its class name, and
        its message. One-way messages go to the handler too; their return
        value is dropped. Handlers run on the client's handler threads and may
        call the client.

        Returns a :class:`Service`; :meth:`Service.stop` unregisters it.
        Block the main thread with :meth:`wait_closed` to keep serving.
        """

        def run(message: Message) -> None:
            try:
                result = handler(message)
            except Exception as exc:  # the handler's failure is the sender's error reply
                if message.is_request:
                    self._answer(message, {"error": error_reply(exc)})
                else:
                    log.warning("handler for %s failed on a one-way message: %r", service, exc)
                return
            if message.is_request:
                self._answer(message, body_params(result))

        def listener(note: Notification) -> None:
            if note.method == "msg.received" and note.params.get("service") == service:
                try:
                    self._executor.submit(run, Message.from_params(note.params))
                except RuntimeError:  # the client is closing
                    pass

        remove = self._add_listener(listener)
        if register:
            try:
                self.service_register(service)
            except BaseException:
                remove()
                raise
        return Service(self, service, remove)

    def _answer(self, message: Message, params: Dict[str, Any]) -> None:
        try:
            self.call("msg.reply", {"id": message.id, **params})
        except AgentnetError as err:
            log.warning("could not answer %s request %s: %s", message.service, message.request_id, err)

    # ------------------------------------------------------------ internals

    def _add_listener(self, listener: Callable[[Notification], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _subscribe(self, accept: Callable[[Notification], bool], convert: Callable[[Notification], Any]) -> Subscription[Any]:
        sub: Subscription[Any] = Subscription(self, accept, convert)
        with self._lock:
            if self._closed.is_set():
                sub._end()
            else:
                self._subscriptions.append(sub)
        return sub

    def _remove_subscription(self, sub: Subscription[Any]) -> None:
        with self._lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

    def _read_loop(self) -> None:
        reason = "the agentnet node closed the connection"
        try:
            while True:
                line = self._rfile.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if not line.endswith(b"\n"):
                    if len(line) > MAX_LINE_BYTES:
                        reason = f"the node sent a line over {MAX_LINE_BYTES} bytes"
                    break
                msg = self._parse_line(line)
                n = body_length(msg)
                if n is not None:
                    raw = self._rfile.read(n)
                    if len(raw) < n:
                        break
                    attach_body(msg, raw)
                if msg is not None:
                    self._handle_message(msg)
        except OSError as err:
            reason = f"reading from the node failed: {err}"
        except Exception as err:  # a bug here must not hang the callers
            log.exception("agentnet reader failed")
            reason = f"the client's reader failed: {err!r}"
        self._shutdown(reason)
        for closable in (self._rfile, self._sock):
            try:
                closable.close()
            except OSError:
                pass

    def _parse_line(self, line: bytes) -> Optional[Dict[str, Any]]:
        try:
            msg = json.loads(line)
        except ValueError:
            log.warning("ignoring a line from the node that is not JSON")
            return None
        return msg if isinstance(msg, dict) else None

    def _handle_message(self, msg: Dict[str, Any]) -> None:
        if "method" in msg and "id" not in msg:
            self._notify(Notification(str(msg["method"]), msg.get("params")))
            return
        id_ = msg.get("id")
        if not isinstance(id_, int) and id_ is not None:
            return
        if "error" in msg and isinstance(msg["error"], dict):
            error = AgentnetError.from_rpc(msg["error"])
            if id_ is None:
                self._refused_error = error  # e.g. LineTooLong; the node closes the connection next
                self._refused = f"the node refused a request: {error}"
                return
            with self._lock:
                future = self._pending.pop(id_, None) if id_ is not None else None
            if future is not None:
                future.set_exception(error)
        elif "result" in msg:
            with self._lock:
                future = self._pending.pop(id_, None) if id_ is not None else None
            if future is not None:
                future.set_result(msg["result"])

    def _notify(self, note: Notification) -> None:
        with self._lock:
            listeners = list(self._listeners)
            subscriptions = list(self._subscriptions)
        for sub in subscriptions:
            sub._offer(note)
        for listener in listeners:
            self._dispatch.put(functools.partial(listener, note))

    def _dispatch_loop(self) -> None:
        while True:
            job = self._dispatch.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("an agentnet notification callback failed")

    def _reason(self) -> str:
        reason = self._close_reason or "the connection to the agentnet node closed"
        return reason if self._refused is None else f"{reason} ({self._refused})"

    def _shutdown(self, reason: str) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            if self._close_reason is None:
                self._close_reason = reason
            self._closed.set()
            pending = list(self._pending.values())
            self._pending.clear()
            subscriptions = list(self._subscriptions)
            self._subscriptions.clear()
            callbacks = list(self._close_callbacks)
            self._close_callbacks.clear()
        for future in pending:
            if not future.done():
                future.set_exception(ConnectionClosedError(self._reason()))
        for sub in subscriptions:
            sub._end()
        for callback in callbacks:
            self._dispatch.put(callback)
        self._dispatch.put(None)
        self._executor.shutdown(wait=False)
        if threading.current_thread() is self._reader or not self._reader.is_alive():
            for closable in (self._rfile, self._sock):
                try:
                    closable.close()
                except OSError:
                    pass


def connect(home: Optional[str] = None, **options: Any) -> Client:
    """Connect to the node on ``home`` (default ``$AGENTNET_HOME``, else
    ``~/.agentnet``); see :class:`Client` for the options. Use as a context
    manager to close it: ``with agentnet.connect() as node: ...``."""
    return Client(home, **options)
