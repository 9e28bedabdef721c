package dev.outbox.relay.admin;

import java.time.Instant;

/**
 * One relay in the membership table, as {@link RelayAdmin#status()} reads it.
 *
 * @param owner its instance id
 * @param startedAt when it joined
 * @param heartbeatUntil until when its last heartbeat counts
 * @param live whether the heartbeat is still valid (database clock)
 * @param ownedShards shards whose valid lease it holds
 */
public record RelayMember(String owner, Instant startedAt, Instant heartbeatUntil, boolean live, int ownedShards) {}
