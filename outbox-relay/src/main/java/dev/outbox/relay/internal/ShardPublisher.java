package dev.outbox.relay.internal;

/**
 * How one shard's batches reach Kafka: through the relay's shared idempotent producer ({@link
 * #shared}), or in one Kafka transaction per batch on a producer of the shard's own ({@link
 * TransactionalPublisher}). The shard loop calls {@link #begin} before a batch's first record and,
 * for an {@link #atomic()} publisher, {@link #commit} or {@link #abort} once every record was
 * answered; the fenced delete runs only after that.
 */
interface ShardPublisher {
    /**
     * Prepares the shard's producer, once, at the shard's first round after its claim (for a
     * transactional producer: {@code initTransactions()}, which fences the shard's previous owner).
     *
     * @throws RuntimeException Kafka's exception when it could not; the next round tries again
     */
    void init();

    /**
     * @return the producer to send the next batch with; a transaction was begun on it when {@link
     *     #atomic()}
     * @throws RuntimeException Kafka's exception when no batch can begin now (a {@code
     *     ProducerFencedException} means another relay took the shard's transactional id over)
     */
    Publisher.Generation begin();

    /** @return whether a batch's records become visible together, at {@link #commit}, or not at all */
    boolean atomic();

    /**
     * Makes the batch's records visible; only for an {@link #atomic()} publisher.
     *
     * @throws RuntimeException Kafka's exception when the commit failed: nothing may be deleted
     */
    void commit(Publisher.Generation generation);

    /**
     * Rolls the batch back; only for an {@link #atomic()} publisher. Never throws: a producer that
     * cannot abort is replaced.
     */
    void abort(Publisher.Generation generation, Throwable why);

    /** @return whether {@code generation} is still the producer in use */
    boolean isCurrent(Publisher.Generation generation);

    /** Replaces {@code generation} after an error that left it unusable, if it is still in use. */
    void replace(Publisher.Generation generation, Throwable why);

    /** The shard's loop stopped: releases what belongs to the shard alone. */
    void close();

    /** @return the relay's one idempotent producer, shared by every shard; a batch is not atomic */
    static ShardPublisher shared(Publisher publisher) {
        return new ShardPublisher() {
            @Override
            public void init() {
                // the shared producer exists from the start
            }

            @Override
            public Publisher.Generation begin() {
                // throws Publisher.Unavailable while no producer can be created: the round backs off
                return publisher.current();
            }

            @Override
            public boolean atomic() {
                return false;
            }

            @Override
            public void commit(Publisher.Generation generation) {
                throw new IllegalStateException("the shared idempotent producer has no transactions");
            }

            @Override
            public void abort(Publisher.Generation generation, Throwable why) {
                throw new IllegalStateException("the shared idempotent producer has no transactions");
            }

            @Override
            public boolean isCurrent(Publisher.Generation generation) {
                return publisher.isCurrent(generation);
            }

            @Override
            public void replace(Publisher.Generation generation, Throwable why) {
                publisher.replace(generation, why);
            }

            @Override
            public void close() {
                // the relay closes the shared producer itself
            }
        };
    }
}
