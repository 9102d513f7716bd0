"""The listener hub: fans events out to listeners, each awaited in order.

Every listener has its own queue and worker task, so a slow listener does
not stall the other listeners, each listener sees events in arrival order,
and a listener may await any session method. ``emit`` never blocks, never
awaits and never drops an event: the reader calls it inline.

Memory stays bounded by backpressure rather than by dropping: when one
listener's queue, or one ``errors()`` iterator's, holds ``max_queue`` events,
the hub calls ``on_pressure(True)`` (the session then stops reading from its
socket); once every such queue is back to ``max_queue // 4`` or less, it
calls ``on_pressure(False)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, Generic, TypeVar

__all__ = ["ErrorStream", "Inbox", "ListenerHub"]

logger = logging.getLogger("roomsignal.client")

T = TypeVar("T")
Listener = Callable[[Any], Any]
ListenerErrorHook = Callable[[BaseException, str, Any, Listener], Any]

_STOP: Any = object()


class Inbox(Generic[T]):
    """An unbounded FIFO, cheaper than ``asyncio.Queue``; readers share one wake-up."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> int:
        """Append an item and wake the reader; never blocks. Returns the new length."""
        items = self._items
        items.append(item)
        waiter = self._waiter
        if waiter is not None:  # woken once: the reader makes a new one when it waits again
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return len(items)

    async def get(self) -> T:
        """The next item, waiting for one if needed (several readers may wait)."""
        while not self._items:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: one reader being cancelled must not cancel the others' wake-up.
            await asyncio.shield(waiter)
        return self._items.popleft()

    async def get_alone(self) -> T:
        """``get`` for an inbox with a single reader: woken one loop iteration sooner.

        Without ``shield``'s outer future, the reader runs in the loop iteration
        right after ``put``, that is before the connection's next batch of
        frames (see ``_connection``).
        """
        while not self._items:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        return self._items.popleft()

    def clear(self) -> None:
        """Drop every pending item."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _Worker:
    """One listener's queue and the task that awaits it, in order."""

    __slots__ = ("event", "fn", "full", "hub", "inbox", "items", "max_queue", "task")

    def __init__(self, hub: ListenerHub, event: str, fn: Listener) -> None:
        self.hub = hub
        self.event = event
        self.fn = fn
        self.inbox: Inbox[Any] = Inbox()
        self.items = self.inbox._items
        self.max_queue = hub.max_queue
        self.task: asyncio.Task[None] | None = None
        self.full = False  # holding the hub's pressure

    def deliver(self, payload: Any) -> None:
        inbox = self.inbox  # Inbox.put(), inlined: once per event and listener
        items = self.items
        items.append(payload)
        waiter = inbox._waiter
        if waiter is not None:
            inbox._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if len(items) >= self.max_queue and not self.full:
            self.full = True
            self.hub._press(id(self))
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name=f"roomsignal-listener-{self.event}"
            )
            self.hub._track(self.task)

    async def _run(self) -> None:
        inbox = self.inbox
        items = inbox._items  # taken directly while there are some: no coroutine per event
        popleft = items.popleft
        fn = self.fn
        is_async = inspect.iscoroutinefunction(fn)
        stop = _STOP
        while True:
            payload = popleft() if items else await inbox.get_alone()
            if self.full and len(inbox) <= self.hub.low_water:
                self.full = False
                self.hub._release(id(self))
            if payload is stop:  # remove() empties the inbox before it puts a stop
                return
            try:
                if is_async:
                    await fn(payload)
                    continue
                result = fn(payload)
                if result is not None and (
                    type(result) is CoroutineType or inspect.isawaitable(result)
                ):
                    await result
            except Exception as exc:
                self.hub._failed(exc, self.event, payload, fn)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are being cancelled (close() ran out of time)
                self.hub._failed(exc, self.event, payload, fn)  # the listener's own


