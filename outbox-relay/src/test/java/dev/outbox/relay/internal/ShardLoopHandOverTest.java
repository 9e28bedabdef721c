package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The decision behind the probe's reads (G1, G3): rows the probe read for an idle shard reach the
 * shard only if it has not run since the idle wait in which they were read. A shard that ran in
 * between may have published and deleted some of them; handing them over would send them again, out
 * of order with what it sent meanwhile.
 */
class ShardLoopHandOverTest {
    private static final long IDLE = Duration.ofSeconds(10).toNanos();

    private final FakeTime time = new FakeTime();
    private final ManualScheduler scheduler = new ManualScheduler(time);
    /** What each round of the loop was handed (null: nothing). */
    private final List<List<OutboxRow>> rounds = new ArrayList<>();

    private ShardLoop loop;

    private ShardLoop idleLoop() {
        loop = new ShardLoop(
                scheduler,
                () -> {
                    rounds.add(loop.takeHanded());
                    loop.next(IDLE, true);
                },
                time::nanoTime);
        loop.start();
        scheduler.runDue();
        assertThat(loop.idleWaiting()).isTrue();
        rounds.clear();
        return loop;
    }

    @Test
    void rowsReadInTheCurrentIdleWaitAreHandedToTheNextRound() {
        ShardLoop loop = idleLoop();
        long ticket = loop.idleTicket();
        List<OutboxRow> rows = List.of();

        assertThat(loop.wakeWith(ticket, rows)).isTrue();
        scheduler.runDue();

        assertThat(rounds).hasSize(1);
        assertThat(rounds.get(0)).isSameAs(rows);
        // taken once: the round after has nothing handed
        loop.wake();
        scheduler.runDue();
        assertThat(rounds).hasSize(2);
        assertThat(rounds.get(1)).isNull();
    }

    @Test
    void rowsReadBeforeTheShardRanAgainAreDropped() {
        ShardLoop loop = idleLoop();
        long ticket = loop.idleTicket();
        // the shard's own timer fires: it reads and publishes by itself, then waits again
        scheduler.advance(Duration.ofNanos(IDLE));
        assertThat(rounds).hasSize(1);
        assertThat(loop.idleWaiting()).isTrue();

        assertThat(loop.wakeWith(ticket, List.of())).isFalse();
        scheduler.runDue();

        assertThat(rounds).hasSize(1);
        assertThat(loop.idleTicket()).isNotEqualTo(ticket);
    }

    @Test
    void aShardThatIsNotIdleWaitingHasNoTicketAndTakesNoRows() {
        ShardLoop loop = idleLoop();
        long ticket = loop.idleTicket();
        loop.wake(); // running now (its task is queued)
        assertThat(loop.idleTicket()).isEqualTo(-1);

        assertThat(loop.wakeWith(ticket, List.of())).isFalse();
        scheduler.runDue();

        assertThat(rounds).containsExactly((List<OutboxRow>) null);
    }

    @Test
    void aStoppedShardTakesNoRows() {
        ShardLoop loop = idleLoop();
        long ticket = loop.idleTicket();
        loop.stop();

        assertThat(loop.wakeWith(ticket, List.of())).isFalse();
        assertThat(loop.takeHanded()).isNull();
    }
}
