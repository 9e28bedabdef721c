package dev.outbox.core.internal;

import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * A logger that puts one component's prefix (the relay's {@code relay[<instance id>]}, the
 * consumer's {@code [consumer-dedup <name>#<n>]}) before every line, bound once when the component
 * is built, so that call sites pass only what they log; {@link #retry} warnings are rate-limited (at
 * most one per 5 s, with the count of those left out). The prefix is a log argument, never part of
 * the format, so a name holding {@code {}} cannot shift the arguments. Not part of the public API.
 */
public final class PrefixedLog {
    private final Logger log;
    private final String prefix;
    private final RateLimitedLog retries;

    /**
     * @param log where the lines go
     * @param prefix written before every line
     */
    public PrefixedLog(Logger log, String prefix) {
        this.log = log;
        this.prefix = prefix;
        this.retries = new RateLimitedLog(log, TimeUnit.SECONDS.toNanos(5));
    }

    /** @return the prefix written before every line */
    public String prefix() {
        return prefix;
    }

    public void debug(String format, Object... args) {
        if (log.isDebugEnabled()) {
            log.debug("{} " + format, withPrefix(args));
        }
    }

    public void info(String format, Object... args) {
        log.info("{} " + format, withPrefix(args));
    }

    public void warn(String format, Object... args) {
        log.warn("{} " + format, withPrefix(args));
    }

    public void error(String format, Object... args) {
        log.error("{} " + format, withPrefix(args));
    }

    /** A warning about something retried: at most one per 5 s. */
    public void retry(String format, Object... args) {
        retries.warn("{} " + format, withPrefix(args));
    }

    private Object[] withPrefix(Object[] args) {
        Object[] all = new Object[args.length + 1];
        all[0] = prefix;
        System.arraycopy(args, 0, all, 1, args.length);
        return all;
    }
}
