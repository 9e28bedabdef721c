package dev.outbox.consumer.internal;

import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * A task that runs its steps one at a time, in order, on a pool shared with other such tasks: the
 * per-partition serial execution of the consumer. Its states and their transitions:
 *
 * <pre>
 *   IDLE ──wake()──────────────────▶ QUEUED        (a run is submitted to the pool)
 *   QUEUED ──the run starts─────────▶ RUNNING      (one step in flight)
 *   RUNNING ──step: CONTINUE────────▶ QUEUED
 *   RUNNING ──step: DELAY d─────────▶ WAITING      (a run is scheduled in d)
 *   RUNNING ──step: IDLE────────────▶ IDLE, then wake() if work arrived meanwhile
 *   WAITING ──the delayed run starts▶ RUNNING
 *   any ──stop()────────────────────▶ STOPPED      (final; a run that starts later does nothing)
 * </pre>
 *
 * A pool that refuses a run (it shut down) leaves the task IDLE. The step runs under a lock, so
 * {@link #awaitStep} can wait for the step in flight after {@link #stop()}.
 */
final class SerialTask implements Runnable {

    enum State {
        IDLE,
        QUEUED,
        RUNNING,
        WAITING,
        STOPPED
    }

    /** What a step asks for next. */
    record Next(Duration delay, boolean more) {
        /** Nothing to do until woken. */
        static final Next IDLE = new Next(null, false);
        /** Another step at once. */
        static final Next CONTINUE = new Next(null, true);

        /** Another step after {@code delay}. */
        static Next after(Duration delay) {
            return new Next(delay, true);
        }
    }

    /** Where runs go: a pool, or a test's hand-driven queue. */
    interface Scheduler {
        /** @return false when the scheduler shut down */
        boolean execute(Runnable task);

        /** @return false when the scheduler shut down */
        boolean schedule(Runnable task, Duration delay);

        static Scheduler of(ScheduledExecutorService pool) {
            return new Scheduler() {
                @Override
                public boolean execute(Runnable task) {
                    try {
                        pool.execute(task);
                        return true;
                    } catch (RejectedExecutionException e) {
                        return false;
                    }
                }

                @Override
                public boolean schedule(Runnable task, Duration delay) {
                    try {
                        pool.schedule(task, delay.toNanos(), TimeUnit.NANOSECONDS);
                        return true;
                    } catch (RejectedExecutionException e) {
                        return false;
                    }
                }
            };
        }
    }

    private final AtomicReference<State> state = new AtomicReference<>(State.IDLE);
    private final ReentrantLock inFlight = new ReentrantLock();
    private final Scheduler scheduler;
    private final Supplier<Next> step;
    private final BooleanSupplier hasWork;

    /**
     * @param step one step; runs on the scheduler's threads, never two at once
     * @param hasWork whether there is work for a step, asked when a step returned {@link Next#IDLE}
     */
    SerialTask(Scheduler scheduler, Supplier<Next> step, BooleanSupplier hasWork) {
        this.scheduler = scheduler;
        this.step = step;
        this.hasWork = hasWork;
    }

    State state() {
        return state.get();
    }

    /** Makes sure a step runs soon: from IDLE it submits a run; otherwise one is queued, running or waiting. */
    void wake() {
        if (state.compareAndSet(State.IDLE, State.QUEUED) && !scheduler.execute(this)) {
            state.compareAndSet(State.QUEUED, State.IDLE);
        }
    }

    /** Stops for good; a step in flight finishes (see {@link #awaitStep}). */
    void stop() {
        state.set(State.STOPPED);
    }

    /**
     * Waits at most {@code timeoutNanos} for the step in flight, if any, to finish.
     *
     * @return false when it did not finish in time
     */
    boolean awaitStep(long timeoutNanos) {
        boolean idle = false;
        try {
            idle = inFlight.tryLock(Math.max(0, timeoutNanos), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (idle) {
            inFlight.unlock();
        }
        return idle;
    }

    @Override
    public void run() {
        Next next;
        inFlight.lock();
        try {
            // under the lock: after stop() and awaitStep(), no step starts
            if (!state.compareAndSet(State.QUEUED, State.RUNNING)
                    && !state.compareAndSet(State.WAITING, State.RUNNING)) {
                return;
            }
            next = step.get();
        } finally {
            inFlight.unlock();
        }
        if (!next.more()) {
            if (state.compareAndSet(State.RUNNING, State.IDLE) && hasWork.getAsBoolean()) {
                wake();
            }
        } else if (next.delay() == null) {
            if (state.compareAndSet(State.RUNNING, State.QUEUED) && !scheduler.execute(this)) {
                state.compareAndSet(State.QUEUED, State.IDLE);
            }
        } else if (state.compareAndSet(State.RUNNING, State.WAITING) && !scheduler.schedule(this, next.delay())) {
            state.compareAndSet(State.WAITING, State.IDLE);
        }
    }
}
