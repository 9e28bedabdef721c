package dev.outbox.examples.boot;

/**
 * The body of {@code POST /orders}.
 *
 * @param customerId who orders
 * @param amountCents the total, in cents
 * @param currency ISO 4217 code
 * @param sku the one article ordered
 * @param quantity how many
 */
public record OrderRequest(String customerId, long amountCents, String currency, String sku, int quantity) {}
