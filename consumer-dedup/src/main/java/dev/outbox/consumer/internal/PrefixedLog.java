package dev.outbox.consumer.internal;

import org.slf4j.Logger;

/**
 * A logger that puts one component's prefix ({@code [consumer-dedup <name>#<n>]}) before every
 * line, so that call sites pass only what they log. The prefix is a log argument, never part of
 * the format, so a consumer name holding {@code {}} cannot shift the arguments.
 */
final class PrefixedLog {
    private final Logger log;
    private final String prefix;

    PrefixedLog(Logger log, String prefix) {
        this.log = log;
        this.prefix = prefix;
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

    private Object[] withPrefix(Object[] args) {
        Object[] all = new Object[args.length + 1];
        all[0] = prefix;
        System.arraycopy(args, 0, all, 1, args.length);
        return all;
    }
}
