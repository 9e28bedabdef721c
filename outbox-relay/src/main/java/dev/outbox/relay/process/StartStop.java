package dev.outbox.relay.process;

import java.util.concurrent.TimeUnit;

/**
 * Where the relay process's start is, for a SIGTERM that arrives during it. Until the start runs the
 * migrations or starts the relay, it holds nothing another process or the database would miss (no
 * lease, no membership, no transaction): the process may stop at once, however long its checks would
 * still wait for PostgreSQL or Kafka. The migrations and the relay's own start are waited for; a stop
 * asked for during the migrations ends the start once they are done.
 */
final class StartStop {
    /** What the start is doing. */
    enum Phase {
        /** Checking, building: nothing to hand back or finish, the process may exit at any moment. */
        HOLDING_NOTHING,
        /** Applying the migrations. */
        MIGRATING,
        /** Starting the relay, which claims leases. */
        STARTING_RELAY,
        /** The start has ended, started or failed. */
        ENDED
    }

    private Phase phase = Phase.HOLDING_NOTHING;
    private boolean requested;

    /**
     * Asks the start to stop.
     *
     * @return what the start was doing: {@link Phase#HOLDING_NOTHING} means the process may exit at once
     *     (the start throws {@link Stopped} at its next step), {@link Phase#ENDED} that the start had
     *     ended before (started, or failed and reported its exit code)
     */
    synchronized Phase request() {
        requested = true;
        return phase;
    }

    /** @return what the start is doing */
    synchronized Phase phase() {
        return phase;
    }

    /**
     * Enters {@code next}; called by the start's thread before each step that holds something.
     *
     * @throws Stopped when a stop was asked for: the start ends here, before {@code next}
     */
    synchronized void enter(Phase next) {
        if (requested && next != Phase.ENDED) {
            throw new Stopped();
        }
        phase = next;
        notifyAll();
    }

    /**
     * Waits up to {@code millis} for the start to end.
     *
     * @return whether it has ended ({@link Phase#ENDED})
     */
    synchronized boolean awaitEnded(long millis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (phase != Phase.ENDED) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }

    /** The start ended because a stop was asked for. */
    static final class Stopped extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Stopped() {
            super("stopped during the start (SIGTERM)", null, false, false);
        }
    }
}
