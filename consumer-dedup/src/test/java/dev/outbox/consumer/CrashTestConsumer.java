package dev.outbox.consumer;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;

/**
 * A consumer process for {@link CrashIT}: builds an {@link IdempotentConsumer} from its arguments
 * and runs until it is killed.
 *
 * <p>Arguments: bootstrap servers, JDBC URL, user, password, topic, consumer name, records per
 * transaction, whether to use a savepoint per record, and optionally a message id whose handler writes
 * its payment, prints {@code holding <id>} and then never returns (its transaction stays open).
 */
public final class CrashTestConsumer {
    private CrashTestConsumer() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(args[1]);
        config.setUsername(args[2]);
        if (!args[3].isEmpty()) {
            config.setPassword(args[3]);
        }
        config.setMaximumPoolSize(4);
        String topic = args[4];
        String name = args[5];
        int batch = Integer.parseInt(args[6]);
        boolean savepoints = Boolean.parseBoolean(args[7]);
        UUID hold = args.length > 8 ? UUID.fromString(args[8]) : null;
        MessageHandler payments = Fixtures.paymentsHandler();
        HikariDataSource dataSource = new HikariDataSource(config);
        IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Map.of(
                        "bootstrap.servers",
                        bootstrap,
                        "group.id",
                        name + "-group",
                        // a restarted process takes over its predecessor's partitions at once instead of
                        // waiting for the killed member's session to expire
                        "group.instance.id",
                        name + "-instance",
                        "session.timeout.ms",
                        "10000",
                        "max.poll.records",
                        "200"))
                .topics(topic)
                .consumerName(name)
                .dataSource(dataSource)
                .handler((message, tx) -> {
                    payments.handle(message, tx);
                    if (message.messageId().equals(hold)) {
                        System.out.println("holding " + hold);
                        System.out.flush();
                        new CountDownLatch(1).await();
                    }
                })
                .concurrency(3)
                .maxRecordsPerTransaction(batch)
                .savepointPerRecord(savepoints)
                .purgeInterval(Duration.ZERO)
                .build();
        consumer.start();
        System.out.println("crash-test-consumer started");
        new CountDownLatch(1).await(); // until killed
    }
}
