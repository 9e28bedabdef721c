package dev.outbox.examples;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A simulated card processor. Like real ones it takes an idempotency key, so that a payment
 * handler that charged and then crashed before its commit charges once when it runs again; it
 * also keeps a ledger of charges per order so the demo can count double charges.
 */
public final class CardProcessor {
    private final Map<String, String> chargeByKey = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> chargesByOrder = new ConcurrentHashMap<>();
    private final AtomicLong calls = new AtomicLong();

    /**
     * @param idempotencyKey the caller's key for this charge (the payments consumer uses the message id)
     * @param orderId the order
     * @param amountCents the amount
     * @return the charge id; the same one for a repeated key
     */
    public String charge(String idempotencyKey, String orderId, long amountCents) {
        calls.incrementAndGet();
        return chargeByKey.computeIfAbsent(idempotencyKey, k -> {
            chargesByOrder.computeIfAbsent(orderId, o -> new AtomicLong()).incrementAndGet();
            return "ch_" + Long.toHexString(k.hashCode() & 0xffffffffL) + "_" + amountCents;
        });
    }

    /** @return charges made, one per distinct idempotency key */
    public long charges() {
        return chargeByKey.size();
    }

    /** @return calls received, including repeated keys */
    public long calls() {
        return calls.get();
    }

    /** @return orders charged more than once */
    public long ordersChargedTwice() {
        return chargesByOrder.values().stream().filter(c -> c.get() > 1).count();
    }
}
