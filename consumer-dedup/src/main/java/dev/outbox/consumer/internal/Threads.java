package dev.outbox.consumer.internal;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/** The consumer's threads, all named {@code outbox-consumer-<instance>-<role>}. */
final class Threads {
    private Threads() {}

    /**
     * @param instance the consumer instance
     * @param role what the threads do; numbered {@code <role>-1}, {@code <role>-2}... when {@code
     *     numbered}
     * @return a factory of daemon threads
     */
    static ThreadFactory daemons(String instance, String role, boolean numbered) {
        AtomicInteger ids = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, name(instance, numbered ? role + "-" + ids.incrementAndGet() : role));
            t.setDaemon(true);
            return t;
        };
    }

    /** Starts a thread of its own; a daemon unless it must keep the JVM alive. */
    static Thread start(String instance, String role, boolean daemon, Runnable task) {
        Thread t = new Thread(task, name(instance, role));
        t.setDaemon(daemon);
        t.start();
        return t;
    }

    private static String name(String instance, String role) {
        return "outbox-consumer-" + instance + "-" + role;
    }
}
