package dev.outbox.core;

import java.security.SecureRandom;
import java.util.UUID;

/**
 * Message ids: UUIDv7 (RFC 9562), time-ordered so that ids minted later sort later, which keeps the
 * consumers' {@code processed_message} index append-mostly.
 *
 * <p>Within one JVM ids are strictly increasing: when the clock stands still or steps back, the
 * 12-bit counter field advances instead, then the timestamp borrowed from the future, so two ids
 * never collide and never go backwards.
 */
public final class MessageIds {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static long lastMillis;
    private static int counter;

    private MessageIds() {}

    /** @return a new UUIDv7 */
    public static UUID next() {
        long millis;
        int seq;
        synchronized (MessageIds.class) {
            long now = System.currentTimeMillis();
            if (now > lastMillis) {
                lastMillis = now;
                counter = RANDOM.nextInt(1 << 10); // leave headroom before the 12-bit field overflows
            } else if (++counter >= (1 << 12)) {
                lastMillis++;
                counter = 0;
            }
            millis = lastMillis;
            seq = counter;
        }
        long msb = (millis << 16) | 0x7000L | seq;
        long lsb = (RANDOM.nextLong() & 0x3FFF_FFFF_FFFF_FFFFL) | 0x8000_0000_0000_0000L;
        return new UUID(msb, lsb);
    }

    /**
     * @param id a UUIDv7
     * @return its Unix timestamp in milliseconds
     * @throws IllegalArgumentException when {@code id} is not version 7
     */
    public static long timestampMillis(UUID id) {
        if (id.version() != 7) {
            throw new IllegalArgumentException("message id " + id + " is UUID version " + id.version() + ", not 7");
        }
        return id.getMostSignificantBits() >>> 16;
    }
}
