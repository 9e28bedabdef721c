package dev.outbox.examples.boot;

import java.util.Map;
import org.springframework.http.HttpStatus;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.ResponseStatus;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code POST /orders}, protected by the Idempotency-Key filter ({@code outbox.idempotency.paths}
 * in {@code application.properties}): a retry with the same key gets the first response back.
 */
@RestController
public class OrdersController {
    private final OrderService orders;

    public OrdersController(OrderService orders) {
        this.orders = orders;
    }

    @PostMapping("/orders")
    @ResponseStatus(HttpStatus.CREATED)
    public Map<String, String> place(@RequestBody OrderRequest request) {
        return Map.of("orderId", orders.place(request));
    }
}
