package dev.outbox.consumer;

import org.jooq.DSLContext;

/**
 * Applies one message inside the consumer's database transaction.
 *
 * <p>Write every business effect through {@code tx}: it runs in the same transaction as the
 * insert of the message id into {@code processed_message}, so the effect and the dedup record
 * commit together or not at all (guarantee G4). Work done outside {@code tx} (an HTTP call, a file)
 * is not covered: the handler may run more than once for one message id (after a failure, a crash
 * before the commit, or a rebalance), and only its {@code tx} writes are guaranteed to commit once.
 *
 * <p>Do not commit, roll back or close {@code tx}'s connection: transaction-control SQL through
 * {@code tx} and {@code commit()}, {@code rollback()}, {@code setAutoCommit(true)} and {@code close()}
 * on the connection it hands out are refused with an exception (the record's failure). Nested
 * {@code tx.transaction(...)} calls are fine (they become savepoints). Throwing any exception (or
 * {@code Error}) rolls back this message's writes and schedules a retry; after the last attempt the
 * message goes to the dead-letter topic. Throw {@link TransientHandlerException} for a failure that passes by itself
 * (retried without using up attempts) and {@link PermanentHandlerException} for a message that can
 * never be applied (dead-lettered at once), or classify exceptions with {@link
 * IdempotentConsumer.Builder#failureClassifier(java.util.function.Function)}.
 */
@FunctionalInterface
public interface MessageHandler {

    /**
     * @param message the record, with its message id, key, headers and payload
     * @param tx the transaction's jOOQ context; valid only during this call
     * @throws Exception to reject the message; it is retried with backoff, then dead-lettered, as
     *     classified (see {@link FailureKind})
     */
    void handle(Message message, DSLContext tx) throws Exception;
}
