"""The asyncio client: the same methods as :class:`agentnet.Client`, as
coroutines, on ``asyncio.open_unix_connection``.

Example::

    import asyncio
    import agentnet.aio

    async def main() -> None:
        async with await agentnet.aio.connect() as node:
            print((await node.node_info())["peerId"])
            async def echo(message):
                return message.body
            await node.serve("echo", echo)
            await node.wait_closed()

    asyncio.run(main())

Calls are multiplexed on one connection: ``asyncio.gather`` many of them.
Callbacks may be plain functions or coroutine functions (run as tasks).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Generic, List, Mapping, Optional, Set, TypeVar, Union, cast

from ._async_methods import _AsyncMethods
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
    connect_error,
    BINARY_FEATURE,
    attach_body,
    body_length,
    body_params,
    error_reply,
    request_frame,
    resolve_home,
    socket_path as _socket_path,
)
from .client import Notification

__all__ = ["AsyncClient", "AsyncSubscription", "AsyncService", "connect"]

log = logging.getLogger("agentnet")

T = TypeVar("T")

AsyncHandler = Callable[[Message], Union[Body, Awaitable[Body]]]


class AsyncSubscription(Generic[T]):
    """Notifications queued from the moment it was created; iterate with
    ``async for`` until the connection or the subscription closes, or take
    one with ``await sub.get(timeout)``."""

    _END = object()

    def __init__(self, client: "AsyncClient", accept: Callable[[Notification], bool], convert: Callable[[Notification], T]) -> None:
        self._client = client
        self._accept = accept
        self._convert = convert
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        self._closed = False

    def _offer(self, note: Notification) -> None:
        if not self._closed and self._accept(note):
            self._queue.put_nowait(self._convert(note))

    def _end(self) -> None:
        self._queue.put_nowait(self._END)

    async def get(self, timeout: Optional[float] = None) -> T:
        """The next item; raises :class:`asyncio.TimeoutError` after
        ``timeout`` seconds and :class:`ConnectionClosedError` once closed."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is self._END:
            self._queue.put_nowait(self._END)
            raise ConnectionClosedError("the subscription ended: " + ("closed" if self._closed else "the connection to the node closed"))
        return cast(T, item)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.get()
            except ConnectionClosedError:
                return

    def close(self) -> None:
        """Stop queueing; a waiting iteration ends."""
        if not self._closed:
            self._closed = True
            self._client._remove_subscription(self)
            self._end()

    def __enter__(self) -> "AsyncSubscription[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncService:
    """A service served by :meth:`AsyncClient.serve`; ``await stop()``
    unregisters it."""

    def __init__(self, client: "AsyncClient", name: str, remove: Callable[[], None]) -> None:
        self.client = client
        self.name = name
        self._remove = remove

    async def stop(self) -> None:
        """Stop answering and unregister the service (if still connected)."""
        self._remove()
        if not self.client.closed:
            try:
                await self.client.service_unregister(self.name)
            except AgentnetError:
                pass


