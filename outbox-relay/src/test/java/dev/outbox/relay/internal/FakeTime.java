package dev.outbox.relay.internal;

import dev.outbox.core.internal.TimeSource;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/** Time that moves only when a test moves it (or a {@link ManualScheduler} runs a delayed task). */
final class FakeTime implements TimeSource {
    private final AtomicLong nanos = new AtomicLong(1_000_000_000L);

    @Override
    public long nanoTime() {
        return nanos.get();
    }

    @Override
    public long currentTimeMillis() {
        return 1_700_000_000_000L + nanos.get() / 1_000_000;
    }

    void advance(Duration d) {
        nanos.addAndGet(d.toNanos());
    }

    /** Moves the time to {@code at}, unless it is already later. */
    void moveTo(long at) {
        nanos.accumulateAndGet(at, Math::max);
    }
}
