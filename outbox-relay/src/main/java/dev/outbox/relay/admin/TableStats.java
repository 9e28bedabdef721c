package dev.outbox.relay.admin;

import java.time.Instant;

/**
 * Vacuum statistics of {@code outbox_message}, as {@link RelayAdmin#status()} reads them.
 *
 * @param liveRows estimated live rows
 * @param deadRows estimated dead row versions not yet vacuumed
 * @param lastVacuum the last vacuum, manual or automatic, or {@code null}
 */
public record TableStats(long liveRows, long deadRows, Instant lastVacuum) {}
