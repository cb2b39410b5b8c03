"""The blocking client against two real nodes A and B (connected, not yet
trusting each other). The tests run in name order and build on each other."""

import queue
import subprocess
import sys
import tempfile
import threading
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

    def test_10_planned_methods_go_through_call(self) -> None:
        # guard.* and group.* are thin wrappers of call(); until the node has
        # them it answers MethodNotFound, which arrives as such
        for fn in (self.a.guard_list, self.a.group_list):
            try:
                fn()
            except AgentnetError as err:
                self.assertEqual(err.code, "MethodNotFound")

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
        self.assertEqual(self.b.service_register("short-lived"), {"service": "short-lived"})
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


if __name__ == "__main__":
    unittest.main()