class ErrorStream(Generic[T]):
    """An async iterator over the events of one kind from the moment it was made.

    Ends (``StopAsyncIteration``) when the session closes, after the events
    already queued; ``aclose()`` or ``async with`` ends it early.
    """

    def __init__(self, hub: ListenerHub, event: str) -> None:
        self._hub = hub
        self._event = event
        self._inbox: Inbox[Any] = Inbox()
        self._done = False
        self._full = False  # holding the hub's pressure
        hub._streams.setdefault(event, weakref.WeakSet()).add(self)

    def _put(self, payload: Any) -> None:
        if self._inbox.put(payload) >= self._hub.max_queue and not self._full:
            self._full = True
            self._hub._press(id(self))

    def _unpress(self) -> None:
        if self._full:
            self._full = False
            self._hub._release(id(self))

    def __del__(self) -> None:
        # Dropped unread without aclose(): nobody will read it, so it holds nothing back.
        if self._full:
            self._unpress()

    def __aiter__(self) -> ErrorStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._done and not self._inbox:
            raise StopAsyncIteration
        item = await self._inbox.get()
        if self._full and len(self._inbox) <= self._hub.low_water:
            self._unpress()
        if item is _STOP:
            self._done = True
            raise StopAsyncIteration
        result: T = item
        return result

    async def aclose(self) -> None:
        """Stop receiving; pending items are dropped."""
        self._done = True
        self._inbox.clear()
        self._unpress()
        self._inbox.put(_STOP)
        streams = self._hub._streams.get(self._event)
        if streams is not None:
            streams.discard(self)

    async def __aenter__(self) -> ErrorStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ListenerHub:
    """Listeners, iterators and one-shot waiters for every event kind.

    ``max_queue`` bounds each listener's and each iterator's queue by
    backpressure (see the module docstring); ``on_pressure`` is called with
    True when the first queue reaches it and with False when the last one has
    drained to ``low_water``.
    """

    def __init__(self, max_queue: int = 4096) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self.low_water = max_queue // 4
        self.on_pressure: Callable[[bool], None] | None = None
        # Ids of the queues at their bound, and the tasks the hub owns: dicts used as
        # sets (an empty dict is 64 bytes, an empty set 216; there is a hub per session).
        self._pressed: dict[int, None] = {}
        self._workers: dict[str, dict[Listener, _Worker]] = {}
        # What ``emit`` calls for each event, rebuilt whenever registrations change (the
        # session's frame loop reads it too, to save a call per event; never write it).
        self.sinks: dict[str, tuple[Callable[[Any], None], ...]] = {}
        self._streams: dict[str, weakref.WeakSet[ErrorStream[Any]]] = {}
        self._waiters: dict[str, list[tuple[Callable[[Any], bool], asyncio.Future[Any]]]] = {}
        self._tasks: dict[asyncio.Task[None], None] = {}
        self.error_hook: ListenerErrorHook | None = None
        self.strict = False
        self.failures = 0
        self.first_failure: BaseException | None = None
        self.closed = False
        self.ended = False

    # -- registration ---------------------------------------------------------

    def add(self, event: str, fn: Listener) -> None:
        """Register ``fn`` for ``event``; registering it twice is a no-op."""
        if not callable(fn):
            raise TypeError(f"listener must be callable, not {type(fn).__name__}")
        workers = self._workers.setdefault(event, {})
        if fn not in workers:
            workers[fn] = _Worker(self, event, fn)
            self._rebuild(event)

    def remove(self, event: str, fn: Listener) -> None:
        """Unregister ``fn``; events queued for it and not yet delivered are dropped."""
        worker = self._workers.get(event, {}).pop(fn, None)
        if worker is not None:
            worker.inbox.clear()  # dropped, as documented: nothing holds the reader back
            if worker.full:
                worker.full = False
                self._release(id(worker))
            worker.inbox.put(_STOP)
            self._rebuild(event)

    def stream(self, event: str) -> ErrorStream[Any]:
        """A new iterator over ``event`` payloads."""
        stream: ErrorStream[Any] = ErrorStream(self, event)
        if self.closed or self.ended:
            stream._put(_STOP)
        self._rebuild(event)
        return stream

    def waiter(self, event: str, predicate: Callable[[Any], bool]) -> asyncio.Future[Any]:
        """A future resolved with the next ``event`` payload that matches."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event, []).append((predicate, future))
        self._rebuild(event)
        return future

    def drop_waiter(self, event: str, future: asyncio.Future[Any]) -> None:
        """Forget a waiter (after it resolved, timed out or was cancelled)."""
        waiters = self._waiters.get(event)
        if waiters:
            self._waiters[event] = [w for w in waiters if w[1] is not future]
            self._rebuild(event)

    # -- backpressure -------------------------------------------------------------

    @property
    def pressed(self) -> bool:
        """Whether some listener's or iterator's queue is at its bound."""
        return bool(self._pressed)

    def _press(self, key: int) -> None:
        first = not self._pressed
        self._pressed[key] = None
        if first:
            logger.debug("a listener queue reached %d events: pausing reads", self.max_queue)
            self._signal(True)

    def _release(self, key: int) -> None:
        if key in self._pressed:
            del self._pressed[key]
            if not self._pressed:
                logger.debug("listener queues drained: resuming reads")
                self._signal(False)

    def _signal(self, pressed: bool) -> None:
        hook = self.on_pressure
        if hook is not None:
            try:
                hook(pressed)
            except Exception:
                logger.exception("on_pressure hook raised")

    # -- delivery ---------------------------------------------------------------

    def emit(self, event: str, payload: Any) -> None:
        """Hand ``payload`` to every listener, iterator and matching waiter; never blocks."""
        for sink in self.sinks.get(event, ()):
            sink(payload)

    def _rebuild(self, event: str) -> None:
        sinks: list[Callable[[Any], None]] = [
            worker.deliver for worker in self._workers.get(event, {}).values()
        ]
        streams = self._streams.get(event)
        if streams:
            # Through the weak set, so that an iterator dropped without aclose() is freed.
            def to_streams(payload: Any) -> None:
                for stream in streams:
                    stream._put(payload)

            sinks.append(to_streams)
        if self._waiters.get(event):
            sinks.append(lambda payload: self._resolve_waiters(event, payload))
        self.sinks[event] = tuple(sinks)

    def _resolve_waiters(self, event: str, payload: Any) -> None:
        remaining = []
        for predicate, future in self._waiters.get(event, ()):
            if future.done():
                continue
            if predicate(payload):
                future.set_result(payload)
            else:
                remaining.append((predicate, future))
        self._waiters[event] = remaining

    def _failed(self, exc: BaseException, event: str, payload: Any, fn: Listener) -> None:
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = exc
        logger.error("listener %r for %s raised on %r", fn, event, payload, exc_info=exc)
        hook = self.error_hook
        if hook is None:
            return
        try:
            result = hook(exc, event, payload, fn)
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception:
            logger.exception("on_listener_error hook raised")

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await awaitable
            except Exception:
                logger.exception("on_listener_error hook raised")

        task = asyncio.get_running_loop().create_task(run())
        self._track(task)

    def _track(self, task: asyncio.Task[None]) -> None:
        """Own ``task`` until it is done (``aclose`` awaits what is left)."""
        tasks = self._tasks
        tasks[task] = None
        task.add_done_callback(lambda done: tasks.pop(done, None))

    # -- shutdown ---------------------------------------------------------------

    def is_listener_task(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether ``task`` is one of the listener workers."""
        return task is not None and task in self._tasks

    def end_streams(self) -> None:
        """End every iterator after what it has queued (the session is over)."""
        self.ended = True
        for streams in self._streams.values():
            for stream in streams:
                stream._put(_STOP)

    def fail_waiters(self, make_exc: Callable[[], BaseException]) -> None:
        """Fail every pending waiter (the session closed)."""
        for waiters in self._waiters.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(make_exc())
        self._waiters.clear()

    async def aclose(self, timeout: float) -> None:
        """Let listeners finish what is queued (up to ``timeout`` s), then cancel them.

        Iterators end after their queued items. A listener that is running the
        call that closes the session is not awaited (it would wait on itself).
        """
        self.closed = True
        self.end_streams()
        for workers in self._workers.values():
            for worker in workers.values():
                worker.inbox.put(_STOP)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
