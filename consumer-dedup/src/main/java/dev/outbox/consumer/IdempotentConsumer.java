package dev.outbox.consumer;

import java.time.Duration;
import java.util.Collection;
import java.util.UUID;

/**
 * A Kafka consumer that applies each message id's business write exactly once (guarantee G4).
 *
 * <p>For every record it opens a database transaction, inserts {@code (consumer name, message
 * id)} into {@code processed_message} with {@code ON CONFLICT DO NOTHING}, and calls the {@link
 * MessageHandler} with that same transaction only when the insert added a row. The dedup row and
 * the business write commit together; a redelivered message finds its row and is skipped. Kafka
 * offsets are committed only for records whose transaction committed, so an offset is never ahead
 * of the database; a crash anywhere costs at most a redelivery, which the dedup row absorbs.
 *
 * <pre>{@code
 * IdempotentConsumer consumer = IdempotentConsumer.builder()
 *     .kafkaProperties(Map.of("bootstrap.servers", "kafka:9092", "group.id", "payments"))
 *     .topics("orders")
 *     .consumerName("payments")
 *     .dataSource(dataSource)
 *     .handler((message, tx) -> {
 *       OrderPlaced order = message.payload(OrderPlaced.class);
 *       tx.insertInto(PAYMENTS).set(PAYMENTS.ORDER_ID, order.getOrderId().toString()).execute();
 *     })
 *     .build();
 * consumer.start();
 * ...
 * consumer.close();
 * }</pre>
 *
 * <p>Partitions are processed in parallel on {@link Builder#concurrency(int) worker threads},
 * each partition strictly in offset order. A failing handler is retried with full-jitter backoff
 * and, after {@link Builder#maxAttempts(int)} attempts, the record is published to a dead-letter
 * topic, recorded as {@code DEAD_LETTERED} and skipped (G7); meanwhile its partition is paused, so
 * other partitions go on. Database outages are retried without consuming attempts, with backoff
 * under a circuit breaker (G6). Thread-safe.
 */
public interface IdempotentConsumer extends AutoCloseable {

    /** @return a builder with the defaults documented on each setter */
    static Builder builder() {
        return new Builder();
    }

    /**
     * Subscribes and starts polling on a thread of its own.
     *
     * @throws IllegalStateException when already started or closed
     */
    void start();

    /**
     * Deletes this consumer's {@code processed_message} rows older than {@code olderThan}, 1,000 rows
     * per statement (each its own short transaction) until none is left. The consumer also does this
     * by itself every {@link Builder#purgeInterval(Duration) purge interval} with its {@link
     * Builder#retention(Duration) retention}. Callable before {@link #start()} and after {@link
     * #close()}.
     *
     * @param olderThan the age past which rows go; at least 1 hour, at most {@link
     *     Builder#MAX_RETENTION} (100 years). It must exceed the longest time a message can be
     *     redelivered after it was first processed, or a late redelivery is applied a second time.
     * @return how many rows were deleted
     * @throws NullPointerException when {@code olderThan} is null
     * @throws IllegalArgumentException when {@code olderThan} is shorter than 1 hour or longer than
     *     {@link Builder#MAX_RETENTION}
     * @throws org.jooq.exception.DataAccessException when a statement fails (rows deleted before it
     *     stay deleted)
     */
    long purgeProcessed(Duration olderThan);

    /** @return the consumer name, the dedup scope in {@code processed_message} */
    String name();

    /** @return whether the poll loop is running: started, not closed, not failed */
    boolean isRunning();

    /**
     * Whether this consumer can do its work now, for a service's readiness endpoint: the poll loop
     * is running, the consumer has joined its group and received an assignment (possibly empty, when
     * the group has more members than partitions), and neither the database nor the dead-letter
     * circuit breaker is open or half-open. Cheap (no I/O); callable from any thread.
     *
     * @return the readiness and what it is made of
     */
    default Readiness readiness() {
        throw new UnsupportedOperationException(getClass().getName() + " does not report readiness");
    }

