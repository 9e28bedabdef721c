package dev.outbox.relay.admin;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * The whole picture {@link RelayAdmin#status()} reads.
 *
 * @param at the database's clock when read
 * @param shards every shard in the lease table, by number
 * @param backlog publishable rows over all shards, those of {@code withoutLeaseRow} included
 * @param oldestAge age of the oldest publishable row over all shards, those of {@code withoutLeaseRow}
 *     included, or {@code null} when none
 * @param parked parked rows over all shards, those of {@code withoutLeaseRow} included
 * @param members the relays in the membership table, live or not
 * @param xminHolders what holds the xmin horizon of the outbox table, oldest first: sessions and
 *     prepared transactions of this database (of the whole cluster before PostgreSQL 14), physical WAL
 *     senders, replication slots by their {@code xmin}, standbys' feedback
 * @param table vacuum statistics of the outbox table
 * @param withoutLeaseRow rows on shards that have no lease row, which no relay publishes
 * @param catalogXminHolders replication slots whose {@code catalog_xmin} holds back vacuum of the
 *     system catalogs only (not of the outbox table), oldest first
 */
public record RelayStatus(
        Instant at,
        List<ShardStatus> shards,
        long backlog,
        Duration oldestAge,
        long parked,
        List<RelayMember> members,
        List<XminHolder> xminHolders,
        TableStats table,
        ShardsWithoutLeaseRow withoutLeaseRow,
        List<XminHolder> catalogXminHolders) {

    /** @return the number of live members */
    public long liveMembers() {
        return members.stream().filter(RelayMember::live).count();
    }
}
