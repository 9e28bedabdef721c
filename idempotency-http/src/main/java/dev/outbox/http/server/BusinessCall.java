package dev.outbox.http.server;

import org.jooq.DSLContext;

/**
 * The work an idempotent request does, run by {@link IdempotencyStore#execute} inside the
 * transaction that holds the key.
 *
 * <p>Do every write of the request (the business rows and the {@code Outbox.append}) through
 * {@code tx}, so that they commit with the key and the stored response, or not at all. Throwing
 * rolls everything back; so does returning a response with status 500 or above.
 *
 * @param <X> the checked exception the call may throw
 */
@FunctionalInterface
public interface BusinessCall<X extends Exception> {
    /**
     * @param tx the jOOQ context of the transaction that holds the key, with the caller's settings
     * @return the response to store and send
     * @throws X when the request fails; the transaction rolls back and the exception propagates
     */
    StoredResponse execute(DSLContext tx) throws X;
}
