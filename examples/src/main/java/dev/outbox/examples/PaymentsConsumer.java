package dev.outbox.examples;

import static dev.outbox.examples.Shop.AMOUNT_CENTS;
import static dev.outbox.examples.Shop.CHARGE_ID;
import static dev.outbox.examples.Shop.MESSAGE_ID;
import static dev.outbox.examples.Shop.ORDER_ID;
import static dev.outbox.examples.Shop.PAYMENTS;
import static dev.outbox.examples.Shop.PAYMENT_ID;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.MessageIds;
import dev.outbox.schemas.orders.OrderPlaced;
import java.util.Map;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * The payments consumer: for each OrderPlaced, charge the card processor and record the payment.
 * consumer-dedup inserts the message id into {@code processed_message} in the same transaction
 * as the payment row, so a redelivered message is skipped: one charge per order.
 */
public final class PaymentsConsumer {
    /** The dedup scope, and the consumer group. */
    public static final String NAME = "payments";

    private PaymentsConsumer() {}

    /**
     * @param dataSource the payments database (here the same as the orders database)
     * @param bootstrapServers Kafka
     * @param processor the card processor
     * @return a started consumer; close it to stop
     */
    public static IdempotentConsumer start(DataSource dataSource, String bootstrapServers, CardProcessor processor) {
        IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Map.of(
                        "bootstrap.servers", bootstrapServers, "group.id", NAME, "auto.offset.reset", "earliest"))
                .topics(OrdersService.TOPIC)
                .consumerName(NAME)
                .dataSource(dataSource)
                .handler((message, tx) -> {
                    OrderPlaced order = message.payload(OrderPlaced.class);
                    // the processor's idempotency key is the message id: a handler that charged and then
                    // failed before its commit charges once when it runs again
                    String chargeId = processor.charge(
                            message.messageId().toString(), order.getOrderId(), order.getAmountCents());
                    tx.insertInto(PAYMENTS)
                            .set(PAYMENT_ID, MessageIds.next())
                            .set(ORDER_ID, UUID.fromString(order.getOrderId()))
                            .set(MESSAGE_ID, message.messageId())
                            .set(AMOUNT_CENTS, order.getAmountCents())
                            .set(CHARGE_ID, chargeId)
                            .execute();
                })
                .build();
        consumer.start();
        return consumer;
    }
}
