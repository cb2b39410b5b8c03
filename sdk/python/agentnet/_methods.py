"""Typed wrappers of the node's IPC methods for the blocking client.

This file is the single source of the wrappers: ``tools/gen_async.py`` turns
it into ``_async_methods.py`` (the same methods as coroutines) for
:class:`agentnet.aio.AsyncClient`. Edit this file, then run
``python3 sdk/python/tools/gen_async.py``; a test checks the two agree.

Every wrapper is one call of :meth:`call` with the params the README's method
table names; optional params left as ``None`` are not sent.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, cast

from ._common import (
    Alias,
    AliasRemoved,
    Body,
    Card,
    ConnectResult,
    GroupCreated,
    GroupEpoch,
    GroupLeft,
    GroupSent,
    GroupSubscription,
    GroupSummary,
    GuardCheck,
    GuardPolicy,
    Invite,
    InviteAccepted,
    NodeInfo,
    NodeMetrics,
    NodeReadiness,
    NodeStatus,
    NodeStopping,
    PeerSummary,
    PendingRequest,
    PingResult,
    PostureCounts,
    Prometheus,
    Protected,
    ProtectedEntry,
    Reply,
    ServiceResult,
    TokenRevocation,
    TrustDecision,
    TrustEntry,
    TrustResult,
    TrustSubscription,
    Unprotected,
    clean_params,
    body_params,
    error_reply,
)


class _Methods:
    """The IPC methods; subclasses provide :meth:`call`."""

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None) -> Any:
        raise NotImplementedError

    # ---------------------------------------------------------------- node

    def node_info(self) -> NodeInfo:
        """``node.info``: this node's peer ID, addresses, protocols and version."""
        return cast(NodeInfo, self.call("node.info"))

    def node_status(self) -> NodeStatus:
        """``node.status``: addresses, reachability, relay reservations and
        connections (each with ``direct`` and ``transport``)."""
        return cast(NodeStatus, self.call("node.status"))

    def node_metrics(self) -> NodeMetrics:
        """``node.metrics``: messages sent/received, rejections by code,
        retries, duplicates, replay-cache size, the outbox's and the leakage
        guard's counters (``guard``: actions and blocked categories) and the
        last posture review's counts (``posture``, once one ran)."""
        return cast(NodeMetrics, self.call("node.metrics"))

    # ---------------------------------------------------------------- peers

    def peers_list(self) -> List[PeerSummary]:
        """``peers.list``: the connected peers."""
        return cast(List[PeerSummary], self.call("peers.list"))

    def peer_connect(self, target: str) -> ConnectResult:
        """``peer.connect``: open a connection to a multiaddr, peer ID, petname
        or ``agentnet://`` URL. Raises ``InvalidTarget``, ``PeerUnreachable``."""
        return cast(ConnectResult, self.call("peer.connect", {"target": target}))

    def peer_ping(self, target: str) -> PingResult:
        """``peer.ping``: round-trip time to a peer (``rttMs``)."""
        return cast(PingResult, self.call("peer.ping", {"target": target}))

    # ---------------------------------------------------------------- services and messages

    def service_register(self, service: str) -> ServiceResult:
        """``service.register``: inbound messages for ``service`` then arrive on
        this connection as ``msg.received`` notifications (see :meth:`on_message`,
        :meth:`messages` and :meth:`serve`). Raises ``ServiceTaken`` if another
        connection holds it."""
        return cast(ServiceResult, self.call("service.register", {"service": service}))

    def service_unregister(self, service: str) -> ServiceResult:
        """``service.unregister``: stop receiving ``service``'s messages."""
        return cast(ServiceResult, self.call("service.unregister", {"service": service}))

    def send(
        self,
        to: str,
        service: Optional[str] = None,
        body: Body = None,
        *,
        oneway: bool = False,
        timeout_ms: Optional[int] = None,
    ) -> Reply:
        """``msg.send``: send a request (returns the peer's answer) or, with
        ``oneway=True``, a one-way message (returns once the receiving node
        accepted it, ``reply.accepted`` is then true).

        ``to`` is a peer ID, petname or ``agentnet://<peer>/<service>`` URL (then
        ``service`` may be omitted). ``body``: ``str`` → text, ``bytes`` →
        octet stream, any other JSON value → JSON; the answer's body comes back
        in the form the peer used.

        Raises :class:`AgentnetError` with the node's code: ``UntrustedPeer``,
        ``NoSuchService``, ``RequestTimeout``, ``PeerUnreachable``, ... or the
        remote service's own error code.
        """
        params: Dict[str, Any] = {"to": to}
        if service is not None:
            params["service"] = service
        params.update(body_params(body))
        if oneway:
            params["oneway"] = True
        if timeout_ms is not None:
            params["timeoutMs"] = timeout_ms
        # the node bounds the request itself; wait a little longer than it does
        timeout = None if timeout_ms is None else max(timeout_ms / 1000 + 30, self._default_timeout())
        return Reply.from_result(self.call("msg.send", params, timeout=timeout))

    def request(self, to: str, service: Optional[str] = None, body: Body = None, *, timeout_ms: Optional[int] = None) -> Body:
        """Send a request and return just the answer's body (see :meth:`send`)."""
        reply = self.send(to, service, body, timeout_ms=timeout_ms)
        return reply.body

    def send_oneway(self, to: str, service: Optional[str] = None, body: Body = None) -> Reply:
        """Send a one-way message; returns once the receiving node accepted it."""
        return self.send(to, service, body, oneway=True)

    def reply(self, id: str, body: Body = None) -> Dict[str, Any]:
        """``msg.reply``: answer the delivered request ``id``
        (:attr:`Message.id`) with ``body``. Raises ``UnknownDelivery`` if it
        was answered already, timed out, or was one-way."""
        params: Dict[str, Any] = {"id": id}
        params.update(body_params(body))
        return cast(Dict[str, Any], self.call("msg.reply", params))

    def reply_error(self, id: str, code: Optional[str], message: str) -> Dict[str, Any]:
        """``msg.reply`` with an error: the sender's ``send`` raises
        :class:`AgentnetError` with this ``code`` (``ServiceError`` if ``None``)."""
        return cast(Dict[str, Any], self.call("msg.reply", {"id": id, "error": clean_params(code=code, message=message)}))

    def reply_exception(self, id: str, exc: BaseException) -> Dict[str, Any]:
        """Answer ``id`` with the error for an exception (its ``code`` attribute
        or class name, and its message)."""
        return cast(Dict[str, Any], self.call("msg.reply", {"id": id, "error": error_reply(exc)}))

    # ---------------------------------------------------------------- tokens and cards

    def token_revoke(self, peer: str) -> TokenRevocation:
        """``token.revoke``: invalidate every session token issued to ``peer``."""
        return cast(TokenRevocation, self.call("token.revoke", {"peer": peer}))

    def card_lookup(self, peer: str) -> Card:
        """``card.lookup``: fetch and verify ``peer``'s agent card from the DHT.
        Raises ``CardNotFound``, ``InvalidCard``."""
        return cast(Card, self.call("card.lookup", {"peer": peer}))

    def card_publish(
        self,
        name: Optional[str] = None,
        services: Optional[List[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Card:
        """``card.publish``: update and publish this node's agent card."""
        return cast(Card, self.call("card.publish", clean_params(name=name, services=services, metadata=metadata)))

    # ---------------------------------------------------------------- trust

    def trust_request(self, peer: str, reason: str) -> TrustResult:
        """``trust.request``: ask ``peer`` to trust this node, with a
        justification (≤ 1 KiB). ``state`` is ``pending-outbound``, or
        ``trusted`` if the peer had asked too."""
        return cast(TrustResult, self.call("trust.request", {"peer": peer, "reason": reason}))

    def trust_pending(self) -> List[PendingRequest]:
        """``trust.pending``: inbound trust requests waiting for a decision."""
        return cast(List[PendingRequest], self.call("trust.pending"))

    def trust_approve(self, peer: str) -> TrustDecision:
        """``trust.approve``: approve ``peer``'s pending request; both sides then
        trust each other. Raises ``NotPending``."""
        return cast(TrustDecision, self.call("trust.approve", {"peer": peer}))

    def trust_reject(self, peer: str, reason: Optional[str] = None) -> TrustDecision:
        """``trust.reject``: reject ``peer``'s pending request."""
        return cast(TrustDecision, self.call("trust.reject", clean_params(peer=peer, reason=reason)))

    def trust_revoke(self, peer: str, reason: Optional[str] = None) -> TrustDecision:
        """``trust.revoke``: drop trust in ``peer``, tell it, close its
        connections and revoke its tokens."""
        return cast(TrustDecision, self.call("trust.revoke", clean_params(peer=peer, reason=reason)))

    def trust_list(self) -> List[TrustEntry]:
        """``trust.list``: every peer in the trust store with its state."""
        return cast(List[TrustEntry], self.call("trust.list"))

    def trust_subscribe(self) -> TrustSubscription:
        """``trust.subscribe``: new inbound requests then arrive on this
        connection as ``trust.pending`` notifications (see
        :meth:`on_trust_pending`); the result lists those pending now."""
        return cast(TrustSubscription, self.call("trust.subscribe"))

    # ---------------------------------------------------------------- invites

    def invite_create(self, ttl_ms: Optional[int] = None, uses: Optional[int] = None) -> Invite:
        """``invite.create``: a signed invite code (``code``) for others to accept."""
        return cast(Invite, self.call("invite.create", clean_params(ttlMs=ttl_ms, uses=uses)))

    def invite_accept(self, code: str) -> InviteAccepted:
        """``invite.accept``: connect to the inviter and present the code; both
        sides then trust each other. Raises ``InviteInvalid``,
        ``InviteExpired``, ``InviteUsedUp``, ``PeerUnreachable``."""
        return cast(InviteAccepted, self.call("invite.accept", {"code": code}))

    # ---------------------------------------------------------------- petnames

    def alias_list(self) -> List[Alias]:
        """``alias.list``: the local petnames."""
        return cast(List[Alias], self.call("alias.list"))

    def alias_add(self, name: str, peer_id: str) -> Alias:
        """``alias.add``: name a peer locally; the name then works wherever a
        peer is expected. Raises ``InvalidAlias``."""
        return cast(Alias, self.call("alias.add", {"name": name, "peerId": peer_id}))

    def alias_remove(self, name: str) -> AliasRemoved:
        """``alias.remove``: forget a petname."""
        return cast(AliasRemoved, self.call("alias.remove", {"name": name}))

    # ---------------------------------------------------------------- leakage guard

    def guard_protect(
        self,
        value: str,
        label: str,
        category: str,
        scope: Optional[str] = None,
        ttl_ms: Optional[int] = None,
        persist: Optional[bool] = None,
    ) -> Protected:
        """``guard.protect``: register a value the agent holds (``category`` a
        lower-case path such as ``finance/card``) so that it does not leave the
        node unless a policy allows its category; ``scope`` groups values for
        :meth:`guard_unprotect`, ``ttl_ms`` expires it, ``persist`` keeps it
        across restarts. The value never comes back out. Raises
        ``InvalidParams``, ``GuardLimit``."""
        return cast(
            Protected,
            self.call(
                "guard.protect",
                clean_params(value=value, label=label, category=category, scope=scope, ttlMs=ttl_ms, persist=persist),
            ),
        )

    def guard_unprotect(self, id: Optional[str] = None, scope: Optional[str] = None) -> Unprotected:
        """``guard.unprotect``: forget one registered value (``id``) or every
        value of a ``scope``."""
        if (id is None) == (scope is None):
            raise ValueError("guard_unprotect takes exactly one of id or scope")
        return cast(Unprotected, self.call("guard.unprotect", clean_params(id=id, scope=scope)))

    def guard_list(self, scope: Optional[str] = None) -> List[ProtectedEntry]:
        """``guard.list``: the registered values (all, or one ``scope``):
        ids, labels, categories, scopes, expiry; never the values."""
        return cast(List[ProtectedEntry], self.call("guard.list", clean_params(scope=scope)))

    def guard_policy_set(
        self,
        peer: str,
        allow: List[str],
        service: Optional[str] = None,
        action: Optional[str] = None,
    ) -> GuardPolicy:
        """``guard.policy.set``: the categories ``peer`` (peer ID, petname or
        ``*``) may receive, optionally per ``service``; ``action`` for the rest
        is ``block`` (default), ``redact`` or ``warn``."""
        return cast(
            GuardPolicy, self.call("guard.policy.set", clean_params(peer=peer, service=service, allow=allow, action=action))
        )

    def guard_policy_get(self, peer: Optional[str] = None) -> List[GuardPolicy]:
        """``guard.policy.get``: the outbound policies (all, or those of ``peer``)."""
        return cast(List[GuardPolicy], self.call("guard.policy.get", clean_params(peer=peer)))

    def guard_check(self, to: str, body: Body, service: Optional[str] = None) -> GuardCheck:
        """``guard.check``: the decision ``msg.send`` would take for ``body``
        (text, or a JSON value checked as its JSON text) sent to ``to``
        (nothing is sent): ``action``, the redacted ``body`` for ``redact``,
        and the ``findings``."""
        if isinstance(body, (bytes, bytearray)):
            raise TypeError("guard_check checks text or JSON values, not bytes")
        return cast(GuardCheck, self.call("guard.check", clean_params(to=to, service=service, body=body)))

    # ---------------------------------------------------------------- groups (MLS)

    def group_create(self, name: str) -> GroupCreated:
        """``group.create``: a new MLS group with this node as its only member
        and committer. Raises ``InvalidArgument``, ``TooManyGroups``."""
        return cast(GroupCreated, self.call("group.create", {"name": name}))

    def group_add(self, group_id: str, peer: str) -> GroupEpoch:
        """``group.add``: add ``peer`` (peer ID or petname; it must trust this
        node) to the group; returns the new epoch once the commit is applied.
        Raises ``UnknownGroup``, ``PeerUnreachable``, ``GroupRefused``,
        ``NotCommitter``."""
        return cast(GroupEpoch, self.call("group.add", {"groupId": group_id, "peer": peer}))

    def group_remove(self, group_id: str, peer: str) -> GroupEpoch:
        """``group.remove``: remove ``peer`` from the group; returns the new epoch."""
        return cast(GroupEpoch, self.call("group.remove", {"groupId": group_id, "peer": peer}))

    def group_send(self, group_id: str, body: Body) -> GroupSent:
        """``group.send``: send ``body`` to every member, end-to-end encrypted
        (it passes the leakage guard first: ``LeakBlocked`` refuses it);
        ``delivered``: members reached now, ``queued``: kept for offline ones."""
        params: Dict[str, Any] = {"groupId": group_id}
        params.update(body_params(body))
        return cast(GroupSent, self.call("group.send", params))

    def group_list(self) -> List[GroupSummary]:
        """``group.list``: the groups this node is a member of, with epoch,
        committer and members."""
        return cast(List[GroupSummary], self.call("group.list"))

    def group_leave(self, group_id: str) -> GroupLeft:
        """``group.leave``: leave the group (handing over the committer role if held)."""
        return cast(GroupLeft, self.call("group.leave", {"groupId": group_id}))

    def group_subscribe(self, group_id: Optional[str] = None) -> GroupSubscription:
        """``group.subscribe``: group messages (of ``group_id``, or of every
        group) then arrive on this connection as ``group.received``
        notifications until it closes. :meth:`on_group_message` and
        :meth:`group_messages` call it for you (once per connection, for every
        group); calling both it with a ``group_id`` and them delivers that
        group's messages twice."""
        return cast(GroupSubscription, self.call("group.subscribe", clean_params(groupId=group_id)))

    # ---------------------------------------------------------------- node lifecycle, metrics, posture

    def node_state(self) -> NodeReadiness:
        """``node.state``: readiness now (listening, bootstrap, DHT) and the
        node's ``pid``, without waiting. Raises ``Starting`` while it starts."""
        return cast(NodeReadiness, self.call("node.state"))

    def node_wait(self, timeout_ms: Optional[int] = None) -> NodeReadiness:
        """``node.wait``: return once the node is ready (listening and, with
        bootstrap peers, connected to one and in the DHT). Raises ``Timeout``
        after ``timeout_ms`` (node default 30 s, at most 600 s)."""
        timeout = None if timeout_ms is None else max(timeout_ms / 1000 + 30, self._default_timeout())
        return cast(NodeReadiness, self.call("node.wait", clean_params(timeoutMs=timeout_ms), timeout=timeout))

    def node_stop(self) -> NodeStopping:
        """``node.stop``: ask the node to stop cleanly; returns once it
        accepted (the connection then closes: see :meth:`wait_closed`)."""
        return cast(NodeStopping, self.call("node.stop"))

    def node_prometheus(self, format: str = "text") -> Prometheus:
        """``node.prometheus``: the node's Prometheus metrics, as its
        ``/metrics`` serves them (``format="text"``: ``text``; ``"json"``:
        ``metrics``). Raises ``MetricsDisabled`` without ``metrics.listen``."""
        return cast(Prometheus, self.call("node.prometheus", {"format": format}))

    def node_posture(self, wait_ms: Optional[int] = None) -> PostureCounts:
        """``node.posture``: the node's own posture review (``agentnet
        doctor``'s checks and baseline drift, cached for 5 minutes): finding
        counts by severity, ``drift``, ``baseline`` and ``checkedAt``.
        Waits up to ``wait_ms`` (node default 30 s) for a review in
        progress; ``{"checking": True}`` if it still runs."""
        timeout = None if wait_ms is None else max(wait_ms / 1000 + 30, self._default_timeout())
        return cast(PostureCounts, self.call("node.posture", clean_params(waitMs=wait_ms), timeout=timeout))

    # ---------------------------------------------------------------- helpers

    def _default_timeout(self) -> float:
        raise NotImplementedError
