package dev.outbox.consumer.internal;

import org.apache.kafka.clients.consumer.ConsumerRecord;

/** Where a {@link PartitionWorker} sends the records it gives up on; {@link DeadLetters} is the real one. */
interface DeadLetterSink {

    /** @return the dead-letter topic of {@code sourceTopic} */
    String topicFor(String sourceTopic);

    /**
     * Publishes the record and waits for the broker's acknowledgement.
     *
     * @param failure the handler's last exception; for a record without a usable id, what the message id
     *     extractor threw, or null
     * @throws InfrastructureException when the broker does not acknowledge in time, or fails with an
     *     error that a retry can cure
     * @throws DeadLetterRefusedException when the broker or the producer refuses the record for good
     */
    void publish(ConsumerRecord<byte[], byte[]> record, String reason, Throwable failure, int attempts)
            throws InfrastructureException, DeadLetterRefusedException;

    /**
     * Checks that the brokers answer for {@code topic}: its partitions, as a publish would first ask.
     *
     * @throws InfrastructureException when they do not (in time, or refuse this client the topic)
     */
    void ping(String topic) throws InfrastructureException;
}