class AsyncClient(_AsyncMethods):
    """An asyncio client of a node's IPC socket. Create it with
    :func:`connect` (or :meth:`AsyncClient.connect`)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        home: Optional[str],
        socket_path: str,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.home = home
        self.socket_path = socket_path
        self.timeout = timeout
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._listeners: List[Callable[[Notification], Any]] = []
        self._subscriptions: List[AsyncSubscription[Any]] = []
        self._close_callbacks: List[Callable[[], Any]] = []
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._closed = asyncio.Event()
        self._close_reason: Optional[str] = None
        self._refused: Optional[str] = None
        self._refused_error: Optional[AgentnetError] = None
        self._trust_subscribed = False
        self._groups_subscribed = False
        self._binary = False
        self._read_task = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def connect(
        cls,
        home: Optional[str] = None,
        *,
        socket_path: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        connect_timeout: float = 10.0,
        binary: bool = True,
    ) -> "AsyncClient":
        """Connect to the node on ``home`` (default ``$AGENTNET_HOME``, else
        ``~/.agentnet``) or at ``socket_path``.

        Raises:
            NodeNotRunningError: nothing listens on the socket (run ``agentnet start``).
            ConnectionFailedError: any other failure to connect.

        With ``binary`` (the default) it negotiates raw body frames
        (``ipc.hello``): text and bytes bodies then cross the socket without
        base64 or JSON escaping.
        """
        resolved = None if socket_path is not None else resolve_home(home)
        path = _socket_path(resolved, socket_path)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path, limit=MAX_LINE_BYTES + 1), connect_timeout
            )
        except OSError as err:
            raise connect_error(path, resolved, err) from None
        client = cls(reader, writer, home=resolved, socket_path=path, timeout=timeout)
        if binary:
            try:
                hello = await client.call("ipc.hello", {"features": [BINARY_FEATURE]}, timeout=connect_timeout)
                client._binary = BINARY_FEATURE in (hello.get("features") or [])
            except ConnectionClosedError:
                # accepted, then closed: refused (e.g. TooManyClients, said in an error line) or stopping
                await client.close()
                if client._refused_error is not None:
                    raise client._refused_error from None
                raise NodeNotRunningError(f"the node on {path} closed the connection at once: it is stopping") from None
            except AgentnetError as err:
                if err.code != "MethodNotFound":  # an older node speaks JSON only
                    await client.close()
                    raise
        return client

    # ------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed.is_set()

    async def close(self) -> None:
        """Close the connection: pending calls raise
        :class:`ConnectionClosedError`, subscriptions end, and the node frees
        this connection's services."""
        if self._close_reason is None:
            self._close_reason = "the client closed the connection"
        self._writer.close()
        try:
            await asyncio.wait_for(self._read_task, 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            self._read_task.cancel()
        self._shutdown("the client closed the connection")
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    async def wait_closed(self) -> None:
        """Wait until the connection closes (e.g. the node stops)."""
        await self._closed.wait()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _default_timeout(self) -> float:
        return self.timeout if self.timeout is not None else 0.0

    # ------------------------------------------------------------ calls

    async def call(self, method: str, params: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None) -> Any:
        """Call any IPC method and return its result, e.g.
        ``await client.call("group.list")``.

        Raises:
            AgentnetError: the node's error, with ``code`` and ``rpc_code``.
            RequestTimeoutError: no answer within ``timeout`` (default: the client's).
            ConnectionClosedError: the connection closed first.
        """
        if self._closed.is_set():
            raise ConnectionClosedError(self._reason())
        id_ = next(self._ids)
        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._pending[id_] = future
        try:
            for frame in request_frame(id_, method, params, self._binary):
                self._writer.write(frame)
            await self._writer.drain()
        except (OSError, RuntimeError) as err:
            self._pending.pop(id_, None)
            self._shutdown(f"writing to the node failed: {err}")
            raise ConnectionClosedError(self._reason()) from None
        wait = self.timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(future, wait)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(method, wait if wait is not None else 0.0) from None
        finally:
            self._pending.pop(id_, None)

    # ------------------------------------------------------------ notifications: callbacks

    def on(self, method: Optional[str], callback: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``callback(params)`` for every notification ``method`` (or
        ``callback(Notification)`` for all, with ``None``). A coroutine
        function's calls run as tasks. Returns a function removing it."""

        def listener(note: Notification) -> Any:
            if method is None:
                return callback(note)
            if note.method == method:
                return callback(note.params)
            return None

        return self._add_listener(listener)

    def on_message(self, callback: Callable[[Message], Any], service: Optional[str] = None) -> Callable[[], None]:
        """Call ``callback(message)`` for each inbound message of a registered
        service (all, or only ``service``); answer with :meth:`reply`."""

        def listener(note: Notification) -> Any:
            if note.method == "msg.received":
                message = Message.from_params(note.params)
                if service is None or message.service == service:
                    return callback(message)
            return None

        return self._add_listener(listener)

    async def on_trust_pending(self, callback: Callable[[PendingRequest], Any]) -> List[PendingRequest]:
        """Subscribe to inbound trust requests and call ``callback(request)``
        for each new one; returns those pending now."""
        self.on("trust.pending", callback)
        return (await self.trust_subscribe())["pending"]

    async def on_group_message(self, callback: Callable[[GroupMessage], Any], group_id: Optional[str] = None) -> Callable[[], None]:
        """Call ``callback(message)`` for each message received in a group
        (every group, or only ``group_id``); subscribes this connection to
        group messages (``group.subscribe``) once. Returns a function that
        removes the callback."""

        def listener(note: Notification) -> Any:
            if note.method == "group.received":
                message = GroupMessage.from_params(note.params)
                if group_id is None or message.group_id == group_id:
                    return callback(message)
            return None

        remove = self._add_listener(listener)
        await self._subscribe_groups()
        return remove

    def on_close(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` once when the connection closes."""
        if self._closed.is_set():
            self._run(callback)
        else:
            self._close_callbacks.append(callback)

    # ------------------------------------------------------------ notifications: iterators

    def notifications(self, method: Optional[str] = None) -> AsyncSubscription[Notification]:
        """Every notification (or only ``method``) from now on, as an async
        iterator of :class:`Notification`."""
        return self._subscribe(lambda n: method is None or n.method == method, lambda n: n)

    def messages(self, service: Optional[str] = None) -> AsyncSubscription[Message]:
        """Inbound messages of registered services (all, or ``service``) from
        now on, as an async iterator of :class:`Message`."""
        return self._subscribe(
            lambda n: n.method == "msg.received" and (service is None or n.params.get("service") == service),
            lambda n: Message.from_params(n.params),
        )

    async def trust_requests(self) -> AsyncSubscription[PendingRequest]:
        """New inbound trust requests as an async iterator (calls
        ``trust.subscribe`` once per connection)."""
        sub: AsyncSubscription[PendingRequest] = self._subscribe(lambda n: n.method == "trust.pending", lambda n: n.params)
        if not self._trust_subscribed:
            await self.trust_subscribe()
        return sub

    async def group_messages(self, group_id: Optional[str] = None) -> AsyncSubscription[GroupMessage]:
        """Messages received in groups (every group, or only ``group_id``)
        from now on, as an async iterator of :class:`GroupMessage`
        (subscribes this connection once, see :meth:`group_subscribe`)."""
        sub: AsyncSubscription[GroupMessage] = self._subscribe(
            lambda n: n.method == "group.received" and (group_id is None or n.params.get("groupId") == group_id),
            lambda n: GroupMessage.from_params(n.params),
        )
        await self._subscribe_groups()
        return sub

    async def _subscribe_groups(self) -> None:
        if not self._groups_subscribed:
            await self.group_subscribe()

    async def group_subscribe(self, group_id: Optional[str] = None) -> GroupSubscription:
        result = await super().group_subscribe(group_id)
        if group_id is None:
            self._groups_subscribed = True
        return result

    group_subscribe.__doc__ = _AsyncMethods.group_subscribe.__doc__

    async def trust_subscribe(self) -> TrustSubscription:
        result = await super().trust_subscribe()
        self._trust_subscribed = True
        return result

    trust_subscribe.__doc__ = _AsyncMethods.trust_subscribe.__doc__

    # ------------------------------------------------------------ serving

    async def serve(self, service: str, handler: AsyncHandler, *, register: bool = True) -> AsyncService:
        """Register ``service`` and answer each request with the return value
        of ``handler(message)`` (a plain or a coroutine function; ``str``,
        ``bytes`` or any JSON value). An exception becomes an error reply with
        its ``code`` attribute (see :class:`~agentnet.ServiceError`) or class
        name. Each message is handled in its own task. One-way messages reach
        the handler too; their return value is dropped."""

        async def run(message: Message) -> None:
            try:
                result = handler(message)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                if message.is_request:
                    await self._answer(message, {"error": error_reply(exc)})
                else:
                    log.warning("handler for %s failed on a one-way message: %r", service, exc)
                return
            if message.is_request:
                await self._answer(message, body_params(result))

        def listener(note: Notification) -> Any:
            if note.method == "msg.received" and note.params.get("service") == service:
                return run(Message.from_params(note.params))
            return None

        remove = self._add_listener(listener)
        if register:
            try:
                await self.service_register(service)
            except BaseException:
                remove()
                raise
        return AsyncService(self, service, remove)

    async def _answer(self, message: Message, params: Dict[str, Any]) -> None:
        try:
            await self.call("msg.reply", {"id": message.id, **params})
        except AgentnetError as err:
            log.warning("could not answer %s request %s: %s", message.service, message.request_id, err)

    # ------------------------------------------------------------ internals

    def _add_listener(self, listener: Callable[[Notification], Any]) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _subscribe(self, accept: Callable[[Notification], bool], convert: Callable[[Notification], Any]) -> AsyncSubscription[Any]:
        sub: AsyncSubscription[Any] = AsyncSubscription(self, accept, convert)
        if self._closed.is_set():
            sub._end()
        else:
            self._subscriptions.append(sub)
        return sub

    def _remove_subscription(self, sub: AsyncSubscription[Any]) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call a callback; a coroutine it returns runs as a task."""
        try:
            result = fn(*args)
        except Exception:
            log.exception("an agentnet callback failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an agentnet callback failed", exc_info=task.exception())

    async def _read_loop(self) -> None:
        reason = "the agentnet node closed the connection"
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    break
                msg = self._parse_line(line)
                n = body_length(msg)
                if n is not None:
                    try:
                        raw = await self._reader.readexactly(n)
                    except asyncio.IncompleteReadError:
                        break
                    attach_body(msg, raw)
                if msg is not None:
                    self._handle_message(msg)
        except (ValueError, asyncio.LimitOverrunError):
            reason = f"the node sent a line over {MAX_LINE_BYTES} bytes"
        except OSError as err:
            reason = f"reading from the node failed: {err}"
        except asyncio.CancelledError:
            reason = "the client closed the connection"
        self._shutdown(reason)

    def _parse_line(self, line: bytes) -> Optional[Dict[str, Any]]:
        try:
            msg = json.loads(line)
        except ValueError:
            log.warning("ignoring a line from the node that is not JSON")
            return None
        return msg if isinstance(msg, dict) else None

    def _handle_message(self, msg: Dict[str, Any]) -> None:
        if "method" in msg and "id" not in msg:
            note = Notification(str(msg["method"]), msg.get("params"))
            for sub in list(self._subscriptions):
                sub._offer(note)
            for listener in list(self._listeners):
                self._run(listener, note)
            return
        id_ = msg.get("id")
        if not isinstance(id_, int) and id_ is not None:
            return
        if "error" in msg and isinstance(msg["error"], dict):
            error = AgentnetError.from_rpc(msg["error"])
            if id_ is None:
                self._refused_error = error
                self._refused = f"the node refused a request: {error}"
                return
            future = self._pending.pop(id_, None) if id_ is not None else None
            if future is not None and not future.done():
                future.set_exception(error)
        elif "result" in msg:
            future = self._pending.pop(id_, None) if id_ is not None else None
            if future is not None and not future.done():
                future.set_result(msg["result"])

    def _reason(self) -> str:
        reason = self._close_reason or "the connection to the agentnet node closed"
        return reason if self._refused is None else f"{reason} ({self._refused})"

    def _shutdown(self, reason: str) -> None:
        if self._closed.is_set():
            return
        if self._close_reason is None:
            self._close_reason = reason
        self._closed.set()
        pending = list(self._pending.values())
        self._pending.clear()
        for future in pending:
            if not future.done():
                future.set_exception(ConnectionClosedError(self._reason()))
        for sub in self._subscriptions:
            sub._end()
        self._subscriptions.clear()
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            self._run(callback)
        if not self._writer.is_closing():
            self._writer.close()


async def connect(home: Optional[str] = None, **options: Any) -> AsyncClient:
    """Connect to the node on ``home``; see :meth:`AsyncClient.connect`.
    ``async with await agentnet.aio.connect() as node: ...`` closes it."""
    return await AsyncClient.connect(home, **options)
