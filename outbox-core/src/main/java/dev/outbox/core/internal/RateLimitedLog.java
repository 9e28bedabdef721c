package dev.outbox.core.internal;

import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;

/** Logs a warning at most once per interval and says how many were suppressed in between. */
final class RateLimitedLog {
    private final Logger log;
    private final long intervalNanos;
    private final AtomicLong next = new AtomicLong(Long.MIN_VALUE);
    private final AtomicLong suppressed = new AtomicLong();

    RateLimitedLog(Logger log, long intervalNanos) {
        this.log = log;
        this.intervalNanos = intervalNanos;
    }

    void warn(String format, Object... args) {
        long now = System.nanoTime();
        long due = next.get();
        if ((due == Long.MIN_VALUE || now - due >= 0) && next.compareAndSet(due, now + intervalNanos)) {
            long n = suppressed.getAndSet(0);
            if (n > 0) {
                log.warn(format + " ({} similar warnings suppressed)", append(args, n));
            } else {
                log.warn(format, args);
            }
        } else {
            suppressed.incrementAndGet();
        }
    }

    private static Object[] append(Object[] args, long n) {
        // keep a trailing Throwable last so that SLF4J still prints its stack trace
        Object[] out = new Object[args.length + 1];
        if (args.length > 0 && args[args.length - 1] instanceof Throwable t) {
            System.arraycopy(args, 0, out, 0, args.length - 1);
            out[args.length - 1] = n;
            out[args.length] = t;
        } else {
            System.arraycopy(args, 0, out, 0, args.length);
            out[args.length] = n;
        }
        return out;
    }
}
