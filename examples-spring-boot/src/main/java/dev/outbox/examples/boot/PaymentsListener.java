package dev.outbox.examples.boot;

import dev.outbox.schemas.AvroCodec;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.spring.ProcessedMessagesTemplate;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Component;
import org.springframework.transaction.annotation.Transactional;

/**
 * Charges each order once: the dedup claim and the payment row commit in one transaction, and
 * the listener container commits the offset afterwards. A redelivered record finds its message id
 * claimed and is skipped.
 */
@Component
public class PaymentsListener {
    /** The dedup scope: the service's name, the same on every instance. */
    static final String CONSUMER = "payments";

    private final JdbcTemplate jdbc;
    private final ProcessedMessagesTemplate processed;
    private final AvroCodec codec = AvroCodec.create();

    public PaymentsListener(JdbcTemplate jdbc, ProcessedMessagesTemplate processed) {
        this.jdbc = jdbc;
        this.processed = processed;
    }

    @KafkaListener(topics = "${shop.orders-topic}", groupId = CONSUMER)
    @Transactional
    public void onOrderPlaced(ConsumerRecord<String, byte[]> record) {
        if (!processed.claim(CONSUMER, record)) {
            return;
        }
        OrderPlaced order = codec.decode(record.value(), OrderPlaced.class);
        // a real card processor call goes here, with the message id as its idempotency key
        jdbc.update(
                "insert into payments(order_id, amount_cents, currency) values (?, ?, ?)",
                order.getOrderId(),
                order.getAmountCents(),
                order.getCurrency());
    }
}
