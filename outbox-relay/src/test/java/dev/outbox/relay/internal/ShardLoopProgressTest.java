package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The decision behind the relay's liveness for a shard's own work: a task of the shard running on a
 * worker thread for longer than the bound (a read stuck on a connection without a socket timeout) is
 * no progress; a shard waiting between tasks, however long, is.
 */
class ShardLoopProgressTest {
    private static final long BOUND = Duration.ofSeconds(11).toNanos();

    private final FakeTime time = new FakeTime();
    private final ManualScheduler scheduler = new ManualScheduler(time);

    @Test
    void aTaskRunningLongerThanTheBoundIsNoProgressAndOneThatEndedIs() {
        List<Boolean> seenInside = new ArrayList<>();
        ShardLoop[] loop = new ShardLoop[1];
        loop[0] = new ShardLoop(
                scheduler,
                () -> {
                    seenInside.add(loop[0].progressing(time.nanoTime(), BOUND));
                    time.advance(Duration.ofNanos(BOUND + 1));
                    // still inside the task: a read that took longer than the bound
                    seenInside.add(loop[0].progressing(time.nanoTime(), BOUND));
                    loop[0].next(Duration.ofHours(1).toNanos(), true);
                },
                time::nanoTime);
        loop[0].start();
        scheduler.runDue();

        assertThat(seenInside).containsExactly(true, false);
        time.advance(Duration.ofMinutes(30));
        assertThat(loop[0].progressing(time.nanoTime(), BOUND))
                .as("idle between tasks for longer than the bound: no task runs")
                .isTrue();
    }
}
