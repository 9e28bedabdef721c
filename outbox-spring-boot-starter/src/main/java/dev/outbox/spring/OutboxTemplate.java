package dev.outbox.spring;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import org.apache.avro.generic.GenericContainer;
import org.jooq.DSLContext;
import org.springframework.transaction.support.TransactionSynchronizationManager;

/**
 * Appends outbox messages in the current Spring-managed transaction: a {@code @Transactional}
 * method (or a {@code TransactionTemplate}) whose writes go through JDBC, {@code JdbcTemplate}, JPA
 * or jOOQ on the same {@code DataSource} commits its business rows and its messages together, or
 * rolls both back (guarantees G1 and G2).
 *
 * <pre>{@code
 * @Transactional
 * public void placeOrder(Order order) {
 *   jdbc.update("insert into orders(id, amount) values (?, ?)", order.id(), order.amount());
 *   outbox.append("orders", order.id().toString(), orderPlaced);   // an Avro SpecificRecord
 * }
 * }</pre>
 *
 * <p>An append outside a transaction is refused with an {@link IllegalStateException}: it would
 * commit on its own, apart from the business write. The transaction must be on the outbox's
 * {@code DataSource} ({@code DataSourceTransactionManager}, {@code JdbcTransactionManager} or
 * {@code JpaTransactionManager}, as Spring Boot configures them); a transaction of another resource
 * only (a {@code KafkaTransactionManager}) leaves the connection in autocommit mode, and the
 * append is refused too. Thread-safe.
 */
public final class OutboxTemplate {
    private final Outbox outbox;
    private final DSLContext dsl;

    /**
     * @param outbox the outbox that writes the rows
     * @param dsl a jOOQ context whose connections are those of the Spring-managed transaction (a
     *     {@code DataSourceConnectionProvider} over a {@code TransactionAwareDataSourceProxy})
     */
    public OutboxTemplate(Outbox outbox, DSLContext dsl) {
        this.outbox = Objects.requireNonNull(outbox, "outbox may not be null");
        this.dsl = Objects.requireNonNull(dsl, "dsl may not be null");
    }

    /**
     * Appends an Avro record, as {@link Outbox#append(DSLContext, String, String, GenericContainer)}.
     *
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null}
     * @param payload the record
     * @return its message id
     * @throws IllegalStateException when no Spring-managed transaction is active
     */
    public UUID append(String topic, String key, GenericContainer payload) {
        return outbox.append(transaction("append"), topic, key, payload);
    }

    /**
     * Appends one message, as {@link Outbox#append(DSLContext, OutboxMessage)}.
     *
     * @param message the message
     * @return its message id
     * @throws IllegalStateException when no Spring-managed transaction is active
     */
    public UUID append(OutboxMessage message) {
        return outbox.append(transaction("append"), message);
    }

    /**
     * Appends several messages in one statement, as {@link Outbox#appendAll(DSLContext, List)}.
     *
     * @param messages the messages
     * @return their message ids, in order
     * @throws IllegalStateException when no Spring-managed transaction is active
     */
    public List<UUID> appendAll(List<OutboxMessage> messages) {
        return outbox.appendAll(transaction("appendAll"), messages);
    }

    /** @return the outbox underneath, for {@link Outbox#avroMessage} and its settings */
    public Outbox outbox() {
        return outbox;
    }

    private DSLContext transaction(String operation) {
        if (!TransactionSynchronizationManager.isActualTransactionActive()) {
            throw new IllegalStateException(
                    "OutboxTemplate." + operation + " needs a Spring-managed transaction, but none is"
                            + " active: the message would commit on its own, apart from the business write. Call it from a"
                            + " @Transactional method (not from a private or self-invoked one, which Spring does not proxy) or inside"
                            + " TransactionTemplate.execute(...).");
        }
        return dsl;
    }
}
