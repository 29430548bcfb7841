"""Pacing per mailbox provider: each provider's share of the connections starts low
(DIGEST_PROVIDER_START), doubles with each round it accepts until it first throttles, then
grows by one a round, and halves on each throttling reply; a provider that keeps throttling
waits for a later run while the others go on (TCP's slow start and congestion avoidance,
per destination as Postfix paces).

A send task keeps one Pacing across its batches. The thread that builds messages asks it for
the next delivery to send (`sequence`): deliveries are taken round-robin across providers, and
a provider at its limit of messages in flight (or its DIGEST_PROVIDER_RATES rate) is skipped
until one of its messages is settled, so one provider's throttling never holds up the
others. The pool reports each outcome (`settled`) and each throttling reply (`throttled`).
After DIGEST_PROVIDER_BACKOFF throttling replies in a send task, the provider's remaining
deliveries are deferred without counting an attempt (their wait grows with how long they have
waited, so a long throttle delays readers but never fails them) and the task sends no more to it. Postfix does the same per destination.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from digest.conf import digest_settings
from digest.models import Delivery, DeliveryStatus
from digest.providers import provider_of
from digest.sending.outcomes import Outcome

# Messages in flight a provider always may have: one connection's pipelined chain.
LEAST = 2
# How long the builder waits at most before looking again (a stop asked for, a rate slot due).
_LOOK_AGAIN = 0.05


@dataclass
class Provider:
    name: str
    limit: int
    in_flight: int = 0
    accepted: int = 0  # since the limit last grew
    throttles: int = 0
    slow_start: bool = True  # until its first throttling reply, the limit doubles instead of growing by one
    backed_off: str = ""  # why this send task sends it no more
    next_at: float = 0.0  # its rate: when the next message may start
    interval: float = 0.0


class Pacing:
    """Per-provider concurrency for one send task (see the module's docstring)."""

    def __init__(self, *, connections: int, clock: Callable[[], float] = time.monotonic):
        # A pipelined chain holds two messages per connection (one answered, the next written).
        self.most = 2 * connections
        self.start = max(LEAST, min(digest_settings.PROVIDER_START, self.most))
        self.backoff_after = digest_settings.PROVIDER_BACKOFF
        self.rates = digest_settings.provider_rates
        self.clock = clock
        self.providers: dict[str, Provider] = {}
        self._of: dict[int, str] = {}  # delivery id → provider, while in flight
        self._changed = threading.Condition()

    def sequence(
        self, deliveries: list[Delivery], *, halted: Callable[[], bool], sending: Callable[[], bool]
    ) -> Iterator[tuple[Delivery, Outcome | None]]:
        """Yield each delivery when its provider may take one more, with None; or with the
        deferral of a provider that backed off. Stops early when `halted()` (the rest unwritten);
        while nothing is `sending()` (every connection went away), it waits for no one."""
        waiting: dict[str, deque] = {}
        for delivery in deliveries:
            name = provider_of(delivery.subscription.subscriber.email)
            waiting.setdefault(name, deque()).append(delivery)
            self._provider(name)
        with self._changed:  # a new batch: the last one's messages are all settled
            self._of = {}
            for provider in self.providers.values():
                provider.in_flight = 0
        turn = deque(waiting)
        while turn:
            if halted():
                return
            chosen = self._next(turn, waiting, room=not sending())
            if chosen is None:
                with self._changed:
                    self._changed.wait(_LOOK_AGAIN)
                continue
            name, delivery = chosen
            provider = self.providers[name]
            if provider.backed_off:
                yield delivery, Outcome(delivery, DeliveryStatus.DEFERRED, provider.backed_off, unwritten=True)
                continue
            yield delivery, None

    def _next(self, turn: deque, waiting: dict[str, deque], *, room: bool) -> tuple[str, Delivery] | None:
        """The next provider in turn with room (or backed off, or all of them with `room`), and its next delivery."""
        now = self.clock()
        with self._changed:
            for _ in range(len(turn)):
                name = turn[0]
                turn.rotate(-1)
                provider = self.providers[name]
                full = provider.in_flight >= provider.limit or provider.next_at > now
                if not provider.backed_off and full and not room:
                    continue
                delivery = waiting[name].popleft()
                if not waiting[name]:
                    turn.remove(name)
                if not provider.backed_off:
                    provider.in_flight += 1
                    provider.next_at = max(provider.next_at, now) + provider.interval
                    self._of[delivery.id] = name
                return name, delivery
        return None

    def settled(self, outcome: Outcome) -> None:
        """A delivery's outcome is known: its provider has room again; an acceptance may grow its limit."""
        with self._changed:
            name = self._of.pop(outcome.delivery.id, None)
            if name is None:
                return
            provider = self.providers[name]
            provider.in_flight = max(0, provider.in_flight - 1)
            if outcome.status == DeliveryStatus.SENT:
                provider.accepted += 1
                if provider.accepted >= provider.limit and provider.limit < self.most:
                    grown = provider.limit * 2 if provider.slow_start else provider.limit + 1
                    provider.limit, provider.accepted = min(self.most, grown), 0
            self._changed.notify_all()

    def throttled(self, delivery: Delivery, reply: str) -> None:
        """The provider of this delivery answered "slow down": half as many in flight; past the
        limit of throttles, no more to it in this send task."""
        with self._changed:
            name = self._of.get(delivery.id) or provider_of(delivery.subscription.subscriber.email)
            provider = self._provider(name)
            provider.limit, provider.accepted = max(LEAST, provider.limit // 2), 0
            provider.slow_start = False
            provider.throttles += 1
            if provider.throttles >= self.backoff_after and not provider.backed_off:
                provider.backed_off = f"{name} is throttling us ({reply}): deferred to a later run"
            self._changed.notify_all()

    def _provider(self, name: str) -> Provider:
        if name not in self.providers:
            rate = self.rates.get(name, 0)
            self.providers[name] = Provider(name, self.start, interval=1.0 / rate if rate else 0.0)
        return self.providers[name]
