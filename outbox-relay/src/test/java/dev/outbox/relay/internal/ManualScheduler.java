package dev.outbox.relay.internal;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Delayed;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A scheduler that runs nothing by itself: the test runs what is due, on its own thread, and moves
 * the {@link FakeTime} to each delayed task's due time. Only {@code execute} and {@code
 * schedule(Runnable, ...)} are supported: what the shard loops and the topic lookups use.
 */
final class ManualScheduler extends AbstractExecutorService implements ScheduledExecutorService {
    /** More tasks than this in one run is a loop that never waits: the test fails instead of hanging. */
    private static final int MAX_TASKS = 100_000;

    private final FakeTime time;
    private final PriorityQueue<Task> queue = new PriorityQueue<>();
    private long seq;
    private volatile boolean shutdown;
    /** The delay of every task scheduled for later (a delay above zero), in nanoseconds, in order. */
    final List<Long> delays = new CopyOnWriteArrayList<>();

    ManualScheduler(FakeTime time) {
        this.time = time;
    }

    /** Runs the tasks due now, and those they submit for now (a task may move the time itself). */
    void runDue() {
        runUntil(time.nanoTime());
    }

    /** Moves the time forward by {@code d}, running each task when its due time comes. */
    void advance(Duration d) {
        long until = time.nanoTime() + d.toNanos();
        runUntil(until);
        time.moveTo(until);
    }

    /** @return the last delay a task was scheduled with */
    Duration lastDelay() {
        return Duration.ofNanos(delays.get(delays.size() - 1));
    }

    private void runUntil(long until) {
        for (int ran = 0; ; ran++) {
            Task next;
            synchronized (this) {
                next = queue.peek();
                // a task that moved the time itself makes what is due by then due as well
                if (next == null || next.at - Math.max(until, time.nanoTime()) > 0) {
                    return;
                }
                queue.poll();
            }
            if (ran == MAX_TASKS) {
                throw new AssertionError("more than " + MAX_TASKS + " tasks in one run: a loop that never waits");
            }
            time.moveTo(next.at);
            if (!next.cancelled) {
                next.done = true;
                next.task.run();
            }
        }
    }

    private synchronized Task add(Runnable task, long delayNanos) {
        if (shutdown) {
            throw new RejectedExecutionException("shut down");
        }
        Task t = new Task(task, time.nanoTime() + Math.max(0, delayNanos), seq++);
        queue.add(t);
        return t;
    }

    @Override
    public void execute(Runnable command) {
        add(command, 0);
    }

    @Override
    public ScheduledFuture<?> schedule(Runnable command, long delay, TimeUnit unit) {
        if (delay > 0) {
            delays.add(unit.toNanos(delay));
        }
        return add(command, unit.toNanos(delay));
    }

    @Override
    public <V> ScheduledFuture<V> schedule(Callable<V> callable, long delay, TimeUnit unit) {
        throw new UnsupportedOperationException();
    }

    @Override
    public ScheduledFuture<?> scheduleAtFixedRate(Runnable command, long initialDelay, long period, TimeUnit unit) {
        throw new UnsupportedOperationException();
    }

    @Override
    public ScheduledFuture<?> scheduleWithFixedDelay(Runnable command, long initialDelay, long delay, TimeUnit unit) {
        throw new UnsupportedOperationException();
    }

    @Override
    public void shutdown() {
        shutdown = true;
    }

    @Override
    public synchronized List<Runnable> shutdownNow() {
        shutdown = true;
        List<Runnable> left = new ArrayList<>();
        queue.forEach(t -> left.add(t.task));
        queue.clear();
        return left;
    }

    @Override
    public boolean isShutdown() {
        return shutdown;
    }

    @Override
    public boolean isTerminated() {
        return shutdown;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
        return true;
    }

    private final class Task implements ScheduledFuture<Object> {
        final Runnable task;
        final long at;
        final long order;
        volatile boolean cancelled;
        volatile boolean done;

        Task(Runnable task, long at, long order) {
            this.task = task;
            this.at = at;
            this.order = order;
        }

        @Override
        public long getDelay(TimeUnit unit) {
            return unit.convert(at - time.nanoTime(), TimeUnit.NANOSECONDS);
        }

        @Override
        public int compareTo(Delayed o) {
            Task t = (Task) o;
            return at != t.at ? Long.compare(at - t.at, 0) : Long.compare(order, t.order);
        }

        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            boolean was = !done && !cancelled;
            cancelled = true;
            return was;
        }

        @Override
        public boolean isCancelled() {
            return cancelled;
        }

        @Override
        public boolean isDone() {
            return done || cancelled;
        }

        @Override
        public Object get() {
            throw new UnsupportedOperationException();
        }

        @Override
        public Object get(long timeout, TimeUnit unit) {
            throw new UnsupportedOperationException();
        }
    }
}
