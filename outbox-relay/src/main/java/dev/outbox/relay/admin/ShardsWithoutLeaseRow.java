package dev.outbox.relay.admin;

import java.time.Duration;
import java.util.List;

/**
 * Outbox rows on shards that have no row in {@code outbox_shard_lease}, as {@link RelayAdmin#status()}
 * reads them. No relay leases such a shard, so no relay ever publishes these rows. A writer stored them
 * with another shard count than the install's (a producer built with {@code shards(N)} of another N, or
 * a writer other than {@code Outbox}), on an install without V5's constraint {@code
 * outbox_message_shard_range}, which refuses them.
 *
 * @param shards each such shard with its rows, by number; owner, lease and epoch are empty
 * @param backlog publishable (unparked) rows on them
 * @param oldestAge age of the oldest of those rows (database clock), or {@code null} when none
 * @param parked parked rows on them
 * @param fix what to do, or {@code null} when there are no such rows
 */
public record ShardsWithoutLeaseRow(
        List<ShardStatus> shards, long backlog, Duration oldestAge, long parked, String fix) {
    /** Copies the shards. */
    public ShardsWithoutLeaseRow {
        shards = List.copyOf(shards);
    }

    /** @return whether any row is on a shard without a lease row */
    public boolean any() {
        return !shards.isEmpty();
    }
}
