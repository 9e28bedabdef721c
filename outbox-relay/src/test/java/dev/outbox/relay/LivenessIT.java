package dev.outbox.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.Outbox;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TcpProxy;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.net.URI;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What {@link Relay#isLive()} means when PostgreSQL goes away: the relay's threads make progress (its
 * lease rounds keep ending, failed or not), not that the database answers. A restart does not bring a
 * database back, so a relay cut from PostgreSQL stays live and is only not ready; a lease round or a
 * delete stuck for good (a connection without any timeout, a lock never released) is not progress.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class LivenessIT {
    private static final Duration LEASE = Duration.ofSeconds(3);

    /**
     * PostgreSQL refuses and resets every connection (the proxy in front of it is closed) for four lease
     * durations, longer than liveness would allow a stuck round: the relay stays live and is not ready.
     */
    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aRelayThatLostPostgresStaysLiveButIsNotReady(TestDatabase db, TestKafka kafka) throws Exception {
        TcpProxy proxy = proxyTo(db);
        // waits bounded by the lease, as the process's pool has them
        try (HikariDataSource pool = pool(db, proxy, Duration.ofSeconds(2), "socketTimeout", "3");
                Relay relay = Fixtures.relay(db, kafka, "liveness-gone")
                        .dataSource(pool)
                        .leaseDuration(LEASE)
                        .build()) {
            relay.start();
            await("ready").atMost(Duration.ofSeconds(30)).until(relay::isReady);

            proxy.close();
            await("not ready once PostgreSQL stopped answering for a lease")
                    .atMost(LEASE.plusSeconds(3))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> !relay.isReady());
            long until = System.nanoTime() + LEASE.multipliedBy(4).toNanos();
            while (System.nanoTime() < until) {
                assertThat(relay.isLive())
                        .as("live while PostgreSQL is unreachable: its lease rounds fail and are retried")
                        .isTrue();
                assertThat(relay.isReady()).isFalse();
                Thread.sleep(100);
            }
        } finally {
            proxy.close();
        }
    }

    /**
     * PostgreSQL stops answering (the proxy stops forwarding) under a pool without socket timeout and
     * with a connection wait of 10 minutes: the lease round stays stuck, and the relay is not live
     * within two lease durations and 5 s; once PostgreSQL answers again, it is live again.
     */
    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aLeaseRoundStuckForGoodIsNotLive(TestDatabase db, TestKafka kafka) throws Exception {
        try (TcpProxy proxy = proxyTo(db);
                HikariDataSource pool = pool(db, proxy, Duration.ofMinutes(10));
                Relay relay = Fixtures.relay(db, kafka, "liveness-stuck")
                        .dataSource(pool)
                        .leaseDuration(LEASE)
                        .build()) {
            relay.start();
            await("ready").atMost(Duration.ofSeconds(30)).until(relay::isReady);

            proxy.pause();
            await("not live once a lease round is stuck for two lease durations and 5 s")
                    .atMost(LEASE.multipliedBy(2).plusSeconds(5 + 4))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> !relay.isLive());

            proxy.resume();
            await("live again once the round ends")
                    .atMost(Duration.ofSeconds(30))
                    .until(relay::isLive);
        }
    }

    /**
     * The deletes of published rows stuck for good while the lease rounds go on: the relay's write thread
     * takes its connections through a proxy that stops forwarding (a connection a firewall dropped, on a
     * pool without socket timeout), every other thread connects directly. The shards waiting for their
     * deletes publish nothing more, and the relay is not live within two lease durations and 5 s although
     * it keeps its leases; once the proxy forwards again, it is live again and every row is published
     * once (G1), its delete having kept the lease.
     */
    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aDeleteStuckForGoodIsNotLive(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("liveness-delete");
        kafka.createTopic(topic, 1);
        String schema = "liveness_stuck_delete";
        OutboxMigrations.migrate(db.dataSource(), schema);
        DSLContext dsl = OutboxMigrations.dsl(db.dataSource(), schema);
        Outbox outbox = Outbox.builder().schema(schema).build();
        try (TcpProxy proxy = proxyTo(db);
                HikariDataSource direct = db.newDataSource(10);
                HikariDataSource viaProxy = pool(db, proxy, Duration.ofMinutes(10));
                Relay relay = Fixtures.relay(db, kafka, "liveness-delete")
                        .dataSource(byThread(name -> name.endsWith("-write"), viaProxy, direct))
                        .schema(schema)
                        .leaseDuration(LEASE)
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            await("ready").atMost(Duration.ofSeconds(30)).until(relay::isReady);
            proxy.pause();
            Set<UUID> appended = new HashSet<>();
            for (int i = 0; i < 5; i++) {
                String key = "k" + i;
                appended.add(dsl.transactionResult(tx -> outbox.append(tx.dsl(), Fixtures.message(topic, key, "v"))));
            }
            await("the rows published, their deletes stuck")
                    .atMost(Duration.ofSeconds(30))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(appended));

            await("not live once the deletes have waited two lease durations and 5 s")
                    .atMost(LEASE.multipliedBy(2).plusSeconds(5 + 4))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> !relay.isLive());
            assertThat(relay.ownedShards())
                    .as("the lease rounds went on: only the deletes are stuck")
                    .hasSize(64);
            assertThat(dsl.fetchOne("select count(*) from " + schema + ".outbox_message")
                            .get(0, Long.class))
                    .as("the published rows, not deleted")
                    .isEqualTo(appended.size());

            proxy.resume();
            await("live again once the deletes end")
                    .atMost(Duration.ofSeconds(30))
                    .until(relay::isLive);
            await("the published rows deleted")
                    .atMost(Duration.ofSeconds(30))
                    .until(() -> dsl.fetchOne("select count(*) from " + schema + ".outbox_message")
                                    .get(0, Long.class)
                            == 0L);
            Thread.sleep(500); // a row published twice would arrive by now
            assertThat(kafkaSide.records()).as("every row published once").hasSize(appended.size());
        }
    }

    /**
     * A shard's own read stuck for good while the lease rounds and the deletes go on: the relay's worker
     * threads (and its probe, which reads for idle shards) take their connections through a proxy that
     * stops forwarding, on a pool without socket timeout; every other thread connects directly. Rows
     * appended then are read by the shards themselves, whose reads never return: those shards publish
     * nothing while their leases are renewed, and the relay is not live within two lease durations and
     * 5 s. Once the proxy forwards again, it is live again and every row is published once (G1).
     */
    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aShardReadStuckForGoodIsNotLive(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("liveness-read");
        kafka.createTopic(topic, 1);
        String schema = "liveness_stuck_read";
        OutboxMigrations.migrate(db.dataSource(), schema);
        DSLContext dsl = OutboxMigrations.dsl(db.dataSource(), schema);
        Outbox outbox = Outbox.builder().schema(schema).build();
        try (TcpProxy proxy = proxyTo(db);
                HikariDataSource direct = db.newDataSource(10);
                HikariDataSource viaProxy = pool(db, proxy, Duration.ofMinutes(10));
                Relay relay = Fixtures.relay(db, kafka, "liveness-read")
                        .dataSource(byThread(
                                name -> name.contains("-worker-") || name.endsWith("-probe"), viaProxy, direct))
                        .schema(schema)
                        .leaseDuration(LEASE)
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            await("ready").atMost(Duration.ofSeconds(30)).until(relay::isReady);
            proxy.pause();
            Set<UUID> appended = new HashSet<>();
            for (int i = 0; i < 5; i++) {
                String key = "k" + i;
                appended.add(dsl.transactionResult(tx -> outbox.append(tx.dsl(), Fixtures.message(topic, key, "v"))));
            }

            await("not live once the shards' reads have waited two lease durations and 5 s")
                    .atMost(LEASE.multipliedBy(2).plusSeconds(5 + 10))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> !relay.isLive());
            assertThat(relay.ownedShards())
                    .as("the lease rounds went on: only the shards' reads are stuck")
                    .hasSize(64);
            assertThat(kafkaSide.ids())
                    .as("nothing published while the reads are stuck")
                    .isEmpty();

            proxy.resume();
            await("live again once the reads end")
                    .atMost(Duration.ofSeconds(30))
                    .until(relay::isLive);
            await("every row published")
                    .atMost(Duration.ofSeconds(30))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(appended));
            Thread.sleep(500); // a row published twice would arrive by now
            assertThat(kafkaSide.records()).as("every row published once").hasSize(appended.size());
        }
    }

    /** A data source whose connections come from {@code matching} on the threads whose names {@code match}. */
    private static DataSource byThread(Predicate<String> match, DataSource matching, DataSource others) {
        return (DataSource) Proxy.newProxyInstance(
                DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class}, (p, method, args) -> {
                    DataSource to = match.test(Thread.currentThread().getName()) ? matching : others;
                    try {
                        return method.invoke(to, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private static TcpProxy proxyTo(TestDatabase db) {
        URI uri = URI.create(db.jdbcUrl().substring("jdbc:".length()));
        return TcpProxy.start(uri.getHost(), uri.getPort());
    }

    private static HikariDataSource pool(
            TestDatabase db, TcpProxy proxy, Duration connectionTimeout, String... properties) {
        return db.newDataSource(10, config -> {
            config.setJdbcUrl(db.jdbcUrl().replaceFirst("//[^/]+/", "//127.0.0.1:" + proxy.port() + "/"));
            config.setConnectionTimeout(connectionTimeout.toMillis());
            for (int i = 0; i < properties.length; i += 2) {
                config.addDataSourceProperty(properties[i], properties[i + 1]);
            }
        });
    }
}
