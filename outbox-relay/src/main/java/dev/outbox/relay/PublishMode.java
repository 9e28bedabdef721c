package dev.outbox.relay;

/**
 * How the relay publishes a shard's batch, and so how far a relay that lost its lease is kept from
 * publishing (guarantee G3). Both modes publish at least once (G1) and delete a row only after Kafka
 * took it; consumers deduplicate on the {@code outbox-message-id} header either way.
 */
public enum PublishMode {
    /**
     * One idempotent producer shared by every shard; a record is published as soon as its partition's
     * leader took it. The relay stops sending a shard at a local lease deadline and bounds the
     * producer's timeouts inside the lease's safety margin. What is left: a process frozen between the
     * deadline check and the broker (SIGSTOP, a VM pause) can add stale copies of at most its batch in
     * flight after the new owner's records, unless the topic sets {@code
     * message.timestamp.before.max.ms} (ENGINE.md, "Fencing on the Kafka side"). Consumers may read
     * with either isolation level. The default: the fastest.
     */
    IDEMPOTENT,

    /**
     * One transactional producer per owned shard, {@code transactional.id} = {@link
     * Relay.Builder#transactionalIdPrefix(String) prefix} + shard number, and one Kafka transaction per
     * batch. Claiming a shard calls {@code initTransactions()}, which makes the broker fence the
     * previous owner's producer of that shard: whatever a zombie relay still holds can no longer
     * commit, whatever the clocks do. A batch that failed in part is aborted as a whole, so a
     * record's failure cannot let a later record of its key become visible before it. Requires
     * consumers that read with {@code isolation.level=read_committed} (consumer-dedup's default) and
     * brokers whose transaction state log can be written ({@code transaction.state.log.*}); costs a
     * producer, and its connections, per owned shard and two extra round trips per batch.
     */
    TRANSACTIONAL
}
