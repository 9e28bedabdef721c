package dev.outbox.relay.internal;

/**
 * What a shard's loop tells the {@link ShardProbe} about its reads. Written only by the shard's
 * running task, read by the probe thread.
 */
final class ProbeMarks {
    /** Reads that found rows to send. */
    volatile long rowReads;
    /** Reads that found nothing to send. */
    volatile long emptyReads;
    /**
     * Every publishable row up to this id was read and held (its topic has no metadata): the probe
     * asks only about rows above it; a row that commits late below it waits for the shard's own poll.
     */
    volatile long heldUpTo = Long.MIN_VALUE;
    /**
     * The highest id the shard has read in this epoch. A read returns the lowest publishable ids, so
     * every row below it that was visible then was read; a row can appear below it only by committing
     * late (or by a parked row being requeued), which the probe's periodic full pass finds.
     */
    volatile long readUpTo = Long.MIN_VALUE;
}
