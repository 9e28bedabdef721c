package dev.outbox.relay.internal;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * When a shard's batch loop runs: the state machine behind {@link ShardWorker}. The loop runs as
 * short tasks on the relay's worker pool and never holds a thread while it waits for acks or sleeps;
 * at most one task of a shard is queued or running at a time.
 *
 * <p>States and transitions, all under this object's monitor:
 *
 * <pre>
 * NEW      --start-------------------------------------------&gt; RUNNING
 * RUNNING  --next(now, or a wake arrived during an idle wait)--&gt; RUNNING  (the next task is submitted)
 * RUNNING  --next(delay, wakeable)---------------------------&gt; IDLE     (waits for rows: a wake reads at once)
 * RUNNING  --next(delay, not wakeable)-----------------------&gt; WAITING  (backs off or waits for a renewal)
 * IDLE     --wake, or its timer------------------------------&gt; RUNNING
 * IDLE     --rows handed over with this idle wait's ticket----&gt; RUNNING  (the next round takes them)
 * WAITING  --its timer---------------------------------------&gt; RUNNING
 * RUNNING  --stop, or the lease found lost-------------------&gt; STOPPING (the batch in flight finishes first)
 * STOPPING --next--------------------------------------------&gt; STOPPED
 * NEW, IDLE, WAITING --stop----------------------------------&gt; STOPPED
 * any      --the worker pool refuses a task------------------&gt; STOPPED
 * </pre>
 *
 * {@link #stopped()} completes on entering STOPPED.
 *
 * <p>Every idle wait has its own ticket. Rows read for the shard by someone else (the probe) are
 * handed over only with the ticket of the idle wait they were read in: if the shard ran in between,
 * it may have published and deleted some of them, so they are dropped and the shard reads itself.
 *
 * <p>{@link #progressing} tells whether a task of the shard has been running on a thread for longer
 * than a bound: the relay's liveness, since a task stuck for good (a read on a connection without a
 * socket timeout) keeps a worker thread and stops the shard, while the lease rounds renew its lease.
 */
final class ShardLoop {
    /** Where the loop is; see the class comment for the transitions. */
    enum State {
        /** Created, not started: a wake does nothing. */
        NEW,
        /** A task of the shard is queued or running, or a batch is in flight. */
        RUNNING,
        /** Waiting for new rows: a wake, or the timer, starts the next read. */
        IDLE,
        /** Waiting after an error or for a lease renewal: only the timer starts the next round. */
        WAITING,
        /** Asked to stop while running: stops when the current task ends. */
        STOPPING,
        /** Stopped for good. */
        STOPPED
    }

    private final ScheduledExecutorService executor;
    private final Runnable step;
    /** When the task running now started ({@code nanoClock}). */
    private final RunningSince running = new RunningSince();

    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    // guarded by this
    private State state = State.NEW;
    // a wake arrived while running: the next idle wait is skipped
    private boolean wakePending;
    private ScheduledFuture<?> timer;
    // counts the idle waits: the ticket of the current one
    private long idleWaits;
    // rows handed over for the next round, read during the idle wait that ended with the hand-over
    private List<OutboxRow> handed;

    /**
     * @param executor the relay's worker pool
     * @param step one round of the loop; it ends with {@link #next} (or {@link #stopping()} then {@link #next})
     * @param nanoClock the clock of {@link #progressing}
     */
    ShardLoop(ScheduledExecutorService executor, Runnable step, LongSupplier nanoClock) {
        this.executor = executor;
        this.step = () -> {
            long mark = running.started(nanoClock.getAsLong());
            try {
                step.run();
            } finally {
                // the next task may have started already (the step submits it): only this task's mark is cleared
                running.ended(mark);
            }
        };
    }

    /**
     * @param now the time, on the loop's clock
     * @return false while a task of the shard has been running for longer than {@code bound}
     */
    boolean progressing(long now, long bound) {
        return running.within(now, bound);
    }

    void start() {
        synchronized (this) {
            state = State.RUNNING;
        }
        submit();
    }

    /** Reads now if the shard is idle-waiting; a shard backing off after an error is not woken. */
    void wake() {
        synchronized (this) {
            switch (state) {
                case RUNNING -> {
                    wakePending = true;
                    return;
                }
                case IDLE -> {
                    cancelTimer();
                    state = State.RUNNING;
                }
                default -> {
                    return;
                }
            }
        }
        submit();
    }

    /**
     * @return the ticket of the current idle wait, or -1 when the shard is not idle-waiting: rows read
     *     for the shard after this call may be handed over with it ({@link #wakeWith})
     */
    synchronized long idleTicket() {
        return state == State.IDLE ? idleWaits : -1;
    }

    /**
     * Hands over rows read for the shard and starts its next round with them, if the shard is still in
     * the idle wait of {@code ticket}; otherwise the rows are dropped.
     *
     * @return whether the rows were handed over
     */
    boolean wakeWith(long ticket, List<OutboxRow> rows) {
        synchronized (this) {
            if (state != State.IDLE || idleWaits != ticket) {
                return false;
            }
            cancelTimer();
            handed = rows;
            state = State.RUNNING;
        }
        submit();
        return true;
    }

    /** @return whether rows were handed over for this round */
    synchronized boolean hasHanded() {
        return handed != null;
    }

    /** @return the rows handed over for this round, or null; the next round has none */
    synchronized List<OutboxRow> takeHanded() {
        List<OutboxRow> rows = handed;
        handed = null;
        return rows;
    }

    /**
     * Stops after the batch in flight, if any, is finished.
     *
     * @return completes when the loop has stopped
     */
    CompletableFuture<Void> stop() {
        synchronized (this) {
            switch (state) {
                case RUNNING -> state = State.STOPPING;
                case NEW, IDLE, WAITING -> {
                    cancelTimer();
                    enterStopped();
                }
                default -> {
                    // already stopping or stopped
                }
            }
        }
        return stopped;
    }

    /** The running task found the shard lost: the loop stops when that task ends. */
    synchronized void stopping() {
        if (state == State.RUNNING) {
            state = State.STOPPING;
        }
    }

    /** The worker pool refused the task that would have ended a batch: the loop is over. */
    synchronized void abandon() {
        enterStopped();
    }

    synchronized boolean isStopping() {
        return state == State.STOPPING || state == State.STOPPED;
    }

    /** @return whether the shard waits for new rows and a {@link #wake()} would read now */
    synchronized boolean idleWaiting() {
        return state == State.IDLE;
    }

    synchronized State state() {
        return state;
    }

    CompletableFuture<Void> stopped() {
        return stopped;
    }

    /**
     * Ends the current task: runs the next one after {@code delayNanos}, or stops.
     *
     * @param wakeableWait whether a {@link #wake()} may cut the wait short (an idle wait, not a backoff)
     */
    void next(long delayNanos, boolean wakeableWait) {
        synchronized (this) {
            if (state == State.STOPPING || state == State.STOPPED) {
                enterStopped();
                return;
            }
            boolean now = delayNanos <= 0 || (wakeableWait && wakePending);
            wakePending = false;
            if (!now) {
                state = wakeableWait ? State.IDLE : State.WAITING;
                if (wakeableWait) {
                    idleWaits++;
                }
                try {
                    timer = executor.schedule(this::fire, delayNanos, TimeUnit.NANOSECONDS);
                } catch (RejectedExecutionException e) {
                    enterStopped();
                }
                return;
            }
            state = State.RUNNING;
        }
        submit();
    }

    private void fire() {
        synchronized (this) {
            timer = null;
            if (state != State.IDLE && state != State.WAITING) {
                return;
            }
            state = State.RUNNING;
        }
        step.run();
    }

    private void submit() {
        try {
            executor.execute(step);
        } catch (RejectedExecutionException e) {
            synchronized (this) {
                enterStopped();
            }
        }
    }

    private void cancelTimer() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    private void enterStopped() {
        state = State.STOPPED;
        handed = null;
        stopped.complete(null);
    }
}
