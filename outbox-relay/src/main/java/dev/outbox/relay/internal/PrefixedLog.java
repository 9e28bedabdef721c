package dev.outbox.relay.internal;

import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * A logger that puts one relay's prefix ({@code relay[<instance id>]}) before every line, so that
 * call sites pass only what they log; {@link #retry} warnings are rate-limited (at most one per 5 s,
 * with the count of those left out). The prefix is a log argument, never part of the format, so an
 * instance id holding {@code {}} cannot shift the arguments.
 */
final class PrefixedLog {
    private final Logger log;
    private final String prefix;
    private final RateLimitedLog retries;

    PrefixedLog(Logger log, String prefix) {
        this.log = log;
        this.prefix = prefix;
        this.retries = new RateLimitedLog(log, TimeUnit.SECONDS.toNanos(5));
    }

    String prefix() {
        return prefix;
    }

    void debug(String format, Object... args) {
        if (log.isDebugEnabled()) {
            log.debug("{} " + format, withPrefix(args));
        }
    }

    void info(String format, Object... args) {
        log.info("{} " + format, withPrefix(args));
    }

    void warn(String format, Object... args) {
        log.warn("{} " + format, withPrefix(args));
    }

    void error(String format, Object... args) {
        log.error("{} " + format, withPrefix(args));
    }

    /** A warning about something retried: at most one per 5 s. */
    void retry(String format, Object... args) {
        retries.warn("{} " + format, withPrefix(args));
    }

    private Object[] withPrefix(Object[] args) {
        Object[] all = new Object[args.length + 1];
        all[0] = prefix;
        System.arraycopy(args, 0, all, 1, args.length);
        return all;
    }
}
