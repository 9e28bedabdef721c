package dev.outbox.spring.internal;

import dev.outbox.relay.Relay;
import java.util.Objects;
import org.springframework.context.SmartLifecycle;

/**
 * Starts the embedded relay with the application context and closes it (finishing the batch in
 * flight and handing its leases back) when the context stops.
 */
public final class EmbeddedRelay implements SmartLifecycle {
    private final Relay relay;
    private volatile boolean running;

    public EmbeddedRelay(Relay relay) {
        this.relay = Objects.requireNonNull(relay, "relay may not be null");
    }

    @Override
    public synchronized void start() {
        if (!running) {
            relay.start();
            running = true;
        }
    }

    @Override
    public synchronized void stop() {
        if (running) {
            relay.close();
            running = false;
        }
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    /**
     * The phase of the embedded relay and the purges: below the web server's start and stop ({@code
     * Integer.MAX_VALUE - 2048} in Spring Boot) and the listener containers' ({@code Integer.MAX_VALUE -
     * 100}), so that they start before both and stop after both: a request the web server still
     * finishes during a graceful shutdown appends messages this relay publishes before it closes.
     */
    public static final int PHASE = Integer.MAX_VALUE - 4096;

    /**
     * Starts before the web server and the listener containers (their phases are higher) and stops after
     * them, before the pool closes ({@link #PHASE}). A context stopped and started again (not closed)
     * starts the starter's relay again, a new one built from the same settings ({@link RestartableRelay});
     * an application's own relay bean starts once, and starting it again fails with the relay's message.
     */
    @Override
    public int getPhase() {
        return PHASE;
    }
}
