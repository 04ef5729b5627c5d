"""Operations take turns to execute; a wait outside the process gives the turn away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from service.api.destination_answers import DestinationAnswers
from service.api.execution_gate import ExecutionGate, ExecutionTurns, outside_gate


class Probe:
    """Counts the resolvers executing at once, each held until ``go`` is set."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.changed = asyncio.Condition()
        self.go = asyncio.Event()

    async def _move(self, by: int) -> None:
        async with self.changed:
            self.now += by
            self.most = max(self.most, self.now)
            self.changed.notify_all()

    async def until(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.now == count)

    async def hold(self, *, outside: bool) -> int:
        await self._move(1)
        try:
            if outside:
                async with outside_gate():
                    await self.go.wait()
            else:
                await self.go.wait()
        finally:
            await self._move(-1)
        return 1


def _schema(gate: ExecutionGate, probe: Probe) -> strawberry.Schema:
    answers = DestinationAnswers(cache_seconds=0, budget=100)

    @strawberry.type
    class Query:
        @strawberry.field
        async def work(self) -> int:
            return await probe.hold(outside=False)

        @strawberry.field
        async def remote(self) -> int:
            return await probe.hold(outside=True)

        @strawberry.field
        async def shared(self) -> int:
            # Every operation asks for the same destination answer; one call is made.
            async def call() -> int:
                return await probe.hold(outside=True)

            return await answers.answer("lists", "someone", call)

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def ticks(self) -> AsyncGenerator[int, None]:
            yield 1
            await probe.go.wait()
            yield 2

    return strawberry.Schema(
        query=Query, subscription=Subscription, extensions=[lambda: ExecutionTurns(gate)]
    )


async def test_at_most_the_gates_size_execute_at_once_and_the_rest_wait_in_order() -> None:
    gate = ExecutionGate(size=2)
    probe = Probe()
    schema = _schema(gate, probe)
    operations = [asyncio.create_task(schema.execute("{ work }")) for _ in range(7)]
    await probe.until(2)
    probe.go.set()
    results = await asyncio.gather(*operations)
    assert [r.data for r in results] == [{"work": 1}] * 7
    assert probe.most == 2
    # Every turn came back: two more operations run at once again.
    probe.go.clear()
    again = [asyncio.create_task(schema.execute("{ work }")) for _ in range(2)]
    await probe.until(2)
    probe.go.set()
    await asyncio.gather(*again)


async def test_an_operation_waiting_outside_the_process_lets_the_others_execute() -> None:
    gate = ExecutionGate(size=1)
    probe = Probe()
    schema = _schema(gate, probe)
    remote = [asyncio.create_task(schema.execute("{ remote }")) for _ in range(3)]
    await probe.until(3)
    local = asyncio.create_task(schema.execute("{ work }"))
    await probe.until(4)
    probe.go.set()
    results = await asyncio.gather(*remote, local)
    assert [r.errors for r in results] == [None] * 4
    probe.go.clear()
    after = asyncio.create_task(schema.execute("{ work }"))
    await probe.until(1)
    probe.go.set()
    assert (await after).data == {"work": 1}


async def test_operations_waiting_for_a_shared_destination_answer_hold_no_turn() -> None:
    gate = ExecutionGate(size=1)
    probe = Probe()
    schema = _schema(gate, probe)
    waiting = [asyncio.create_task(schema.execute("{ shared }")) for _ in range(3)]
    await probe.until(1)  # the one call under way
    local = asyncio.create_task(schema.execute("{ work }"))
    await probe.until(2)  # the gate let it in while three operations wait on the answer
    probe.go.set()
    results = await asyncio.gather(*waiting, local)
    assert [r.data for r in results] == [{"shared": 1}] * 3 + [{"work": 1}]


async def test_a_cancelled_operation_gives_its_turn_back() -> None:
    gate = ExecutionGate(size=1)
    probe = Probe()
    schema = _schema(gate, probe)
    first = asyncio.create_task(schema.execute("{ remote }"))
    await probe.until(1)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    second = asyncio.create_task(schema.execute("{ work }"))
    await probe.until(1)
    probe.go.set()
    assert (await second).data == {"work": 1}


async def test_an_open_subscription_holds_no_turn() -> None:
    gate = ExecutionGate(size=1)
    probe = Probe()
    schema = _schema(gate, probe)
    stream = await schema.subscribe("subscription { ticks }")
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    first = await anext(stream)
    assert first.data == {"ticks": 1}
    query = asyncio.create_task(schema.execute("{ work }"))
    await probe.until(1)
    probe.go.set()
    assert (await query).data == {"work": 1}
    second = await anext(stream)
    assert second.data == {"ticks": 2}
    await stream.aclose()
