"""The blocking client against two real nodes A and B (connected, not yet
trusting each other). The tests run in name order and build on each other."""

import queue
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, List
import unittest
from pathlib import Path

import agentnet
from agentnet import AgentnetError, ConnectionClosedError, Message, NodeNotRunningError, ServiceError

from ._env import WAIT, home


class BlockingClientTest(unittest.TestCase):
    a: agentnet.Client
    b: agentnet.Client
    peer_a: str
    peer_b: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.a = agentnet.connect(home("A"))
        cls.b = agentnet.Client(home("B"))
        cls.peer_a = cls.a.node_info()["peerId"]
        cls.peer_b = cls.b.node_info()["peerId"]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.a.close()
        cls.b.close()

    def assertCode(self, code: str, fn, *args, **kwargs) -> AgentnetError:  # noqa: N802
        with self.assertRaises(AgentnetError) as ctx:
            fn(*args, **kwargs)
        self.assertEqual(ctx.exception.code, code, str(ctx.exception))
        return ctx.exception

    def test_00_node_not_running_is_a_clear_error(self) -> None:
        with tempfile.TemporaryDirectory() as empty:
            with self.assertRaises(NodeNotRunningError) as ctx:
                agentnet.connect(empty)
        self.assertEqual(ctx.exception.code, "NodeNotRunning")
        self.assertIn("agentnet start --home", str(ctx.exception))
        self.assertIn(empty, str(ctx.exception))

    def test_01_node_info_status_peers_ping(self) -> None:
        info = self.a.node_info()
        self.assertTrue(info["peerId"].startswith("12D3KooW"))
        self.assertTrue(any(p.startswith("/agentnet/msg/") for p in info["protocols"]))
        status = self.a.node_status()
        self.assertIn(self.peer_b, [c["peerId"] for c in status["connections"]])
        self.assertIn(self.peer_b, [p["peerId"] for p in self.a.peers_list()])
        ping = self.a.peer_ping(self.peer_b)
        self.assertEqual(ping["peerId"], self.peer_b)
        self.assertGreaterEqual(ping["rttMs"], 0)
        connected = self.a.peer_connect(self.peer_b)
        self.assertEqual(connected["peerId"], self.peer_b)
        self.assertIn("messaging", self.a.node_metrics())

    def test_02_untrusted_peer_is_refused_with_its_code(self) -> None:
        self.b.serve("calc", _calc)
        err = self.assertCode("UntrustedPeer", self.a.send, self.peer_b, "calc", "hi")
        self.assertEqual(err.rpc_code, -32000)

    def test_03_trust_request_and_approve(self) -> None:
        seen: "queue.Queue[agentnet.PendingRequest]" = queue.Queue()
        already = self.b.on_trust_pending(seen.put)
        self.assertEqual(already, [])
        result = self.a.trust_request(self.peer_b, "the Python agent on A would like to use calc")
        self.assertEqual(result, {"peerId": self.peer_b, "state": "pending-outbound"})
        request = seen.get(timeout=WAIT)
        self.assertEqual(request["peerId"], self.peer_a)
        self.assertEqual(request["reason"], "the Python agent on A would like to use calc")
        self.assertEqual([p["peerId"] for p in self.b.trust_pending()], [self.peer_a])
        approved = self.b.trust_approve(self.peer_a)
        self.assertEqual(approved["state"], "trusted")
        self.assertTrue(approved["delivered"])
        states = {e["peerId"]: e["state"] for e in self.a.trust_list()}
        self.assertEqual(states[self.peer_b], "trusted")
        self.assertCode("NotPending", self.b.trust_approve, self.peer_a)

    def test_04_requests_with_text_json_and_bytes(self) -> None:
        self.assertEqual(self.a.request(self.peer_b, "calc", "hello"), "HELLO")
        reply = self.a.send(self.peer_b, "calc", {"sum": [1, 2, 3.5]})
        self.assertEqual(reply.body, {"sum": 6.5})
        self.assertEqual(reply.sender, self.peer_b)
        self.assertEqual(reply.content_type, "application/json")
        data = bytes(range(256))
        answer = self.a.request(self.peer_b, "calc", data)
        self.assertIsInstance(answer, bytes)
        self.assertEqual(answer, data[::-1])
        # the agentnet:// form names the service
        self.assertEqual(self.a.request(f"agentnet://{self.peer_b}/calc", body="url"), "URL")

    def test_04b_binary_bodies_negotiated_and_plain_json_beside_them(self) -> None:
        # both clients agreed binary bodies with their nodes: bytes above crossed four IPC hops raw
        self.assertTrue(self.a._binary and self.b._binary)
        data = bytes(range(256)) * 1000  # newlines and NULs: never scanned as lines
        self.assertEqual(self.a.request(self.peer_b, "calc", data), data[::-1])
        # a client that opts out speaks JSON lines with bodyBase64, to the same binary agent
        with agentnet.connect(home("A"), binary=False) as plain:
            self.assertFalse(plain._binary)
            self.assertEqual(plain.request(self.peer_b, "calc", data), data[::-1])
            self.assertEqual(plain.request(self.peer_b, "calc", "text"), "TEXT")

    def test_05_errors_travel_with_their_codes(self) -> None:
        err = self.assertCode("Overloaded", self.a.send, self.peer_b, "calc", "overload")
        self.assertEqual(err.message, "try again later")
        self.assertEqual(err.rpc_code, -32000)
        err = self.assertCode("ValueError", self.a.request, self.peer_b, "calc", "crash")
        self.assertIn("cannot compute", err.message)
        self.assertCode("NoSuchService", self.a.request, self.peer_b, "nothing-here", "x")
        err = self.assertCode("MethodNotFound", self.a.call, "no.such.method")
        self.assertEqual(err.rpc_code, -32601)
        err = self.assertCode("InvalidParams", self.a.call, "peer.ping", {})
        self.assertEqual(err.rpc_code, -32602)
        self.assertCode("UnknownDelivery", self.b.reply, "no-such-delivery", "x")
        self.assertCode("InvalidTarget", self.a.peer_ping, "not a peer")

    def test_06_one_way_messages_arrive_as_an_iterator(self) -> None:
        self.b.service_register("log")
        with self.b.messages("log") as inbox:
            for n in range(3):
                reply = self.a.send_oneway(self.peer_b, "log", {"n": n})
                self.assertTrue(reply.accepted)
                self.assertIsNone(reply.body)
            got = [inbox.get(timeout=WAIT) for _ in range(3)]
        self.assertEqual(sorted(m.body["n"] for m in got), [0, 1, 2])
        self.assertTrue(all(m.kind == "oneway" and m.sender == self.peer_a and not m.is_request for m in got))
        self.b.service_unregister("log")

    def test_07_on_message_callback_answers_by_hand(self) -> None:
        self.b.service_register("manual")

        def on_message(message: Message) -> None:
            if message.body == "refuse":
                self.b.reply_error(message.id, "Refused", "not today")
            else:
                self.b.reply(message.id, {"echo": message.body, "from": message.sender})

        remove = self.b.on_message(on_message, service="manual")
        try:
            self.assertEqual(self.a.request(self.peer_b, "manual", "x"), {"echo": "x", "from": self.peer_a})
            self.assertCode("Refused", self.a.request, self.peer_b, "manual", "refuse")
        finally:
            remove()
            self.b.service_unregister("manual")

    def test_08_concurrent_calls_share_one_connection(self) -> None:
        results: "queue.Queue[object]" = queue.Queue()

        def worker(n: int) -> None:
            try:
                results.put(self.a.request(self.peer_b, "calc", {"sum": [n, n]}) == {"sum": 2 * n})
            except Exception as exc:  # reported below
                results.put(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        self.assertEqual([results.get_nowait() for _ in threads], [True] * len(threads))

    def test_09_petnames_invites_tokens_metrics(self) -> None:
        self.assertEqual(self.a.alias_add("bee", self.peer_b), {"name": "bee", "peerId": self.peer_b})
        self.assertIn({"name": "bee", "peerId": self.peer_b}, self.a.alias_list())
        self.assertEqual(self.a.request("bee", "calc", "by name"), "BY NAME")
        self.assertEqual(self.a.alias_remove("bee"), {"removed": True})
        invite = self.b.invite_create(ttl_ms=60_000, uses=1)
        self.assertIsInstance(invite["code"], str)
        self.assertEqual(invite["uses"], 1)
        self.assertCode("InviteInvalid", self.a.invite_accept, invite["code"][:-4] + "AAAA")
        self.assertEqual(self.a.token_revoke(self.peer_b)["peerId"], self.peer_b)
        metrics = self.a.node_metrics()
        self.assertGreater(metrics["messaging"]["sent"], 0)
        self.assertGreater(self.b.node_metrics()["messaging"]["rejected"].get("UntrustedPeer", 0), 0)

    def test_10_guard_blocks_a_registered_value_with_leak_blocked(self) -> None:
        secret = "Project Nightingale closes at 4.2M"
        protected = self.a.guard_protect(secret, "deal terms", "legal/deal", scope="py-task")
        self.assertIsInstance(protected["id"], str)
        entries = self.a.guard_list(scope="py-task")
        self.assertEqual([(e["id"], e["label"], e["category"]) for e in entries], [(protected["id"], "deal terms", "legal/deal")])
        self.assertNotIn(secret, repr(entries))
        check = self.a.guard_check(self.peer_b, "FYI: " + secret, service="calc")
        self.assertEqual(check["action"], "block")
        self.assertEqual([f["category"] for f in check["findings"]], ["legal/deal"])
        before = self.a.node_metrics()["guard"]["actions"]["block"]
        # the send is refused before anything leaves: LeakBlockedError, an AgentnetError with that code
        with self.assertRaises(agentnet.LeakBlockedError) as ctx:
            self.a.send(self.peer_b, "calc", "FYI: " + secret)
        self.assertIsInstance(ctx.exception, AgentnetError)
        self.assertEqual(ctx.exception.code, "LeakBlocked")
        self.assertEqual(ctx.exception.categories, ["legal/deal"])
        self.assertNotIn(secret, str(ctx.exception))
        guard = self.a.node_metrics()["guard"]
        self.assertEqual(guard["actions"]["block"], before + 1)
        self.assertGreaterEqual(guard["blockedByCategory"]["legal/deal"], 1)
        # a policy for B that allows the category lets it out; redaction for another service
        policy = self.a.guard_policy_set(self.peer_b, ["legal/*"], service="calc")
        self.assertEqual((policy["peer"], policy.get("service"), policy["allow"]), (self.peer_b, "calc", ["legal/*"]))
        self.assertIn(("calc", ["legal/*"]), [(p.get("service"), p["allow"]) for p in self.a.guard_policy_get(self.peer_b)])
        self.assertTrue(self.a.send_oneway(self.peer_b, "calc", secret).accepted)
        self.a.guard_policy_set(self.peer_b, [], service="redacted", action="redact")
        self.assertEqual(self.a.guard_check(self.peer_b, "FYI: " + secret, service="redacted")["body"], "FYI: [REDACTED:deal terms]")
        self.assertEqual(self.a.guard_unprotect(scope="py-task"), {"removed": 1})
        self.assertEqual(self.a.guard_check(self.peer_b, "FYI: " + secret, service="x")["action"], "pass")
        with self.assertRaises(TypeError):
            self.a.guard_check(self.peer_b, b"bytes")

    def test_10b_group_round_trip_with_iterator_and_callback(self) -> None:
        created = self.a.group_create("py-room")
        group_id = created["groupId"]
        inbox_b = self.b.group_messages(group_id)
        inbox_a = self.a.group_messages()
        # B answers every group message from A in the group (a callback)
        self.b.on_group_message(
            lambda m: self.b.group_send(m.group_id, {"pong": m.body}) if m.sender == self.peer_a else None, group_id
        )
        epoch = self.a.group_add(group_id, self.peer_b)["epoch"]
        self.assertGreaterEqual(epoch, 1)
        mine = [g for g in self.a.group_list() if g["groupId"] == group_id]
        self.assertEqual([(g["name"], g["committer"], sorted(g["members"])) for g in mine], [("py-room", self.peer_a, sorted([self.peer_a, self.peer_b]))])
        _poll(lambda: any(g["groupId"] == group_id for g in self.b.group_list()))
        sent = self.a.group_send(group_id, {"hello": "group"})
        self.assertEqual((sent["delivered"], sent["queued"]), (1, 0))
        got = inbox_b.get(timeout=WAIT)
        self.assertIsInstance(got, agentnet.GroupMessage)
        self.assertEqual((got.group_id, got.sender, got.body), (group_id, self.peer_a, {"hello": "group"}))
        answer = inbox_a.get(timeout=WAIT)
        self.assertEqual((answer.group_id, answer.sender, answer.body), (group_id, self.peer_b, {"pong": {"hello": "group"}}))
        self.b.group_send(group_id, b"\x00\x01")
        self.assertEqual(inbox_a.get(timeout=WAIT).body, b"\x00\x01")
        # the guard screens group messages too
        self.a.guard_protect("Nightingale-7 access code 93517", "door code", "secret/door", scope="py-group")
        with self.assertRaises(agentnet.LeakBlockedError):
            self.a.group_send(group_id, "the code: Nightingale-7 access code 93517")
        self.a.guard_unprotect(scope="py-group")
        inbox_a.close()
        inbox_b.close()
        self.assertEqual(self.b.group_leave(group_id), {"groupId": group_id, "left": True})
        self.assertCode("UnknownGroup", self.b.group_send, group_id, "gone")

    def test_10c_node_state_wait_posture_prometheus(self) -> None:
        state = self.a.node_state()
        self.assertEqual(state["peerId"], self.peer_a)
        self.assertIsInstance(state["pid"], int)
        self.assertTrue(self.a.node_wait(timeout_ms=5_000)["ready"])
        posture = self.a.node_posture()
        self.assertFalse(posture["checking"])
        self.assertEqual(sorted(posture["findings"]), ["high", "info", "low", "medium"])
        self.assertEqual(posture["baseline"], "none")
        self.assertGreater(posture["checkedAt"], 0)
        self.assertEqual(self.a.node_metrics()["posture"]["findings"], posture["findings"])
        self.assertCode("MetricsDisabled", self.a.node_prometheus)

    def test_10d_node_stop(self) -> None:
        node = agentnet.connect(home("D"))
        pid = node.node_state()["pid"]
        self.assertEqual(node.node_stop(), {"pid": pid, "stopping": True})
        self.assertTrue(node.wait_closed(WAIT))
        with self.assertRaises(NodeNotRunningError):
            _poll_raises(lambda: agentnet.connect(home("D")).close())

    def test_11_closing_fails_pending_calls_and_frees_services(self) -> None:
        other = agentnet.connect(home("B"))
        other.service_register("short-lived")
        self.assertCode("ServiceTaken", self.b.service_register, "short-lived")
        closed = threading.Event()
        other.on_close(closed.set)
        other.close()
        self.assertTrue(closed.wait(WAIT))
        self.assertTrue(other.closed)
        with self.assertRaises(ConnectionClosedError):
            other.node_info()
        # the node frees the service once it has seen the socket close (asynchronously): poll
        registered: List[Any] = []

        def register() -> bool:
            try:
                registered.append(self.b.service_register("short-lived"))
                return True
            except AgentnetError as err:
                if err.code != "ServiceTaken":
                    raise
                return False

        _poll(register)
        self.assertEqual(registered, [{"service": "short-lived"}])
        self.b.service_unregister("short-lived")

    def test_12_the_example_echo_agent(self) -> None:
        example = Path(__file__).resolve().parent.parent / "examples" / "echo_agent.py"
        for flavour in ([], ["--asyncio"]):
            agent = subprocess.Popen(
                [sys.executable, str(example), "--home", home("B"), "--service", "echo-example", *flavour],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                self.assertIn("serving agentnet://", agent.stdout.readline())
                self.assertEqual(self.a.request(self.peer_b, "echo-example", {"x": 1}), {"x": 1})
                self.assertCode("EchoRefused", self.a.request, self.peer_b, "echo-example", "fail")
            finally:
                agent.terminate()
                agent.wait(WAIT)
                agent.stdout.close()


def _calc(message: Message) -> agentnet.Body:
    body = message.body
    if body == "overload":
        raise ServiceError("Overloaded", "try again later")
    if body == "crash":
        raise ValueError("cannot compute this")
    if isinstance(body, str):
        return body.upper()
    if isinstance(body, bytes):
        return body[::-1]
    if isinstance(body, dict) and "sum" in body:
        return {"sum": sum(body["sum"])}
    raise ServiceError("BadRequest", f"cannot handle {body!r}")


def _poll(condition, timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds, checking every 50 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _poll_raises(fn, timeout: float = WAIT) -> None:
    """Call ``fn()`` every 50 ms until it raises (the exception propagates)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fn()
        time.sleep(0.05)
    raise AssertionError("it never raised")


if __name__ == "__main__":
    unittest.main()
