"""The asyncio client against two real nodes A and C (connected, not yet
trusting each other). The tests run in name order and build on each other."""

import asyncio
import tempfile
import unittest
from typing import List

import agentnet
import agentnet.aio
from agentnet import AgentnetError, ConnectionClosedError, Message, NodeNotRunningError, ServiceError

from ._env import WAIT, home


class AsyncClientTest(unittest.IsolatedAsyncioTestCase):
    a: agentnet.aio.AsyncClient
    c: agentnet.aio.AsyncClient

    async def asyncSetUp(self) -> None:
        self.a = await agentnet.aio.connect(home("A"))
        self.c = await agentnet.aio.AsyncClient.connect(home("C"))
        self.peer_a = (await self.a.node_info())["peerId"]
        self.peer_c = (await self.c.node_info())["peerId"]

    async def asyncTearDown(self) -> None:
        await self.a.close()
        await self.c.close()

    async def assertCode(self, code: str, awaitable) -> AgentnetError:  # noqa: N802
        with self.assertRaises(AgentnetError) as ctx:
            await awaitable
        self.assertEqual(ctx.exception.code, code, str(ctx.exception))
        return ctx.exception

    async def test_00_node_not_running_is_a_clear_error(self) -> None:
        with tempfile.TemporaryDirectory() as empty:
            with self.assertRaises(NodeNotRunningError) as ctx:
                await agentnet.aio.connect(empty)
        self.assertIn("agentnet start --home", str(ctx.exception))

    async def test_01_trust_request_and_approve(self) -> None:
        await self.c.serve("calc", _calc)
        await self.assertCode("UntrustedPeer", self.a.send(self.peer_c, "calc", "hi"))
        requests = await self.c.trust_requests()
        result = await self.a.trust_request(self.peer_c, "asyncio agent on A")
        self.assertEqual(result["state"], "pending-outbound")
        request = await requests.get(WAIT)
        self.assertEqual((request["peerId"], request["reason"]), (self.peer_a, "asyncio agent on A"))
        requests.close()
        approved = await self.c.trust_approve(self.peer_a)
        self.assertEqual((approved["state"], approved["delivered"]), ("trusted", True))
        self.assertIn(
            {"peerId": self.peer_c, "state": "trusted"},
            [{"peerId": e["peerId"], "state": e["state"]} for e in await self.a.trust_list()],
        )

    async def test_02_requests_with_text_json_bytes_and_an_async_handler(self) -> None:
        await self.c.serve("calc", _calc)
        self.assertEqual(await self.a.request(self.peer_c, "calc", "hello"), "HELLO")
        reply = await self.a.send(self.peer_c, "calc", {"sum": [2, 3]})
        self.assertEqual((reply.body, reply.sender, reply.content_type), ({"sum": 5}, self.peer_c, "application/json"))
        self.assertEqual(await self.a.request(self.peer_c, "calc", b"\x00\x01\xff"), b"\xff\x01\x00")
        # many calls in flight on one connection, answered out of order
        answers = await asyncio.gather(*(self.a.request(self.peer_c, "calc", {"sum": [n], "sleep": (20 - n) / 200}) for n in range(20)))
        self.assertEqual(answers, [{"sum": n} for n in range(20)])

    async def test_03_errors_travel_with_their_codes(self) -> None:
        await self.c.serve("calc", _calc)
        err = await self.assertCode("Overloaded", self.a.send(self.peer_c, "calc", "overload"))
        self.assertEqual((err.message, err.rpc_code), ("try again later", -32000))
        err = await self.assertCode("ZeroDivisionError", self.a.request(self.peer_c, "calc", "crash"))
        await self.assertCode("NoSuchService", self.a.request(self.peer_c, "nothing-here", "x"))
        err = await self.assertCode("MethodNotFound", self.a.call("no.such.method"))
        self.assertEqual(err.rpc_code, -32601)
        await self.assertCode("InvalidParams", self.a.call("msg.send", {"to": self.peer_c}))
        await self.assertCode("ServiceTaken", self._register_twice())

    async def _register_twice(self) -> None:
        other = await agentnet.aio.connect(home("C"))
        try:
            await other.service_register("calc")
        finally:
            await other.close()

    async def test_04_one_way_messages_as_an_async_iterator(self) -> None:
        await self.c.service_register("log")
        inbox = self.c.messages("log")
        for n in range(3):
            self.assertTrue((await self.a.send_oneway(self.peer_c, "log", f"line {n}")).accepted)
        got: List[Message] = []
        async for message in inbox:
            got.append(message)
            if len(got) == 3:
                inbox.close()
        self.assertEqual(sorted(m.body for m in got), ["line 0", "line 1", "line 2"])
        self.assertTrue(all(m.kind == "oneway" and m.sender == self.peer_a for m in got))

    async def test_05_async_callbacks_and_notifications(self) -> None:
        await self.c.service_register("manual")
        seen: "asyncio.Queue[agentnet.Notification]" = asyncio.Queue()
        self.c.on(None, seen.put_nowait)

        async def on_message(message: Message) -> None:
            await asyncio.sleep(0.01)
            if message.body == "refuse":
                await self.c.reply_error(message.id, "Refused", "not today")
            else:
                await self.c.reply(message.id, [message.body, message.service])

        self.c.on_message(on_message, service="manual")
        self.assertEqual(await self.a.request(self.peer_c, "manual", "x"), ["x", "manual"])
        await self.assertCode("Refused", self.a.request(self.peer_c, "manual", "refuse"))
        note = await asyncio.wait_for(seen.get(), WAIT)
        self.assertEqual(note.method, "msg.received")

    async def test_05b_guard_block_and_group_round_trip(self) -> None:
        await self.a.guard_protect("the Lisbon offer is 7.9M", "offer", "legal/offer", scope="aio")
        check = await self.a.guard_check(self.peer_c, "note: the Lisbon offer is 7.9M")
        self.assertEqual((check["action"], [f["category"] for f in check["findings"]]), ("block", ["legal/offer"]))
        with self.assertRaises(agentnet.LeakBlockedError) as ctx:
            await self.a.send(self.peer_c, "calc", "note: the Lisbon offer is 7.9M")
        self.assertEqual((ctx.exception.code, ctx.exception.categories), ("LeakBlocked", ["legal/offer"]))
        self.assertGreaterEqual((await self.a.node_metrics())["guard"]["blockedByCategory"]["legal/offer"], 1)
        self.assertEqual(await self.a.guard_unprotect(scope="aio"), {"removed": 1})

        group_id = (await self.a.group_create("aio-room"))["groupId"]
        inbox_c = await self.c.group_messages(group_id)
        answers: "asyncio.Queue[agentnet.GroupMessage]" = asyncio.Queue()
        await self.a.on_group_message(answers.put_nowait, group_id)

        async def pong(message: agentnet.GroupMessage) -> None:
            if message.sender == self.peer_a:
                await self.c.group_send(message.group_id, {"pong": message.body})

        await self.c.on_group_message(pong, group_id)
        await self.a.group_add(group_id, self.peer_c)
        deadline = asyncio.get_running_loop().time() + WAIT
        while not any(g["groupId"] == group_id for g in await self.c.group_list()):
            self.assertLess(asyncio.get_running_loop().time(), deadline, "C joined the group")
            await asyncio.sleep(0.05)
        sent = await self.a.group_send(group_id, "hello group")
        self.assertEqual(sent["delivered"], 1)
        got = await inbox_c.get(WAIT)
        self.assertEqual((got.group_id, got.sender, got.body), (group_id, self.peer_a, "hello group"))
        answer = await asyncio.wait_for(answers.get(), WAIT)
        self.assertEqual((answer.sender, answer.body), (self.peer_c, {"pong": "hello group"}))
        inbox_c.close()
        members = [g["members"] for g in await self.a.group_list() if g["groupId"] == group_id]
        self.assertEqual([sorted(m) for m in members], [sorted([self.peer_a, self.peer_c])])
        self.assertGreater((await self.a.group_remove(group_id, self.peer_c))["epoch"], sent["epoch"])
        posture = await self.a.node_posture()
        self.assertFalse(posture["checking"])
        self.assertTrue((await self.a.node_wait(timeout_ms=5_000))["ready"])
        self.assertEqual((await self.a.node_state())["peerId"], self.peer_a)

    async def test_06_closing_ends_iterators_and_fails_calls(self) -> None:
        other = await agentnet.aio.connect(home("A"))
        notes = other.notifications()
        closed = asyncio.Event()
        other.on_close(closed.set)
        await other.close()
        await asyncio.wait_for(closed.wait(), WAIT)
        self.assertEqual([n async for n in notes], [])
        with self.assertRaises(ConnectionClosedError):
            await other.node_info()
        self.assertTrue(other.closed)


async def _calc(message: Message) -> agentnet.Body:
    body = message.body
    if isinstance(body, dict) and "sleep" in body:
        await asyncio.sleep(body["sleep"])
    if body == "overload":
        raise ServiceError("Overloaded", "try again later")
    if body == "crash":
        return 1 / 0
    if isinstance(body, str):
        return body.upper()
    if isinstance(body, bytes):
        return body[::-1]
    return {"sum": sum(body["sum"])}


if __name__ == "__main__":
    unittest.main()
