package dev.outbox.spring.internal;

import dev.outbox.relay.Relay;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/** UP when the embedded relay is live and ready (PostgreSQL and Kafka answered lately). */
public final class RelayHealthIndicator extends AbstractHealthIndicator {
    private final Relay relay;

    public RelayHealthIndicator(Relay relay) {
        super("outbox relay health check failed");
        this.relay = relay;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        boolean live = relay.isLive();
        boolean ready = relay.isReady();
        (live && ready ? builder.up() : builder.down())
                .withDetail("instanceId", relay.instanceId())
                .withDetail("live", live)
                .withDetail("ready", ready)
                .withDetail("ownedShards", relay.ownedShards().size());
    }
}
