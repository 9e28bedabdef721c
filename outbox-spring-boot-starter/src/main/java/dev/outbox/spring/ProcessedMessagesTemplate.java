package dev.outbox.spring;

import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.OutboxHeaders;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.springframework.jdbc.datasource.DataSourceUtils;
import org.springframework.jdbc.support.SQLErrorCodeSQLExceptionTranslator;
import org.springframework.transaction.support.TransactionSynchronizationManager;

/**
 * {@link ProcessedMessages#claim} in the current Spring-managed transaction, for a {@code
 * @KafkaListener} method that writes its effect in the same transaction (guarantee G4).
 *
 * <pre>{@code
 * @KafkaListener(topics = "orders")
 * @Transactional
 * public void onOrder(ConsumerRecord<String, byte[]> record) {
 *   if (!processed.claim("payments", record)) {
 *     return;                                  // a redelivery: its effect is already committed
 *   }
 *   jdbc.update("insert into payments(...) values (...)", ...);
 * }
 * }</pre>
 *
 * <p>The claim and the business write commit together; the listener container commits the offset
 * after the method returns. A crash between the two redelivers the record, and the claim then
 * returns {@code false}. A method that throws rolls both back, and the record must then be delivered
 * again until it commits: the starter's listener error handler does that ({@code
 * outbox.listener-retries.*}), where Spring Kafka's default skips a record after ten failed attempts.
 * Meters: counter {@value #METRIC} tagged {@code consumer} and {@code outcome} ({@code claimed} or
 * {@code duplicate}).
 *
 * <p>The template records every consumer name it claimed for ({@link #consumers()}); the starter
 * purges their claims older than {@code outbox.processed.retention} every {@code
 * outbox.processed.purge-interval}. Thread-safe.
 */
public final class ProcessedMessagesTemplate {
    /** The counter of claims, by consumer and outcome. */
    public static final String METRIC = "outbox.dedup.claims";

    private final ProcessedMessages processed;
    private final DataSource dataSource;
    private final MeterRegistry registry;
    private final Set<String> consumers = ConcurrentHashMap.newKeySet();

    /**
     * @param processed the primitive (its schema)
     * @param dataSource the data source of the Spring-managed transactions
     * @param registry where the claim counters go
     */
    public ProcessedMessagesTemplate(ProcessedMessages processed, DataSource dataSource, MeterRegistry registry) {
        this.processed = Objects.requireNonNull(processed, "processed may not be null");
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
        this.registry = Objects.requireNonNull(registry, "registry may not be null");
    }

    /**
     * Claims {@code messageId} for {@code consumer} in the current transaction.
     *
     * @param consumer the dedup scope: the service's name, the same on every instance
     * @param messageId the message id
     * @return {@code true} when newly claimed (apply the message), {@code false} when already
     *     processed (skip it)
     * @throws IllegalStateException when no Spring-managed transaction is active, or its connection
     *     is in autocommit mode
     * @throws org.springframework.dao.DataAccessException when the insert fails
     */
    public boolean claim(String consumer, UUID messageId) {
        if (!TransactionSynchronizationManager.isActualTransactionActive()) {
            throw new IllegalStateException(
                    "ProcessedMessagesTemplate.claim needs a Spring-managed transaction, but none is"
                            + " active: the claim would commit on its own, apart from the business write. Annotate the listener method"
                            + " with @Transactional (on a public method of a Spring bean) or run it inside TransactionTemplate.execute.");
        }
        Connection connection = DataSourceUtils.getConnection(dataSource);
        try {
            boolean claimed = processed.claim(connection, consumer, messageId);
            consumers.add(consumer);
            Counter.builder(METRIC)
                    .description("Message ids claimed by listeners, by consumer and outcome")
                    .tag("consumer", consumer)
                    .tag("outcome", claimed ? "claimed" : "duplicate")
                    .register(registry)
                    .increment();
            return claimed;
        } catch (SQLException e) {
            throw new SQLErrorCodeSQLExceptionTranslator(dataSource).translate("claim " + messageId, null, e);
        } finally {
            DataSourceUtils.releaseConnection(connection, dataSource);
        }
    }

    /**
     * Claims the message id of a record the relay published ({@link ProcessedMessages#messageId}).
     *
     * @param consumer the dedup scope
     * @param record the record
     * @return as {@link #claim(String, UUID)}
     * @throws IllegalArgumentException when the record has no valid message id header: it cannot be
     *     deduplicated, so it must not be applied
     */
    public boolean claim(String consumer, ConsumerRecord<?, ?> record) {
        Objects.requireNonNull(record, "record may not be null");
        UUID id = ProcessedMessages.messageId(record.headers())
                .orElseThrow(() -> new IllegalArgumentException(
                        "record " + record.topic() + "-" + record.partition() + "@" + record.offset() + " has no "
                                + OutboxHeaders.MESSAGE_ID
                                + " header, so it cannot be deduplicated; publish it through"
                                + " the outbox, or pass an id of your own to claim(consumer, messageId)"));
        return claim(consumer, id);
    }

    /**
     * @return the consumer names this template claimed for since it was created (a claim that
     *     reached the database, whether it committed or not), in no particular order
     */
    public Set<String> consumers() {
        return Set.copyOf(consumers);
    }

    /** @return the primitive underneath, for use outside Spring transactions */
    public ProcessedMessages processedMessages() {
        return processed;
    }
}
