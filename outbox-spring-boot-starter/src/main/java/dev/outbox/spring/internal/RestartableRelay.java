package dev.outbox.spring.internal;

import dev.outbox.relay.Relay;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The starter's embedded relay: a {@link Relay} that starts again after {@link #close()}, as a Spring
 * context stopped and started again does (Spring Cloud's pause and resume endpoints, a CRaC checkpoint
 * and restore). A relay itself starts once; each start after a close builds a new one from the same
 * settings, which takes its shards again as any relay joining does. An application's own {@link Relay}
 * bean is not wrapped: stopped and started again, it fails with the relay's message.
 */
public final class RestartableRelay implements Relay {
    private final Supplier<Relay> factory;
    private final Object lifecycle = new Object();
    private volatile Relay current;
    // guarded by lifecycle: the current relay was closed, the next start builds a new one
    private boolean closed;

    /**
     * @param factory builds a relay with the instance id it is given, or with one of its own for null;
     *     called now with null (a bad setting fails the bean), and at each start after a close with the
     *     first relay's id, so that the relays one after the other are one instance to the lease table,
     *     the meters and the health details
     */
    public RestartableRelay(Function<String, Relay> factory) {
        Objects.requireNonNull(factory, "factory may not be null");
        Relay first = Objects.requireNonNull(factory.apply(null), "the relay factory returned null");
        String id = first.instanceId();
        this.factory = () -> factory.apply(id);
        this.current = first;
    }

    @Override
    public void start() {
        synchronized (lifecycle) {
            if (closed) {
                current = Objects.requireNonNull(factory.get(), "the relay factory returned null");
                closed = false;
            }
            current.start();
        }
    }

    @Override
    public void close() {
        synchronized (lifecycle) {
            current.close();
            closed = true;
        }
    }

    /** @return the relay built last: running, or closed until the next start builds another */
    public Relay current() {
        return current;
    }

    @Override
    public String instanceId() {
        return current.instanceId();
    }

    @Override
    public Set<Integer> ownedShards() {
        return current.ownedShards();
    }

    @Override
    public boolean isLive() {
        return current.isLive();
    }

    @Override
    public boolean isReady() {
        return current.isReady();
    }
}
