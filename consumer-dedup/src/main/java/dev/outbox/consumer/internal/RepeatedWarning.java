package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import java.time.Duration;

/**
 * A warning about a condition that can last and would otherwise be logged on every poll (every
 * 100 ms): its first occurrence at WARN, then at most one line per interval saying how often it
 * failed and for how long so far and how many lines were left out, and one INFO line when it
 * {@link #cleared clears}. For the poll thread only; not thread-safe. The arguments must not end with
 * a {@link Throwable} (the counts are added after them).
 */
final class RepeatedWarning {
    private final PrefixedLog log;
    private final TimeSource time;
    private final long intervalNanos;
    private final String what;

    private long occurrences;
    private long notLogged;
    private long firstNanos;
    private long loggedNanos;

    /**
     * @param what what each occurrence is, plural, for the counts (e.g. {@code failed commit(s)})
     */
    RepeatedWarning(PrefixedLog log, TimeSource time, Duration interval, String what) {
        this.log = log;
        this.time = time;
        this.intervalNanos = interval.toNanos();
        this.what = what;
    }

    /** Logs one occurrence at WARN, unless one was logged less than the interval ago. */
    void occurred(String format, Object... args) {
        long now = time.nanoTime();
        if (occurrences++ == 0) {
            firstNanos = now;
            loggedNanos = now;
            log.warn(format, args);
            return;
        }
        if (now - loggedNanos < intervalNanos) {
            notLogged++;
            return;
        }
        log.warn(
                format + " ({} " + what + " in {}, {} of them not logged)",
                append(args, occurrences, since(now), notLogged));
        loggedNanos = now;
        notLogged = 0;
    }

    /** Logs at INFO that the condition is over, when it occurred since the last call; then starts afresh. */
    void cleared(String format, Object... args) {
        if (occurrences == 0) {
            return;
        }
        log.info(format + " after {} " + what + " in {}", append(args, occurrences, since(time.nanoTime())));
        occurrences = 0;
        notLogged = 0;
    }

    private String since(long now) {
        return Durations.format(Durations.roughly(Duration.ofNanos(now - firstNanos)));
    }

    private static Object[] append(Object[] args, Object... more) {
        Object[] all = new Object[args.length + more.length];
        System.arraycopy(args, 0, all, 0, args.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }
}
