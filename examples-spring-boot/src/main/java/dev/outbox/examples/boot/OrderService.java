package dev.outbox.examples.boot;

import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.spring.OutboxTemplate;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Service;
import org.springframework.transaction.annotation.Transactional;

/** Stores an order and its {@code OrderPlaced} message in one transaction. */
@Service
public class OrderService {
    private final JdbcTemplate jdbc;
    private final OutboxTemplate outbox;
    private final String topic;

    public OrderService(JdbcTemplate jdbc, OutboxTemplate outbox, @Value("${shop.orders-topic}") String topic) {
        this.jdbc = jdbc;
        this.outbox = outbox;
        this.topic = topic;
    }

    /**
     * Places an order. Under {@code POST /orders} this joins the Idempotency-Key filter's
     * transaction, so the key, the order, the message and the stored response commit together.
     *
     * @param request the order
     * @return the new order's id
     */
    @Transactional
    public String place(OrderRequest request) {
        String orderId = UUID.randomUUID().toString();
        jdbc.update(
                "insert into orders(id, customer_id, amount_cents, currency) values (?, ?, ?, ?)",
                orderId,
                request.customerId(),
                request.amountCents(),
                request.currency());
        OrderPlaced placed = OrderPlaced.newBuilder()
                .setOrderId(orderId)
                .setCustomerId(request.customerId())
                .setAmountCents(request.amountCents())
                .setCurrency(request.currency())
                .setPlacedAt(Instant.now())
                .setLines(List.of(OrderLine.newBuilder()
                        .setSku(request.sku())
                        .setQuantity(request.quantity())
                        .build()))
                .build();
        outbox.append(topic, orderId, placed);
        return orderId;
    }
}
