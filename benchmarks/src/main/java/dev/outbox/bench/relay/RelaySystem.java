package dev.outbox.bench.relay;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.Relay;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/** The relay side of {@link DebeziumComparison}: {@code Outbox.append} and a relay with default settings. */
final class RelaySystem implements ComparedSystem {
    private final BenchContext ctx;
    private final HikariDataSource pool;
    private final Relay relay;

    RelaySystem(BenchContext ctx) {
        this.ctx = ctx;
        HikariConfig hc = ctx.poolConfig();
        hc.setMaximumPoolSize(ctx.options.workers() + 4);
        hc.setPoolName("relay-compared-pool");
        this.pool = new HikariDataSource(hc);
        this.relay = Relay.builder()
                .dataSource(pool)
                .producerProperties(ctx.producerProperties())
                .workerThreads(ctx.options.workers())
                .vacuumAfterRows(ctx.options.vacuumAfterRows())
                .meterRegistry(new SimpleMeterRegistry())
                .build();
        relay.start();
    }

    @Override
    public String name() {
        return "relay";
    }

    @Override
    public UUID appendOne(Connection c, String topic, String key, byte[] payload) throws SQLException {
        UUID id = ctx.outbox.append(
                c, OutboxMessage.of(topic, key, BenchContext.TYPE, BenchContext.CONTENT_TYPE, payload));
        c.commit();
        return id;
    }

    @Override
    public void appendMany(Connection c, String topic, int first, int count) throws SQLException {
        List<OutboxMessage> chunk = new ArrayList<>(count);
        for (int i = first; i < first + count; i++) {
            chunk.add(OutboxMessage.of(
                    topic, ctx.key(i), BenchContext.TYPE, BenchContext.CONTENT_TYPE, ctx.payload(i % 1000)));
        }
        ctx.outbox.appendAll(c, chunk);
        c.commit();
    }

    @Override
    public boolean drained() throws SQLException {
        return ctx.scalar("select count(*) from " + ctx.db.schema() + ".outbox_message") == 0;
    }

    @Override
    public void close() {
        relay.close();
        pool.close();
    }
}
