package dev.outbox.torture;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.consumer.IdempotentConsumer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.slf4j.LoggerFactory;

/**
 * A consumer process of the run: a consumer-dedup consumer that applies one effect per message, a
 * charge row and the key's running total, in the dedup transaction. Settings come from the
 * environment: {@code TORTURE_BOOTSTRAP}, {@code TORTURE_JDBC_URL}, {@code TORTURE_TOPIC} and
 * {@code TORTURE_INSTANCE}.
 */
public final class TortureConsumer {
    /** The consumer group, and the consumer name that scopes dedup. */
    static final String NAME = "torture";
    /** Kafka's session timeout of these consumers; a pause must last longer to count as past it. */
    static final Duration SESSION_TIMEOUT = Duration.ofSeconds(10);

    /** What the process prints once its consumer runs. */
    static final String READY = "torture consumer started";

    private TortureConsumer() {}

    public static void main(String[] args) throws Exception {
        // a pool that cannot open connections says why only at debug level; the run wants to know
        ((Logger) LoggerFactory.getLogger("com.zaxxer.hikari.pool")).setLevel(Level.DEBUG);
        Map<String, String> env = System.getenv();
        String instance = env.get("TORTURE_INSTANCE");
        String jdbcUrl = env.get("TORTURE_JDBC_URL");
        HikariDataSource dataSource = Torture.dataSource(jdbcUrl, 4, "torture-consumer");
        IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Map.of(
                        "bootstrap.servers",
                        env.get("TORTURE_BOOTSTRAP"),
                        "group.id",
                        NAME,
                        // a restarted process takes its predecessor's partitions over at once; a paused one
                        // loses them when its session expires
                        "group.instance.id",
                        instance,
                        "session.timeout.ms",
                        String.valueOf(SESSION_TIMEOUT.toMillis()),
                        "heartbeat.interval.ms",
                        "1000",
                        "max.poll.records",
                        "200"))
                .topics(env.get("TORTURE_TOPIC"))
                .consumerName(NAME)
                .dataSource(dataSource)
                .concurrency(2)
                .purgeInterval(Duration.ZERO)
                .handler((message, tx) -> {
                    String[] fields = new String(message.payload(), StandardCharsets.UTF_8).split("\\|");
                    long seq = Long.parseLong(fields[0]);
                    long amount = Long.parseLong(fields[1]);
                    String key = message.keyAsString();
                    // both effects in one statement: one round trip per message
                    tx.execute("""
              with charged as (insert into torture.charge (message_id, key, seq, amount, consumer) values (?, ?, ?, ?, ?))
              insert into torture.running_total (key, applied, total) values (?, 1, ?)
              on conflict (key) do update set applied = running_total.applied + 1, total = running_total.total + excluded.total""", message.messageId(), key, seq, amount, instance, key, amount);
                })
                .build();
        Runtime.getRuntime()
                .addShutdownHook(new Thread(
                        () -> {
                            consumer.close();
                            dataSource.close();
                        },
                        "torture-consumer-stop"));
        consumer.start();
        PoolWatchdog.start(dataSource, jdbcUrl, PoolWatchdog.STUCK_AFTER);
        System.out.println(READY + " (" + instance + ")");
        new CountDownLatch(1).await();
    }
}
