package dev.outbox.relay.admin;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * The whole picture {@link RelayAdmin#status()} reads.
 *
 * @param at the database's clock when read
 * @param shards every shard in the lease table, by number
 * @param backlog publishable rows over all shards
 * @param oldestAge age of the oldest publishable row over all shards, or {@code null} when none
 * @param parked parked rows over all shards
 * @param members the relays in the membership table, live or not
 * @param xminHolders what holds the xmin horizon, oldest first
 * @param table vacuum statistics of the outbox table
 */
public record RelayStatus(
        Instant at,
        List<ShardStatus> shards,
        long backlog,
        Duration oldestAge,
        long parked,
        List<RelayMember> members,
        List<XminHolder> xminHolders,
        TableStats table) {

    /** @return the number of live members */
    public long liveMembers() {
        return members.stream().filter(RelayMember::live).count();
    }
}
