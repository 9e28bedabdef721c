package dev.outbox.relay.admin;

import java.time.Duration;
import java.time.Instant;

/**
 * One shard, as {@link RelayAdmin#status()} reads it.
 *
 * @param shard the shard number
 * @param backlog publishable (unparked) rows waiting
 * @param oldestAge age of the oldest publishable row (database clock), or {@code null} when none
 * @param parked parked rows
 * @param owner the relay holding or last holding the lease, or {@code null} when never claimed or
 *     handed back
 * @param epoch the fencing epoch, bumped on every change of owner
 * @param leaseUntil when the lease expires
 * @param leaseLive whether the lease is still valid (database clock)
 */
public record ShardStatus(
        int shard,
        long backlog,
        Duration oldestAge,
        long parked,
        String owner,
        long epoch,
        Instant leaseUntil,
        boolean leaseLive) {}
