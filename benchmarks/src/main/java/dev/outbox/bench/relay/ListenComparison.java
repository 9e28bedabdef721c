package dev.outbox.bench.relay;

import dev.outbox.core.Outbox;
import dev.outbox.relay.Relay;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The LISTEN comparison ({@code --compare-listen}): the idle latency with the opt-in LISTEN wake-up
 * (the producer notifies in its transaction, the relay LISTENs on a connection of its own), then with
 * the probe again, so that a drift of the machine's load shows.
 */
final class ListenComparison implements IdleLatency.WakeUp {
    private final IdleLatency latency;

    ListenComparison(IdleLatency latency) {
        this.latency = latency;
    }

    /** Runs the latency scenario with LISTEN, then with the probe. */
    void run() throws Exception {
        latency.measure(this);
        latency.measure(IdleLatency.WakeUp.PROBE);
    }

    @Override
    public Outbox configure(Relay.Builder builder, BenchContext ctx) {
        PGSimpleDataSource session = new PGSimpleDataSource();
        session.setUrl(ctx.db.jdbcUrl());
        session.setUser(ctx.db.user());
        if (!ctx.db.password().isEmpty()) {
            session.setPassword(ctx.db.password());
        }
        builder.listenDataSource(session);
        return Outbox.builder().notifyInTransaction(true).build();
    }

    @Override
    public String description() {
        return "LISTEN (producer notifies in its transaction)";
    }
}
