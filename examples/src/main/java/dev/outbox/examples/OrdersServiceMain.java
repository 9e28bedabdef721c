package dev.outbox.examples;

import dev.outbox.migrations.OutboxMigrations;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * The orders service on its own: migrates the outbox tables and the shop tables, then serves
 * {@code POST /orders} on {@code SHOP_HTTP_PORT} (default 8081). Reads {@code SHOP_JDBC_URL},
 * {@code SHOP_DB_USER}, {@code SHOP_DB_PASSWORD}.
 */
public final class OrdersServiceMain {
    private OrdersServiceMain() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        int port = Integer.parseInt(env.getOrDefault(Env.HTTP_PORT, "8081"));
        var ds = Env.dataSource(env, 16);
        OutboxMigrations.migrate(ds);
        Shop.create(ds);
        OrdersService service = OrdersService.start(ds, port, 0, Duration.ZERO);
        System.out.println("orders service listening on port " + port);
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                service.close();
                ds.close();
            } catch (Exception e) {
                System.err.println("orders service did not stop cleanly: " + e);
            }
            stop.countDown();
        }));
        stop.await();
    }
}
