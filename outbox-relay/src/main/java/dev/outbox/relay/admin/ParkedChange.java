package dev.outbox.relay.admin;

import java.util.List;

/**
 * What a requeue or purge of parked rows ({@link RelayAdmin#requeue}, {@link RelayAdmin#purge})
 * did.
 *
 * @param ids the outbox ids it requeued or purged, ascending
 * @param notParked the requested ids it left alone because no parked row has them (already
 *     requeued or purged, published, or never parked), ascending
 */
public record ParkedChange(List<Long> ids, List<Long> notParked) {
    /** @return how many rows changed */
    public int count() {
        return ids.size();
    }
}