    /**
     * Re-admits dead-lettered message ids: deletes this consumer's {@code DEAD_LETTERED} rows of
     * {@code processed_message} for these ids, so that a copy of the message published again to the
     * source topic is handled instead of skipped as a duplicate. Ids that were handled (or are
     * unknown) are left alone. Use it when the copy cannot carry the {@link DeadLetterHeaders#REPLAY}
     * header; see the README's runbook. Callable before {@link #start()} and after {@link #close()}.
     * One autocommit statement on a connection of the consumer's database: call it outside a
     * transaction of yours. It waits at most 2 s for a row of these ids that another transaction
     * holds, and then fails without re-admitting any.
     *
     * @param messageIds the dead-lettered ids, from the {@code outbox-message-id} headers of the
     *     dead-letter records
     * @return how many ids were re-admitted
     * @throws NullPointerException when {@code messageIds} or an id in it is null
     * @throws org.jooq.exception.DataAccessException when the statement fails, or another
     *     transaction held a row of these ids for longer than 2 s
     */
    default int readmitDeadLettered(Collection<UUID> messageIds) {
        throw new UnsupportedOperationException(getClass().getName() + " does not re-admit dead-lettered ids");
    }

    /**
     * A consumer's readiness.
     *
     * @param ready {@code running && assigned && databaseBreakerClosed && deadLetterBreakerClosed}
     * @param running the poll loop runs (started, not closing, closed or failed)
     * @param assigned the consumer has joined its group and holds its assignment (false before the
     *     first assignment and after partitions were lost)
     * @param partitions how many partitions are assigned
     * @param databaseBreakerClosed the database circuit breaker is closed
     * @param deadLetterBreakerClosed the dead-letter producer's circuit breaker is closed
     * @param reason what is not ready, in words; empty when ready
     */
    record Readiness(
            boolean ready,
            boolean running,
            boolean assigned,
            int partitions,
            boolean databaseBreakerClosed,
            boolean deadLetterBreakerClosed,
            String reason) {}

    /**
     * Stops consuming: waits at most {@link Builder#closeTimeout(Duration) closeTimeout} for the
     * transactions in flight, commits the offsets of those that committed, closes the Kafka consumer
     * (leaving the group) and the dead-letter producer. Records fetched but not yet handled are left for
     * redelivery. Idempotent; {@link #isRunning()} is false from the call on.
     *
     * <p>A static member (a {@code group.instance.id} in the Kafka properties) does not leave its group
     * at close: its partitions stay assigned to it, unconsumed, until it comes back or its session times
     * out ({@code session.timeout.ms}); only then does the group hand them to other members.
     *
     * <p>Returns once the consumer's poll thread has stopped, within {@code 6 × closeTimeout + 5 s}:
     * each step the poll thread takes once asked to stop is bounded by closeTimeout (the poll under way,
     * whose revocation waits for transactions and then commits their offsets, 2; the wait for the
     * transactions in flight, 1, and their offset commit, 1; the Kafka consumer's close, 1; the
     * dead-letter producer's, which sends what it holds, 1), and takes that long only when Kafka does not
     * answer or a handler does not return.
     *
     * <p>A handler still running after closeTimeout is not waited for: it is logged at ERROR (its
     * partition, offsets and message ids, its worker thread and where that thread is) and interrupted.
     * Its transaction stays open until the handler returns, holding the processed-id rows of its
     * records; their offsets are not committed, so the partition's next owner gets them again and
     * retries them until that transaction ends.
     *
     * <p>Should a Kafka call overstay its own timeout and keep the poll thread past that bound, close()
     * logs at ERROR what the poll thread does and the partitions its Kafka consumer holds, wakes the Kafka
     * consumer up and interrupts the poll thread, and waits for it one closeTimeout more: close() returns
     * within {@code 7 × closeTimeout + 5 s} in all, with a second ERROR if the poll thread still runs,
     * {@link #readiness()} then reporting the consumer as closing.
     */
    @Override
    void close();

    /**
     * Builds an {@link IdempotentConsumer}. Setters check their argument at once; {@link #build()}
     * checks the combination. Not thread-safe; the built consumer is.
     */
    final class Builder extends ConsumerBuilder {
        private Builder() {}
    }
}
