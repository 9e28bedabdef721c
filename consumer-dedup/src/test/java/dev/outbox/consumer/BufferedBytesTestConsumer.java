package dev.outbox.consumer;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A consumer process for {@link BufferedBytesIT}: builds an {@link IdempotentConsumer} with a slow
 * handler and a {@code maxBufferedBytes} from its arguments, and runs until it is killed. Each time
 * the gauge of the bytes it holds queued reaches a new high (read every 10 ms), it prints {@code
 * buffered-bytes-max <bytes>}.
 *
 * <p>Arguments: bootstrap servers, JDBC URL, user, password, topic, consumer name, {@code
 * maxBufferedBytes}, and how long the handler takes per message in milliseconds.
 */
public final class BufferedBytesTestConsumer {
    /** Kafka's part: one record of {@link BufferedBytesIT}'s size per partition and fetch, 1 MiB per fetch. */
    static final int MAX_PARTITION_FETCH_BYTES = 256 * 1024;

    static final int FETCH_MAX_BYTES = 1024 * 1024;

    private BufferedBytesTestConsumer() {}

    public static void main(String[] args) throws Exception {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(args[1]);
        config.setUsername(args[2]);
        if (!args[3].isEmpty()) {
            config.setPassword(args[3]);
        }
        config.setMaximumPoolSize(3);
        String topic = args[4];
        String name = args[5];
        long maxBufferedBytes = Long.parseLong(args[6]);
        long handlerMillis = Long.parseLong(args[7]);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        HikariDataSource dataSource = new HikariDataSource(config);
        IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Map.of(
                        "bootstrap.servers",
                        args[0],
                        "group.id",
                        name + "-group",
                        "session.timeout.ms",
                        "10000",
                        "max.partition.fetch.bytes",
                        Integer.toString(MAX_PARTITION_FETCH_BYTES),
                        "fetch.max.bytes",
                        Integer.toString(FETCH_MAX_BYTES)))
                .topics(topic)
                .consumerName(name)
                .dataSource(dataSource)
                .handler((message, tx) -> {
                    tx.execute(
                            "insert into payments(message_id, order_id, amount) values (?, ?, ?)",
                            message.messageId(),
                            new String(message.key(), StandardCharsets.UTF_8),
                            (long) message.payload().length);
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(handlerMillis));
                })
                .concurrency(2)
                .maxBufferedBytes(maxBufferedBytes)
                .meterRegistry(registry)
                .purgeInterval(Duration.ZERO)
                .build();
        Thread watch = new Thread(
                () -> {
                    long max = 0;
                    while (true) {
                        Gauge gauge =
                                registry.find("outbox.consumer.buffered.bytes").gauge();
                        long bytes = gauge == null ? 0 : (long) gauge.value();
                        if (bytes > max) {
                            max = bytes;
                            System.out.println("buffered-bytes-max " + max);
                            System.out.flush();
                        }
                        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                    }
                },
                "buffered-bytes-watch");
        watch.setDaemon(true);
        watch.start();
        consumer.start();
        System.out.println("buffered-bytes-test-consumer started");
        new CountDownLatch(1).await(); // until killed
    }
}
