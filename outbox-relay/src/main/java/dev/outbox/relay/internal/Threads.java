package dev.outbox.relay.internal;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/** The relay's thread names, {@code relay-<instance id>-<role>-<n>}, all daemon threads. */
final class Threads {
    private Threads() {}

    /** @return a factory of daemon threads named {@code relay-<instanceId>-<role>-<n>} */
    static ThreadFactory named(String instanceId, String role) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, "relay-" + instanceId + "-" + role + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** @return a factory of daemon threads all named {@code relay-<instanceId>-<role>}, for a single-thread component */
    static ThreadFactory single(String instanceId, String role) {
        return r -> {
            Thread t = new Thread(r, "relay-" + instanceId + "-" + role);
            t.setDaemon(true);
            return t;
        };
    }
}
