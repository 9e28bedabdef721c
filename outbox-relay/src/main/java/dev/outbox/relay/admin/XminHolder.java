package dev.outbox.relay.admin;

import java.time.Instant;

/**
 * Something that keeps PostgreSQL's xmin horizon back: while it exists, vacuum cannot remove row
 * versions deleted after its snapshot, so the relay's deleted outbox rows stay on disk and in the
 * indexes the relay scans. In {@link RelayStatus#catalogXminHolders()}, a replication slot's {@code
 * catalog_xmin} instead, which holds back vacuum of the system catalogs only.
 *
 * @param kind {@code session}, {@code replication slot}, {@code standby} (hot_standby_feedback) or
 *     {@code prepared transaction}
 * @param name the session's pid, user, database and application; the slot's or the prepared
 *     transaction's name; the standby's application name
 * @param xmin the transaction id it holds: a session's snapshot xmin, or its own transaction id
 *     when it has written but holds no snapshot; a slot's {@code xmin}, or its {@code catalog_xmin} in
 *     {@link RelayStatus#catalogXminHolders()}
 * @param xminAge how many transactions old that id is ({@code age(xmin)})
 * @param since when the transaction started (session, prepared transaction), or {@code null}
 * @param state the session's state ({@code idle in transaction} is the usual culprit), or
 *     whether a slot is active
 * @param detail the session's current or last query (first 120 characters), or other context
 */
public record XminHolder(
        String kind, String name, long xmin, long xminAge, Instant since, String state, String detail) {}
